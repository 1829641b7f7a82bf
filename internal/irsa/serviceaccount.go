// Package irsa is the IRSA mechanism of a binding: the ServiceAccount
// annotations the pod identity webhook reads (eks.amazonaws.com/role-arn and
// its companions), applied server-side as the provider's field manager; the
// holders that keep one binding per ServiceAccount; adoption on import; and
// Expectation, what a pod the webhook credentialed through IRSA looks like,
// which the recycling engine (internal/recycle) judges pods by.
package irsa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// The ServiceAccount annotations the EKS pod identity webhook honours.
const (
	RoleARNAnnotation              = "eks.amazonaws.com/role-arn"
	AudienceAnnotation             = "eks.amazonaws.com/audience"
	STSRegionalEndpointsAnnotation = "eks.amazonaws.com/sts-regional-endpoints"
	TokenExpirationAnnotation      = "eks.amazonaws.com/token-expiration"
)

// BindingAnnotations lists every annotation a binding may own, in a stable order.
var BindingAnnotations = []string{RoleARNAnnotation, AudienceAnnotation, STSRegionalEndpointsAnnotation, TokenExpirationAnnotation}

// Binding is the desired state of a ServiceAccount's IRSA annotations. Nil
// optional fields are not set, so the webhook's defaults apply.
type Binding struct {
	RoleARN              string
	Audience             *string
	STSRegionalEndpoints *bool
	TokenExpiration      *int64
}

// Annotations renders b as the annotations to apply.
func (b Binding) Annotations() map[string]string {
	a := map[string]string{RoleARNAnnotation: b.RoleARN}
	if b.Audience != nil {
		a[AudienceAnnotation] = *b.Audience
	}
	if b.STSRegionalEndpoints != nil {
		a[STSRegionalEndpointsAnnotation] = strconv.FormatBool(*b.STSRegionalEndpoints)
	}
	if b.TokenExpiration != nil {
		a[TokenExpirationAnnotation] = strconv.FormatInt(*b.TokenExpiration, 10)
	}
	return a
}

// Expectation is what pods credentialed by b look like, for annotations
// applied at annotatedAt (zero: not applied yet).
func (b Binding) Expectation(annotatedAt time.Time) Expectation {
	e := Expectation{RoleARN: b.RoleARN, STSRegionalEndpoints: b.STSRegionalEndpoints, TokenExpiration: b.TokenExpiration, AnnotatedAt: annotatedAt}
	if b.Audience != nil {
		e.Audience = *b.Audience
	}
	return e
}

// ServiceAccounts reads and writes ServiceAccount annotations for one
// binding: as its own field manager (see BindingManager), the connection's
// field manager and the binding's ID.
type ServiceAccounts struct {
	kube.Conn
	// ID is the binding's; empty writes as the connection's field manager
	// itself (what releases before per-binding managers did).
	ID string
}

// manager is the field manager the binding's annotations are applied as.
func (s ServiceAccounts) manager() string { return BindingManager(s.FieldManager, s.ID) }

// legacy is the field manager of releases before per-binding managers.
func (s ServiceAccounts) legacy() ServiceAccounts { return ServiceAccounts{Conn: s.Conn} }

// Get returns the ServiceAccount; a missing one is an apierrors NotFound. A
// failure that passes is retried for a few seconds, as in kube.PodsOf.
func (s ServiceAccounts) Get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	var sa *corev1.ServiceAccount
	err := kube.OnTransient(ctx, func() (err error) {
		sa, err = s.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	return sa, err
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Force takes over annotations other field managers own.
	Force bool
	// DryRun asks the API server what would happen, changing nothing.
	DryRun bool
	// UID makes the apply a precondition on that ServiceAccount: one that
	// was deleted (or deleted and re-created) meanwhile is never created
	// by the apply; Apply then returns a NotFound error.
	UID types.UID
	// ResourceVersion makes the apply conditional on the ServiceAccount
	// not having changed since it was read: a Conflict error otherwise.
	ResourceVersion string
}

// Apply server-side applies exactly annotations as the field manager. The
// API server keeps every other field as it is, and removes annotations this
// manager applied before but no longer lists (unless another manager also
// owns them). A ServiceAccount that does not exist is created.
//
// When another manager owns one of the annotations with a different value,
// nothing changes and the error is a *ConflictError naming it; force takes
// ownership instead.
func (s ServiceAccounts) Apply(ctx context.Context, namespace, name string, annotations map[string]string, o ApplyOptions) (*corev1.ServiceAccount, error) {
	ac := corev1ac.ServiceAccount(name, namespace)
	if len(annotations) > 0 {
		ac.WithAnnotations(annotations)
	}
	if o.UID != "" {
		ac.WithUID(o.UID)
	}
	if o.ResourceVersion != "" {
		ac.WithResourceVersion(o.ResourceVersion)
	}
	opts := metav1.ApplyOptions{FieldManager: s.manager(), Force: o.Force}
	if o.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	sa, err := s.Client.CoreV1().ServiceAccounts(namespace).Apply(ctx, ac, opts)
	if apierrors.IsConflict(err) && o.UID != "" && strings.Contains(err.Error(), "uid mismatch") {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, name)
	}
	if apierrors.IsConflict(err) && apierrors.HasStatusCause(err, metav1.CauseTypeFieldManagerConflict) {
		return nil, s.explainConflict(ctx, namespace, name, annotations, err)
	}
	return sa, err // a resourceVersion conflict is a stale read: IsStaleRead
}

