package binding

import (
	"context"

	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// DestroyOutcome is what Destroy did and found. Exactly one of the first
// fields says what became of the ServiceAccount.
type DestroyOutcome struct {
	// Deleted is set when the ServiceAccount the binding created was
	// deleted (or was already gone).
	Deleted bool
	// KeptFor names the bindings that hold the ServiceAccount the binding
	// created: it stays, with its annotations, for them.
	KeptFor []string
	// Replaced is set when the ServiceAccount the binding created was
	// deleted and re-created by someone else: it is left alone.
	Replaced bool
	// HeldBy names the bindings that hold the ServiceAccount now: the
	// annotations are theirs and stay.
	HeldBy []string
	// Gone is set when the ServiceAccount no longer exists.
	Gone bool
	// AssociationDeleted is the ID of the Pod Identity association the
	// binding deleted.
	AssociationDeleted string

	// RoleStillSet is the role annotation's value when another manager
	// keeps it after the release; RoleManagers are its managers.
	RoleStillSet string
	RoleManagers []string
	// Recycled is set when on-destroy recycling ran; Recycle is what it
	// planned and did.
	Recycled bool
	Recycle  recycle.RecycleResult
}

// DestroyError is a destroy that could not reach its end: the API refused
// or failed a step. Nothing after the step was done.
type DestroyError struct {
	// Deleting is set when deleting the created ServiceAccount failed;
	// otherwise releasing the annotations did.
	Deleting bool
	// Association is set when deleting the Pod Identity association
	// failed.
	Association bool
	Err         error
}

func (e *DestroyError) Error() string {
	if e.Association {
		return "delete the Pod Identity association: " + e.Err.Error()
	}
	if e.Deleting {
		return "delete the ServiceAccount: " + e.Err.Error()
	}
	return "release the annotations: " + e.Err.Error()
}

func (e *DestroyError) Unwrap() error { return e.Err }

// Destroy removes only what the binding set: the ServiceAccount if it
// created it and no other binding holds it, otherwise the annotations it
// owns (after taking over what an import brought, if it was never applied),
// and, with onDestroy, recycles the pods that still carry the role once no
// annotation gives it. A *DestroyError says a step failed; any other error
// is recycling's, and the outcome says what was released.
func (b Binder) Destroy(ctx context.Context, spec Spec, own Ownership, onDestroy bool) (DestroyOutcome, error) {
	m := b.mechanism(spec)
	out, gone, err := m.release(ctx, own)
	if err != nil || !gone || !onDestroy {
		return out, err
	}
	// Pods still hold the role until they are re-created. No last look:
	// nothing is left in state to report it to. No gate either when the
	// release took effect at once (nothing to wait for).
	if !m.releaseTakesEffectLater() {
		spec.Restart.GateTimeout = -1
	}
	out.Recycled = true
	out.Recycle, err = b.engine().Recycle(ctx, b.recycleOptions(spec, m.released()))
	return out, err
}
