package binding

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
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
	Err      error
}

func (e *DestroyError) Error() string {
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
	sas := irsa.ServiceAccounts{Conn: b.Conn, ID: own.ID}
	ns, name := spec.Namespace, spec.ServiceAccount
	if own.Created {
		return b.destroyCreated(ctx, sas, spec, own)
	}
	if own.Adopt {
		// Imported and never applied: what it imported is its own now,
		// whoever held it before.
		if _, err := adoptImported(ctx, sas, spec); err != nil {
			return DestroyOutcome{}, &DestroyError{Err: err}
		}
	}
	sa, err := sas.Release(ctx, ns, name)
	var heldElsewhere *irsa.HeldElsewhereError
	switch {
	case errors.As(err, &heldElsewhere):
		return DestroyOutcome{HeldBy: heldElsewhere.Holders}, nil
	case err != nil:
		return DestroyOutcome{}, &DestroyError{Err: err}
	case sa == nil:
		return DestroyOutcome{Gone: true}, nil
	}
	var out DestroyOutcome
	if v, ok := sa.Annotations[irsa.RoleARNAnnotation]; ok {
		out.RoleStillSet = v
		out.RoleManagers = irsa.AnnotationOwners(sa, irsa.BindingManager(b.Conn.FieldManager, own.ID))[irsa.RoleARNAnnotation]
		return out, nil
	}
	if !onDestroy {
		return out, nil
	}
	// Pods still hold the role until they are re-created. No gate (no
	// annotation to wait for) and no last look: nothing is left in state
	// to report it to.
	spec.Restart.GateTimeout = -1
	out.Recycled = true
	out.Recycle, err = b.engine().Recycle(ctx, b.recycleOptions(spec, irsa.Expectation{}))
	return out, err
}

// destroyCreated deletes the ServiceAccount the binding created, unless
// another binding holds it now (a create_before_destroy replacement):
// deleting it would pull it from under that binding's pods, so only the
// holder list loses this binding.
func (b Binder) destroyCreated(ctx context.Context, sas irsa.ServiceAccounts, spec Spec, own Ownership) (DestroyOutcome, error) {
	ns, name := spec.Namespace, spec.ServiceAccount
	if others := otherHolders(ctx, sas, ns, name, own.ID); len(others) > 0 {
		_, err := sas.Release(ctx, ns, name)
		var heldElsewhere *irsa.HeldElsewhereError
		if err != nil && !errors.As(err, &heldElsewhere) {
			return DestroyOutcome{}, &DestroyError{Err: err}
		}
		return DestroyOutcome{KeptFor: others}, nil
	}
	b.logf("deleting ServiceAccount %s/%s, which this binding created", ns, name)
	err := sas.Delete(ctx, ns, name, own.CreatedUID)
	switch {
	case errors.Is(err, irsa.ErrReplaced):
		return DestroyOutcome{Replaced: true}, nil
	case err != nil:
		return DestroyOutcome{}, &DestroyError{Deleting: true, Err: err}
	}
	return DestroyOutcome{Deleted: true}, nil
}

// adoptImported takes over, for an imported binding that was never
// applied, the annotations it manages that still have the imported values,
// so that releasing them removes them. One changed since the import is
// someone else's now and stays.
func adoptImported(ctx context.Context, sas irsa.ServiceAccounts, spec Spec) (*corev1.ServiceAccount, error) {
	sa, err := sas.Get(ctx, spec.Namespace, spec.ServiceAccount)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var same []string
	for k, v := range spec.Binding.Annotations() {
		if sa.Annotations[k] == v {
			same = append(same, k)
		}
	}
	if len(same) == 0 {
		return sa, nil
	}
	if sa, err = sas.Adopt(ctx, sa, same); err == nil {
		sa, err = sas.MoveFromLegacy(ctx, sa, true)
	}
	if err != nil {
		return nil, fmt.Errorf("take over the imported annotations: %w", err)
	}
	return sa, nil
}

// otherHolders lists the bindings other than id that hold the
// ServiceAccount; none when it cannot be read (the delete that follows
// reports that).
func otherHolders(ctx context.Context, sas irsa.ServiceAccounts, ns, name, id string) []string {
	sa, err := sas.Get(ctx, ns, name)
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(irsa.Holders(sa, sas.FieldManager), func(h string) bool { return h == id })
}
