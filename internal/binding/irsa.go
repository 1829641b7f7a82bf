package binding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// irsaBinding is the IRSA mechanism: the role reaches pods through the
// ServiceAccount's eks.amazonaws.com/ annotations, which the binding applies
// as its own field manager (see internal/irsa).
type irsaBinding struct {
	Binder
	spec Spec
}

var _ mechanism = irsaBinding{}

// HeldError is a ServiceAccount another binding holds with other values.
type HeldError struct {
	Namespace, Name string
	Holder          string
	// Current are the binding annotations as the holder set them.
	Current map[string]string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("ServiceAccount %s/%s is held by binding %s", e.Namespace, e.Name, e.Holder)
}

// CheckHolder returns the other bindings that hold sa, and an error when
// they hold it with other annotations than desired. Another binding asking
// for exactly the same values holds it too: that is how a
// create_before_destroy replacement hands over, and it takes nothing from
// anyone.
//
// base is the provider's field manager, under which each binding has its
// own (irsa.BindingManager).
func CheckHolder(sa *corev1.ServiceAccount, id string, desired map[string]string, base string) ([]string, error) {
	others := slices.DeleteFunc(irsa.Holders(sa, base), func(h string) bool { return h == id })
	if len(others) == 0 {
		return nil, nil
	}
	current := map[string]string{}
	differs := false
	// What any binding applied is compared; what another tool set is not.
	owners := irsa.AnnotationOwners(sa, "")
	byBinding := func(k string) bool {
		return slices.ContainsFunc(owners[k], func(m string) bool { return m == base || strings.HasPrefix(m, base+"/") })
	}
	for _, k := range irsa.BindingAnnotations {
		if _, want := desired[k]; !want && !byBinding(k) {
			continue // another tool's: neither binding's business
		}
		v, ok := sa.Annotations[k]
		if ok {
			current[k] = v
		}
		if w, want := desired[k]; ok != want || v != w {
			differs = true
		}
	}
	if differs {
		return others, &HeldError{Namespace: sa.Namespace, Name: sa.Name, Holder: strings.Join(others, ", "), Current: current}
	}
	return others, nil
}

// bind reads the ServiceAccount (from the snapshot first), creates it if the
// binding may, checks who holds it, and applies the annotations,
// conditional on what it read; a stale read is read again.
func (m irsaBinding) bind(ctx context.Context, own Ownership) (bound, error) {
	out := bound{own: own}
	var sa *corev1.ServiceAccount
	// The annotations go to the ServiceAccount as it was read: holders
	// checked on a copy another binding changed meanwhile would let both
	// through, so a stale read is read again.
	read := m.Lookup
	err := retry.OnError(retry.DefaultRetry, func(err error) bool {
		if read != nil {
			// Decided on the snapshot: a refusal is confirmed on a
			// fresh read before it is reported.
			read = nil
			var notFound *NotFoundError
			var held *HeldError
			return errors.As(err, &notFound) || errors.As(err, &held) || irsa.IsStaleRead(err) || m.heldMeanwhile(err)
		}
		return irsa.IsStaleRead(err) || m.heldMeanwhile(err)
	}, func() (err error) {
		// out keeps a creation across tries: a ServiceAccount created by
		// the first try and annotated by a later one is still ours.
		sa, err = m.annotate(ctx, own, read, &out)
		return err
	})
	if out.created {
		out.own.Created, out.own.CreatedUID = true, out.uid
	}
	if err != nil {
		return out, err
	}
	out.own.Adopt = false
	out.uid = sa.UID
	out.at = AnnotatedAt(sa, m.Conn.FieldManager, own.ID)
	if own.AssociationID != "" {
		// A move back from Pod Identity: the annotations are in place,
		// so the association can go; pods keep the credentials the agent
		// cached until they are recycled below.
		m.logf("migration: IRSA annotations in place on ServiceAccount %s/%s", m.spec.Namespace, m.spec.ServiceAccount)
		if err := m.deleteAssociation(ctx, m.spec, own.AssociationID); err != nil {
			return out, &MigrationError{Step: "delete Pod Identity association " + own.AssociationID, Err: err}
		}
		out.own.AssociationID, out.own.AssociationChangedAt, out.own.PodIdentityDeleted = "", time.Time{}, true
	}
	return out, nil
}

