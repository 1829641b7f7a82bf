package binding

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Ownership is what a binding remembers between operations about what is
// its own: the caller keeps it (the provider in Terraform's private state)
// and hands it to Apply and Destroy, which decide on it.
type Ownership struct {
	// ID names the binding among the ServiceAccount's holders; empty
	// before its first apply (and in state from before IDs), when Apply
	// makes one.
	ID string
	// Importing marks a binding whose next read is an import's: it takes
	// the values it finds as its own.
	Importing bool
	// Adopt marks an imported binding not applied since: its first apply
	// (or its destroy) takes the imported annotations over from the
	// managers that set them, and the ServiceAccount from the binding
	// that held it.
	Adopt bool
	// Created is set when the binding created the ServiceAccount, which
	// its destroy then deletes.
	Created bool
	// CreatedUID is the UID of the ServiceAccount it created: destroy
	// deletes that very one, never one re-created under its name. Empty in
	// state from before it was recorded.
	CreatedUID types.UID

	// AssociationID is the EKS Pod Identity association the binding
	// created or imported, which its destroy deletes; empty under IRSA.
	AssociationID string
	// AssociationChangedAt is when the binding last created the
	// association or changed its role, by the API server's clock: pods
	// created before run with credentials the agent cached then.
	AssociationChangedAt time.Time
	// PodIdentityDeleted is set while a move back to IRSA is not finished:
	// the binding deleted its association, and pods that still carry
	// container credentials got them from it (they are stale, not
	// superseded, and the gate waits for EKS to propagate the deletion).
	PodIdentityDeleted bool
}
