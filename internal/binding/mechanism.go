package binding

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// mechanism is how a binding's role reaches pods: IRSA's ServiceAccount
// annotations (irsa.go), and next EKS Pod Identity's association. Binder
// drives it in the one safe order, written once in Apply and Destroy:
// nothing recycled before bind put the credentials' source in place, no
// pod before the gate shows credentials() in a dry-run pod, a fresh look
// after every outcome; on destroy, pods recycled only once release left
// nothing that gives them the role.
type mechanism interface {
	// bind puts the credentials' source in place. With an error, bound
	// still carries the Ownership to keep (a ServiceAccount created
	// before the failure is the binding's).
	bind(ctx context.Context, own Ownership) (bound, error)
	// credentials is what a pod carries once the source was bound at at,
	// by the API server's clock: pods created before may predate it.
	credentials(own Ownership, at time.Time) recycle.Credentials
	// release takes away only what the binding set; gone is set when
	// nothing gives pods the role any more, so on-destroy recycling may
	// replace them with pods that carry released().
	release(ctx context.Context, own Ownership) (out DestroyOutcome, gone bool, err error)
	// released is what a pod carries once the binding is gone.
	released() recycle.Credentials
	// observe is what a pod carries while the source stays as it is now:
	// what Read judges pods by, for drift.
	observe(ctx context.Context, own Ownership) (recycle.Credentials, error)
	// finish runs after a recycle that finished: it takes away what the
	// binding's other mechanism still has in place (the IRSA annotations
	// after a move to Pod Identity), now that no pod needs it, and returns
	// the Ownership to keep.
	finish(ctx context.Context, own Ownership) (Ownership, error)
	// releaseTakesEffectLater is set when what release took away reaches
	// the webhook only eventually (EKS propagates a deleted association):
	// on-destroy recycling then waits at the gate until a dry-run pod
	// shows released(), rather than re-create pods that would get the old
	// credentials again.
	releaseTakesEffectLater() bool
}

// bound is what bind did.
type bound struct {
	own Ownership
	// created is set when bind created the ServiceAccount, uid is the
	// bound ServiceAccount's.
	created bool
	uid     types.UID
	// at is when the source was last bound, by the API server's clock.
	at time.Time
	// association is the Pod Identity association bound, nil under IRSA.
	association *awseks.Association
}

// Credentials is what a credentialed pod of the binding looks like now,
// for judging pods without changing anything (Read). A plan's snapshot
// answers through Lookup.
func (b Binder) Credentials(ctx context.Context, spec Spec, own Ownership) (recycle.Credentials, error) {
	return b.mechanism(spec).observe(ctx, own)
}

// mechanism is the spec's.
func (b Binder) mechanism(spec Spec) mechanism {
	if spec.Mechanism == MechanismPodIdentity {
		return podIdentityBinding{Binder: b, spec: spec}
	}
	return irsaBinding{Binder: b, spec: spec}
}
