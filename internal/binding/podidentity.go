package binding

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/podidentity"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// RoleChangeSettle is how long a binding waits after it changed an
// association's role before it takes the time pods must be created after.
// EKS gives no signal that a changed role reached EKS Auth, and pods show
// no role (the agent hands credentials out on request): AWS says a change
// takes "several seconds". A new association needs no such wait: the gate
// sees the webhook inject it, which is the same propagation.
var RoleChangeSettle = 10 * time.Second

// podIdentityBinding is the EKS Pod Identity mechanism: the role reaches
// pods through an association of (cluster, namespace, ServiceAccount), which
// the webhook turns into container credentials that the node's agent
// serves.
type podIdentityBinding struct {
	Binder
	spec Spec
}

var _ mechanism = podIdentityBinding{}

// AssociationHeldError is an association of the ServiceAccount that the
// binding did not create or import: someone else's, or an EKS add-on's.
type AssociationHeldError struct {
	Namespace, ServiceAccount string
	ID, RoleARN, OwnerARN     string
}

func (e *AssociationHeldError) Error() string {
	return fmt.Sprintf("ServiceAccount %s/%s has Pod Identity association %s (role %s) that this binding does not own", e.Namespace, e.ServiceAccount, e.ID, e.RoleARN)
}

// EKSError is an EKS call that failed.
type EKSError struct {
	Op  string
	Err error
}

func (e *EKSError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *EKSError) Unwrap() error { return e.Err }

// errNoEKS is a pod_identity binding without an EKS client: the provider
// checks cluster_name at plan, so this is a bug.
var errNoEKS = errors.New("no EKS client: the provider's cluster_name is not set")

// deleteAssociation deletes association id of the spec's ServiceAccount:
// on destroy, and when a binding moves back to IRSA.
func (b Binder) deleteAssociation(ctx context.Context, spec Spec, id string) error {
	if b.EKS == nil {
		return errNoEKS
	}
	b.logf("deleting Pod Identity association %s of ServiceAccount %s/%s", id, spec.Namespace, spec.ServiceAccount)
	return b.EKS.Delete(ctx, id, spec.Namespace, spec.ServiceAccount)
}

// settings is the association the spec asks for.
func (m podIdentityBinding) settings() awseks.Settings {
	s := m.spec.PodIdentity
	s.RoleARN = m.spec.Binding.RoleARN
	return s
}

// bind makes the association be what the spec says: creates it, or
// updates the one the binding owns. Once an association exists, bind
// reports no error: the caller must keep it in state, whatever follows.
func (m podIdentityBinding) bind(ctx context.Context, own Ownership) (bound, error) {
	out := bound{own: own}
	if m.EKS == nil {
		return out, errNoEKS
	}
	ns, name := m.spec.Namespace, m.spec.ServiceAccount
	sa, err := m.serviceAccount(ctx, &out)
	if err != nil {
		return out, err
	}
	out.uid = sa.UID
	if out.created {
		out.own.Created, out.own.CreatedUID = true, out.uid
	}

	want := m.settings()
	a, err := m.owned(ctx, own)
	if err != nil {
		return out, err
	}
	changed, roleChanged := false, false
	switch {
	case a == nil:
		m.logf("creating the Pod Identity association of ServiceAccount %s/%s with role %s", ns, name, want.RoleARN)
		a, err = m.EKS.Create(ctx, ns, name, want)
		var exists *awseks.ExistsError
		if errors.As(err, &exists) {
			// Made by someone else since the plan looked.
			return out, HeldAssociation(ctx, m.EKS, m.spec.Namespace, m.spec.ServiceAccount, awseks.Summary{ID: exists.ID}, false)
		}
		if err != nil {
			return out, &EKSError{Op: "create the Pod Identity association", Err: err}
		}
		changed = true
	case CredentialsDiffer(a.Settings, want):
		m.logf("updating Pod Identity association %s of ServiceAccount %s/%s to role %s", a.ID, ns, name, want.RoleARN)
		updated, err := m.EKS.Update(ctx, a.ID, want)
		if err != nil {
			return out, &EKSError{Op: "update Pod Identity association " + a.ID, Err: err}
		}
		updated.Tags = a.Tags
		a, changed, roleChanged = updated, true, true
	}
	out.own.AssociationID, out.own.Adopt = a.ID, false
	out.association = a
	if !maps.Equal(a.Tags, want.Tags) && (len(a.Tags) != 0 || len(want.Tags) != 0) {
		if err := m.EKS.SetTags(ctx, a.ARN, a.Tags, want.Tags); err != nil {
			m.logf("could not set the tags of Pod Identity association %s: %v", a.ID, err)
		} else {
			a.Tags = maps.Clone(want.Tags)
		}
	}
	if changed {
		if roleChanged {
			m.logf("waiting %s for the role change to reach EKS Auth (EKS gives no signal when it has)", RoleChangeSettle)
			select {
			case <-time.After(RoleChangeSettle):
			case <-ctx.Done():
			}
		}
		if at, err := m.serverNow(ctx); err == nil {
			out.own.AssociationChangedAt = at
		} else {
			// This machine's clock, which may be off from the server's
			// by the skew: said in the log.
			m.logf("could not read the API server's time (%v); pods are judged by this machine's clock", err)
			out.own.AssociationChangedAt = time.Now()
		}
	}
	out.at = out.own.AssociationChangedAt
	return out, nil
}