// finish ends a move back from Pod Identity: every pod the recycle named
// carries IRSA's credentials now.
func (m irsaBinding) finish(_ context.Context, own Ownership) (Ownership, error) {
	own.PodIdentityDeleted = false
	return own, nil
}

// credentials are the annotations' as applied at at. After a move back
// from Pod Identity, container credentials in a pod come from the
// association the binding deleted: stale, and recycled, not superseded.
func (m irsaBinding) credentials(own Ownership, at time.Time) recycle.Credentials {
	e := m.spec.Binding.Expectation(at)
	e.PodIdentityDeleted = own.PodIdentityDeleted
	return e
}

// observe reads when the binding last applied the annotations: pods created
// before may predate them.
func (m irsaBinding) observe(ctx context.Context, own Ownership) (recycle.Credentials, error) {
	read := m.Lookup
	if read == nil {
		read = irsa.ServiceAccounts{Conn: m.Conn}.Get
	}
	sa, err := read(ctx, m.spec.Namespace, m.spec.ServiceAccount)
	if err != nil {
		return nil, err
	}
	return m.credentials(own, AnnotatedAt(sa, m.Conn.FieldManager, own.ID)), nil
}

// releaseTakesEffectLater is false: the webhook reads the annotations
// from its informer within a second.
func (m irsaBinding) releaseTakesEffectLater() bool { return false }

// released is a pod with no role injected.
func (m irsaBinding) released() recycle.Credentials { return irsa.Expectation{} }

// release deletes the ServiceAccount the binding created, unless another
// binding holds it now; otherwise gives up the annotations the binding owns
// (after taking over what an import brought, if it was never applied).
// gone is set when no annotation gives pods the role any more.
func (m irsaBinding) release(ctx context.Context, own Ownership) (DestroyOutcome, bool, error) {
	if own.AssociationID != "" {
		// A move to Pod Identity that did not finish: its association
		// is the binding's too.
		if err := m.deleteAssociation(ctx, m.spec, own.AssociationID); err != nil {
			return DestroyOutcome{}, false, &DestroyError{Association: true, Err: err}
		}
	}
	sas := irsa.ServiceAccounts{Conn: m.Conn, ID: own.ID}
	ns, name := m.spec.Namespace, m.spec.ServiceAccount
	if own.Created {
		out, err := m.destroyCreated(ctx, sas, own)
		return out, false, err
	}
	if own.Adopt {
		// Imported and never applied: what it imported is its own now,
		// whoever held it before.
		if _, err := adoptImported(ctx, sas, m.spec); err != nil {
			return DestroyOutcome{}, false, &DestroyError{Err: err}
		}
	}
	sa, err := sas.Release(ctx, ns, name)
	var heldElsewhere *irsa.HeldElsewhereError
	switch {
	case errors.As(err, &heldElsewhere):
		return DestroyOutcome{HeldBy: heldElsewhere.Holders}, false, nil
	case err != nil:
		return DestroyOutcome{}, false, &DestroyError{Err: err}
	case sa == nil:
		return DestroyOutcome{Gone: true}, false, nil
	}
	if v, ok := sa.Annotations[irsa.RoleARNAnnotation]; ok {
		return DestroyOutcome{RoleStillSet: v,
			RoleManagers: irsa.AnnotationOwners(sa, irsa.BindingManager(m.Conn.FieldManager, own.ID))[irsa.RoleARNAnnotation]}, false, nil
	}
	return DestroyOutcome{}, true, nil
}

// heldMeanwhile reports an apply refused because another binding's field
// manager owns a value: that binding took the ServiceAccount between the
// read and the apply. Read again, and the holder check names it.
func (m irsaBinding) heldMeanwhile(err error) bool {
	var conflict *irsa.ConflictError
	if !errors.As(err, &conflict) {
		return false
	}
	for _, c := range conflict.Conflicts {
		for _, mgr := range c.Managers {
			if strings.HasPrefix(mgr, m.Conn.FieldManager+"/") {
				return true
			}
		}
	}
	return false
}