// HeldElsewhereError is returned by Release when other bindings hold the
// ServiceAccount: the annotations they applied too are theirs, and stay.
type HeldElsewhereError struct{ Holders []string }

func (e *HeldElsewhereError) Error() string {
	return fmt.Sprintf("the ServiceAccount is held by binding %s", strings.Join(e.Holders, ", "))
}

// Release gives up every annotation the binding owns on the ServiceAccount:
// applying an empty configuration as its field manager removes the fields
// only it owned, and leaves those another binding applied too (a
// create_before_destroy replacement, or a second configuration that asked
// for the same values). A binding that still holds it the way releases
// before per-binding managers did gives that up first. A missing
// ServiceAccount is not an error, and is never created by it. When other
// bindings hold it, the error says which.
func (s ServiceAccounts) Release(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	var released *corev1.ServiceAccount
	// Conditional on the version read: co-holders released side by side
	// must not write back each other's holder lists.
	err := retry.OnError(retry.DefaultRetry, IsStaleRead, func() error {
		var err error
		released, err = s.release(ctx, namespace, name)
		return err
	})
	return released, err
}

func (s ServiceAccounts) release(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	sa, err := s.Get(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if LegacyHeld(sa, s.FieldManager, s.ID) {
		if sa, err = s.leaveLegacy(ctx, sa, false, false); err != nil || sa == nil {
			return nil, err
		}
	}
	if len(OwnedBy(sa, s.manager())) > 0 {
		// Nothing of ours otherwise; an empty apply would add an entry.
		sa, err = s.Apply(ctx, namespace, name, nil, ApplyOptions{UID: sa.UID, ResourceVersion: sa.ResourceVersion})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if others := slices.DeleteFunc(Holders(sa, s.FieldManager), func(id string) bool { return id == s.ID }); len(others) > 0 {
		return sa, &HeldElsewhereError{Holders: others}
	}
	return sa, nil
}

// MoveFromLegacy moves a binding that holds sa the way releases before
// per-binding field managers did (the shared field manager, and its ID in
// LegacyHolderAnnotation) onto its own field manager, changing no value:
// first its manager applies the values the shared one owns, so they are
// owned twice; then the shared manager lets go of them and of the binding's
// ID. With takeOver (an import), the shared manager lets go of every
// binding's ID: the import takes the ServiceAccount over. Each write is
// conditional on the one before.
func (s ServiceAccounts) MoveFromLegacy(ctx context.Context, sa *corev1.ServiceAccount, takeOver bool) (*corev1.ServiceAccount, error) {
	return s.leaveLegacy(ctx, sa, true, takeOver)
}

// leaveLegacy is MoveFromLegacy with keep, or, without it, the release of
// the legacy hold: the values the shared manager alone owns go with it.
func (s ServiceAccounts) leaveLegacy(ctx context.Context, sa *corev1.ServiceAccount, keep, takeOver bool) (*corev1.ServiceAccount, error) {
	legacy := s.legacy()
	legacyKeys := OwnedBy(sa, legacy.FieldManager)
	precondition := func(sa *corev1.ServiceAccount) ApplyOptions {
		return ApplyOptions{UID: sa.UID, ResourceVersion: sa.ResourceVersion}
	}
	var err error
	if keep && len(legacyKeys) > 0 {
		values := map[string]string{}
		for _, k := range append(OwnedBy(sa, s.manager()), legacyKeys...) {
			values[k] = sa.Annotations[k]
		}
		if sa, err = s.Apply(ctx, sa.Namespace, sa.Name, values, precondition(sa)); err != nil {
			return nil, err
		}
	}
	if len(legacyKeys) == 0 && !slices.Contains(AnnotationOwners(sa, "")[LegacyHolderAnnotation], legacy.FieldManager) {
		return sa, nil // the shared manager owns nothing here
	}
	rest := slices.DeleteFunc(legacyHolders(sa), func(id string) bool { return id == s.ID || takeOver })
	var values map[string]string
	if len(rest) > 0 {
		// Legacy co-holders asked for the same values: the shared
		// manager keeps them, and the holder list without us.
		values = map[string]string{LegacyHolderAnnotation: strings.Join(rest, ",")}
		for _, k := range legacyKeys {
			values[k] = sa.Annotations[k]
		}
	}
	released, err := legacy.Apply(ctx, sa.Namespace, sa.Name, values, precondition(sa))
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return released, err
}

// IsStaleRead is a conflict on the resourceVersion a write was conditional
// on: read again and retry. A field another manager owns is not one.
func IsStaleRead(err error) bool {
	var owned *ConflictError
	return apierrors.IsConflict(err) && !errors.As(err, &owned) &&
		!apierrors.HasStatusCause(err, metav1.CauseTypeFieldManagerConflict)
}

// Create creates the ServiceAccount, empty: the annotations follow with
// Apply, conditional on it. A ServiceAccount created by someone else
// meanwhile is an AlreadyExists error.
func (s ServiceAccounts) Create(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	return s.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}},
		metav1.CreateOptions{FieldManager: s.FieldManager})
}