// owned is the association the binding owns now: the one it recorded, or,
// for an import, the ServiceAccount's. Another's is an
// *AssociationHeldError; none is nil.
func (m podIdentityBinding) owned(ctx context.Context, own Ownership) (*awseks.Association, error) {
	ns, name := m.spec.Namespace, m.spec.ServiceAccount
	if own.AssociationID != "" {
		a, err := m.EKS.Describe(ctx, own.AssociationID)
		switch {
		case err == nil && a.Namespace == ns && a.ServiceAccount == name:
			return a, nil
		case err != nil && !errors.Is(err, awseks.ErrNotFound):
			return nil, &EKSError{Op: "describe Pod Identity association " + own.AssociationID, Err: err}
		}
		// Deleted out of band: made again below, unless another one
		// took its place.
	}
	existing, err := m.EKS.FindFresh(ctx, ns, name)
	if err != nil {
		return nil, &EKSError{Op: "list the Pod Identity associations of ServiceAccount " + ns + "/" + name, Err: err}
	}
	if existing == nil {
		return nil, nil
	}
	if err := HeldAssociation(ctx, m.EKS, ns, name, *existing, own.Adopt); err != nil {
		return nil, err
	}
	a, err := m.EKS.Describe(ctx, existing.ID)
	if err != nil {
		return nil, &EKSError{Op: "describe Pod Identity association " + existing.ID, Err: err}
	}
	return a, nil
}

// HeldAssociation is the *AssociationHeldError for existing, the
// association of ServiceAccount namespace/serviceAccount that a binding
// did not create, described (role, owner) when EKS lets us; nil when the
// binding may take it: only an import (adopt) may, and never an EKS
// add-on's. The plan and the apply decide alike.
func HeldAssociation(ctx context.Context, client *awseks.Client, namespace, serviceAccount string, existing awseks.Summary, adopt bool) error {
	if adopt && existing.OwnerARN == "" {
		return nil
	}
	held := &AssociationHeldError{Namespace: namespace, ServiceAccount: serviceAccount, ID: existing.ID, OwnerARN: existing.OwnerARN}
	if a, err := client.Describe(ctx, existing.ID); err == nil {
		held.RoleARN = a.RoleARN
		if a.OwnerARN != "" {
			held.OwnerARN = a.OwnerARN
		}
	}
	return held
}

// CredentialsDiffer reports settings an Update changes, and pods see (so
// those created before are stale). Tags are not among them (Update has
// none; they change apart, and pods do not see them).
func CredentialsDiffer(have, want awseks.Settings) bool {
	return have.RoleARN != want.RoleARN || have.TargetRoleARN != want.TargetRoleARN ||
		have.DisableSessionTags != want.DisableSessionTags || have.Policy != want.Policy
}

// serviceAccount reads the ServiceAccount pods run as, creating it when the
// binding may. The association itself needs none, but the gate's dry-run
// pod does, and a binding without one has nothing to recycle.
func (m podIdentityBinding) serviceAccount(ctx context.Context, out *bound) (*corev1.ServiceAccount, error) {
	spec := m.spec
	sas := irsa.ServiceAccounts{Conn: m.Conn, ID: out.own.ID}
	read := m.Lookup
	if read == nil {
		read = sas.Get
	}
	sa, err := read(ctx, spec.Namespace, spec.ServiceAccount)
	if apierrors.IsNotFound(err) && m.Lookup != nil {
		sa, err = sas.Get(ctx, spec.Namespace, spec.ServiceAccount) // the snapshot may be older
	}
	if apierrors.IsNotFound(err) && spec.CreateServiceAccount {
		sa, err = sas.Create(ctx, spec.Namespace, spec.ServiceAccount)
		switch {
		case apierrors.IsAlreadyExists(err):
			sa, err = sas.Get(ctx, spec.Namespace, spec.ServiceAccount)
		case isNamespaceNotFound(err):
			return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount, NamespaceMissing: true}
		case err == nil:
			out.created = true
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount}
	case err != nil:
		return nil, fmt.Errorf("read ServiceAccount: %w", err)
	}
	return sa, nil
}