// annotate reads the ServiceAccount, checks who holds it, and applies the
// annotations, conditional on what it read.
func (m irsaBinding) annotate(ctx context.Context, own Ownership, read func(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error), out *bound) (*corev1.ServiceAccount, error) {
	spec := m.spec
	sas := irsa.ServiceAccounts{Conn: m.Conn, ID: own.ID}
	if read == nil {
		read = sas.Get
	}
	existing, err := read(ctx, spec.Namespace, spec.ServiceAccount)
	if apierrors.IsNotFound(err) && spec.CreateServiceAccount {
		// Created empty, then annotated like any other: two bindings
		// creating it side by side meet in the holder check.
		existing, err = sas.Create(ctx, spec.Namespace, spec.ServiceAccount)
		switch {
		case apierrors.IsAlreadyExists(err):
			return nil, errReadAgain
		case isNamespaceNotFound(err):
			return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount, NamespaceMissing: true}
		case err != nil:
			return nil, fmt.Errorf("create ServiceAccount: %w", err)
		}
		out.created, out.uid = true, existing.UID
	}
	if out.created && existing != nil && existing.UID != out.uid {
		// Ours was deleted and another created under its name since.
		out.created, out.uid = false, ""
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount}
	case err != nil:
		return nil, fmt.Errorf("read ServiceAccount: %w", err)
	}
	if own.Adopt {
		// An import takes the ServiceAccount over: the annotations it
		// imported, from whoever set them, and from every binding that
		// held it.
		if existing, err = sas.Adopt(ctx, existing, spec.AdoptKeys); err != nil {
			return nil, fmt.Errorf("take over the imported annotations: %w", err)
		}
		if existing, err = sas.MoveFromLegacy(ctx, existing, true); err != nil {
			return nil, fmt.Errorf("take over the imported annotations: %w", err)
		}
	} else if _, err = CheckHolder(existing, own.ID, spec.Binding.Annotations(), m.Conn.FieldManager); err != nil {
		return nil, err
	} else if irsa.LegacyHeld(existing, m.Conn.FieldManager, own.ID) {
		// Held the way earlier releases did: onto the binding's own field
		// manager first, no value changed, so that the apply below
		// conflicts with no earlier self.
		m.logf("moving the binding of ServiceAccount %s/%s onto its own field manager", spec.Namespace, spec.ServiceAccount)
		if existing, err = sas.MoveFromLegacy(ctx, existing, false); err != nil {
			return nil, fmt.Errorf("move the binding onto its own field manager: %w", err)
		}
	}
	if existing == nil {
		return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount}
	}
	// That very ServiceAccount, as read: one deleted meanwhile is not
	// re-created, one changed meanwhile is read again.
	opts := irsa.ApplyOptions{Force: spec.ForceConflicts, UID: existing.UID, ResourceVersion: existing.ResourceVersion}

	m.logf("annotating ServiceAccount %s/%s with role %s", spec.Namespace, spec.ServiceAccount, spec.Binding.RoleARN)
	sa, err := sas.Apply(ctx, spec.Namespace, spec.ServiceAccount, spec.Binding.Annotations(), opts)
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount}
	}
	return sa, err
}

// errReadAgain retries annotate from the read: someone created the
// ServiceAccount between our read and our create.
var errReadAgain = apierrors.NewConflict(schema.GroupResource{Resource: "serviceaccounts"}, "", errors.New("created meanwhile; reading it again"))

// destroyCreated deletes the ServiceAccount the binding created, unless
// another binding holds it now (a create_before_destroy replacement):
// deleting it would pull it from under that binding's pods, so only the
// holder list loses this binding.
func (m irsaBinding) destroyCreated(ctx context.Context, sas irsa.ServiceAccounts, own Ownership) (DestroyOutcome, error) {
	ns, name := m.spec.Namespace, m.spec.ServiceAccount
	if others := otherHolders(ctx, sas, ns, name, own.ID); len(others) > 0 {
		_, err := sas.Release(ctx, ns, name)
		var heldElsewhere *irsa.HeldElsewhereError
		if err != nil && !errors.As(err, &heldElsewhere) {
			return DestroyOutcome{}, &DestroyError{Err: err}
		}
		return DestroyOutcome{KeptFor: others}, nil
	}
	m.logf("deleting ServiceAccount %s/%s, which this binding created", ns, name)
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

// AnnotatedAt is when binding id last applied the ServiceAccount's
// annotations, from managedFields: the API server's clock, not ours. A
// binding that holds it the way earlier releases did applied them as the
// shared field manager base.
func AnnotatedAt(sa *corev1.ServiceAccount, base, id string) time.Time {
	if sa == nil {
		return time.Time{}
	}
	for _, manager := range irsa.OurManagers(sa, base, id) {
		for _, mf := range sa.ManagedFields {
			if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Time != nil {
				return mf.Time.Time
			}
		}
	}
	return time.Time{}
}