// ErrReplaced is returned by Delete when the ServiceAccount by that name is
// not the one with the UID given: someone re-created it.
var ErrReplaced = errors.New("the ServiceAccount was deleted and re-created by someone else")

// Delete deletes the ServiceAccount, tolerating one that is already gone.
// With uid set, only that very ServiceAccount is deleted.
func (s ServiceAccounts) Delete(ctx context.Context, namespace, name string, uid types.UID) error {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := s.Client.CoreV1().ServiceAccounts(namespace).Delete(ctx, name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err) && uid != "":
		return fmt.Errorf("%w: %w", ErrReplaced, err)
	}
	return err
}

// FieldConflict is one annotation another manager owns with another value.
type FieldConflict struct {
	Annotation string
	Managers   []string
	Current    string
	Desired    string
}

// ConflictError is returned by Apply when other field managers own
// annotations the binding wants to set to different values.
type ConflictError struct {
	Namespace, Name string
	Conflicts       []FieldConflict
	Err             error
}

func (e *ConflictError) Error() string {
	var parts []string
	for _, c := range e.Conflicts {
		parts = append(parts, fmt.Sprintf("%s is owned by %s with value %q", c.Annotation, strings.Join(quoteAll(c.Managers), ", "), c.Current))
	}
	return fmt.Sprintf("ServiceAccount %s/%s: %s", e.Namespace, e.Name, strings.Join(parts, "; "))
}

func (e *ConflictError) Unwrap() error { return e.Err }

func (s ServiceAccounts) explainConflict(ctx context.Context, namespace, name string, desired map[string]string, applyErr error) error {
	sa, err := s.Get(ctx, namespace, name)
	if err != nil {
		return errors.Join(applyErr, err)
	}
	predicted := PredictConflicts(sa, desired, OurManagers(sa, s.FieldManager, s.ID)...)
	if predicted == nil {
		// The owner changed between the apply and the read; the API
		// server's message still names it.
		return applyErr
	}
	predicted.Err = applyErr
	return predicted
}

// PredictConflicts is what a server-side apply of desired by the binding
// would refuse, read from sa's managedFields as the API server reads them:
// an annotation whose value would change and that a manager other than
// ours (OurManagers) owns. Nil
// when there is none. A plan asks this of a ServiceAccount it has already
// read rather than send a dry run per binding; what it predicts is
// confirmed by the API server before it is reported.
func PredictConflicts(sa *corev1.ServiceAccount, desired map[string]string, ours ...string) *ConflictError {
	cerr := &ConflictError{Namespace: sa.Namespace, Name: sa.Name}
	owners := AnnotationOwners(sa, "")
	for _, key := range BindingAnnotations {
		want, ok := desired[key]
		if !ok || sa.Annotations[key] == want {
			continue
		}
		var others []string
		for _, m := range owners[key] {
			if !slices.Contains(ours, m) {
				others = append(others, m)
			}
		}
		if len(others) > 0 {
			cerr.Conflicts = append(cerr.Conflicts, FieldConflict{Annotation: key, Managers: others, Current: sa.Annotations[key], Desired: want})
		}
	}
	if len(cerr.Conflicts) == 0 {
		return nil
	}
	return cerr
}

// AnnotationOwners maps each annotation of sa to the field managers that own
// it, from metadata.managedFields. With exclude set, that manager is left out.
func AnnotationOwners(sa *corev1.ServiceAccount, exclude string) map[string][]string {
	owners := map[string][]string{}
	for _, mf := range sa.ManagedFields {
		if mf.FieldsV1 == nil || mf.Manager == exclude && exclude != "" {
			continue
		}
		var fields struct {
			Metadata struct {
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			continue
		}
		for key := range fields.Metadata.Annotations {
			annotation := strings.TrimPrefix(key, "f:")
			if !slices.Contains(owners[annotation], mf.Manager) {
				owners[annotation] = append(owners[annotation], mf.Manager)
			}
		}
	}
	for _, m := range owners {
		sort.Strings(m)
	}
	return owners
}

// OwnedBy reports the binding annotations that manager owns on sa.
func OwnedBy(sa *corev1.ServiceAccount, manager string) []string {
	owners := AnnotationOwners(sa, "")
	var owned []string
	for _, key := range BindingAnnotations {
		if slices.Contains(owners[key], manager) {
			owned = append(owned, key)
		}
	}
	return owned
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