// serverNow is the API server's clock, from a dry-run pod's creation
// timestamp: the clock pods' creation timestamps come from. EKS's clock
// (the association's modifiedAt) is another machine's.
func (m podIdentityBinding) serverNow(ctx context.Context) (time.Time, error) {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "irsa-clock-", Namespace: m.spec.Namespace},
		Spec: corev1.PodSpec{
			ServiceAccountName: m.spec.ServiceAccount,
			Containers:         []corev1.Container{{Name: "clock", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	got, err := m.Conn.Client.CoreV1().Pods(m.spec.Namespace).Create(ctx, probe, metav1.CreateOptions{
		DryRun: []string{metav1.DryRunAll}, FieldManager: m.Conn.FieldManager,
	})
	if err != nil {
		return time.Time{}, err
	}
	return got.CreationTimestamp.Time, nil
}

func (m podIdentityBinding) credentials(_ Ownership, at time.Time) recycle.Credentials {
	return podidentity.Expectation{Associated: true, ChangedAt: at}
}

// observe judges pods by the association's last change the binding made.
// Whether the association is still there and as configured is the
// caller's to read (it shows as drift of the attributes).
func (m podIdentityBinding) observe(_ context.Context, own Ownership) (recycle.Credentials, error) {
	return m.credentials(own, own.AssociationChangedAt), nil
}

func (m podIdentityBinding) released() recycle.Credentials {
	return podidentity.Expectation{Associated: false}
}

// finish gives up the IRSA annotations the binding still holds from
// before it moved to Pod Identity. Pods that run now got their
// credentials from the association (the recycle that finished proved it),
// and the webhook gives the association precedence for new ones, so
// removing the annotations takes nothing from anyone. The ServiceAccount
// itself stays, whoever created it.
func (m podIdentityBinding) finish(ctx context.Context, own Ownership) (Ownership, error) {
	sas := irsa.ServiceAccounts{Conn: m.Conn, ID: own.ID}
	sa, err := sas.Get(ctx, m.spec.Namespace, m.spec.ServiceAccount)
	if apierrors.IsNotFound(err) {
		return own, nil
	}
	if err != nil {
		return own, fmt.Errorf("read ServiceAccount: %w", err)
	}
	if !HoldsIRSA(sa, m.Conn.FieldManager, own.ID) {
		return own, nil
	}
	m.logf("migration: every pod of ServiceAccount %s/%s runs on EKS Pod Identity; removing the IRSA annotations this binding set", m.spec.Namespace, m.spec.ServiceAccount)
	var heldElsewhere *irsa.HeldElsewhereError
	if _, err := sas.Release(ctx, m.spec.Namespace, m.spec.ServiceAccount); err != nil && !errors.As(err, &heldElsewhere) {
		return own, &MigrationError{Step: "remove the IRSA annotations", Err: err}
	}
	return own, nil
}

// HoldsIRSA reports whether binding id holds IRSA annotations on sa (as
// its own field manager, or the way earlier releases did).
func HoldsIRSA(sa *corev1.ServiceAccount, base, id string) bool {
	if id == "" {
		return false
	}
	for _, manager := range irsa.OurManagers(sa, base, id) {
		if len(irsa.OwnedBy(sa, manager)) > 0 {
			return true
		}
	}
	return irsa.LegacyHeld(sa, base, id)
}

// MigrationError is a step of a move between mechanisms that failed after
// the new mechanism credentialed every pod: nothing is lost, and the next
// apply does the step again.
type MigrationError struct {
	Step string
	Err  error
}

func (e *MigrationError) Error() string { return "migration: " + e.Step + ": " + e.Err.Error() }
func (e *MigrationError) Unwrap() error { return e.Err }

// releaseTakesEffectLater is true: a deleted association leaves the
// webhook's configuration seconds later.
func (m podIdentityBinding) releaseTakesEffectLater() bool { return true }

// release deletes the association the binding created or imported, and
// the ServiceAccount it created. Pods keep the credentials the agent
// cached until they expire or are re-created.
func (m podIdentityBinding) release(ctx context.Context, own Ownership) (DestroyOutcome, bool, error) {
	var out DestroyOutcome
	if own.AssociationID != "" {
		if err := m.deleteAssociation(ctx, m.spec, own.AssociationID); err != nil {
			return out, false, &DestroyError{Association: true, Err: err}
		}
		out.AssociationDeleted = own.AssociationID
	}
	sas := irsa.ServiceAccounts{Conn: m.Conn, ID: own.ID}
	if own.Created {
		created, err := irsaBinding(m).destroyCreated(ctx, sas, own)
		created.AssociationDeleted = out.AssociationDeleted
		return created, false, err
	}
	// A move from IRSA that did not finish left the binding's
	// annotations: they go too.
	if _, err := m.finish(ctx, own); err != nil {
		return out, false, &DestroyError{Err: err}
	}
	return out, true, nil
}
