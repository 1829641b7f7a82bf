// Package binding is what one irsa_service_account_binding does to a
// cluster, without Terraform: make sure the ServiceAccount is there,
// annotate it, check that the pod identity webhook would credential new pods
// (the gate), recycle the stale pods, and report what is still stale.
//
// The order is the safety argument. Nothing is touched before the annotation
// is in place; no pod is touched before the gate passes; and once the
// annotation is in place, every outcome, a failure or a cancel included,
// ends with a fresh look at the pods, so the caller can save state that
// lets the next apply converge in place.
package binding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

const (
	// DefaultGateTimeout is how long the webhook may take to show the new
	// annotations in a dry-run pod. Its informer sees a change in well
	// under a second; a webhook that needs longer is down or behind.
	DefaultGateTimeout = 20 * time.Second
	// MaxRaceRetries bounds how often replacements that came up without
	// credentials go through planning again.
	MaxRaceRetries = 3
	// reportTimeout bounds the last look at the pods, which runs even
	// after the operation's own context ended.
	reportTimeout = 15 * time.Second
)

// Spec is a binding's desired state.
type Spec struct {
	Namespace      string
	ServiceAccount string
	Binding        irsa.Binding
	// ForceConflicts takes the annotations over from other managers.
	ForceConflicts bool
	// CreateServiceAccount creates the ServiceAccount when it is missing.
	CreateServiceAccount bool
	// AdoptKeys are the annotations the import brought into state, which
	// an Ownership with Adopt takes over.
	AdoptKeys []string
	Restart   Restart
}

// Restart is how stale pods are recycled.
type Restart struct {
	Strategy recycle.Strategy
	Selector string
	Wait     bool
	// GateTimeout overrides DefaultGateTimeout; negative skips the gate.
	GateTimeout time.Duration
}

// Outcome is what Apply did and found.
type Outcome struct {
	// Created is set when Apply created the ServiceAccount.
	Created bool
	// Annotated is set once the annotations are in place: from then on
	// the caller must save state, whatever the error says.
	Annotated bool
	// AnnotatedAt is when the annotations were last applied, by the API
	// server's clock.
	AnnotatedAt time.Time
	// UID is the annotated ServiceAccount's.
	UID     types.UID
	Recycle recycle.RecycleResult
	// Stale are the pods still without the role's credentials.
	Stale []recycle.StalePod
	// Ownership is what the caller keeps for the next operation, whatever
	// the error: the binding's ID, the created ServiceAccount, adoption
	// done.
	Ownership Ownership
}

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

// NotFoundError is a ServiceAccount that does not exist while the binding
// may not create it, or whose namespace does not exist when it may.
type NotFoundError struct {
	Namespace, Name string
	// NamespaceMissing is set when creating the ServiceAccount failed
	// because its namespace does not exist: a binding never creates one.
	NamespaceMissing bool
}

func (e *NotFoundError) Error() string {
	if e.NamespaceMissing {
		return fmt.Sprintf("namespace %s not found", e.Namespace)
	}
	return fmt.Sprintf("ServiceAccount %s/%s not found", e.Namespace, e.Name)
}

// isNamespaceNotFound reports whether err is the API server's refusal to
// create an object in a namespace that does not exist.
func isNamespaceNotFound(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces"
}

// Binder applies bindings through one connection.
type Binder struct {
	Conn kube.Conn
	Logf func(format string, args ...any)
	// Lookup, when set, answers the first read of the ServiceAccount: a
	// plan's shared snapshot. What Apply decides on it is safe because the
	// annotations are applied on condition that the ServiceAccount is still
	// the one read (UID and resourceVersion); one that changed or went
	// since is read again from the API server.
	Lookup func(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
}

// Apply annotates the ServiceAccount, then recycles its stale pods. With
// Outcome.Annotated unset, nothing changed and the error says why; with it
// set, the error (if any) is about recycling and Outcome.Stale says what is
// left.
func (b Binder) Apply(ctx context.Context, spec Spec, own Ownership) (Outcome, error) {
	if own.ID == "" {
		own.ID = newID()
	}
	var out Outcome
	var sa *corev1.ServiceAccount
	// The annotations go to the ServiceAccount as it was read: holders
	// checked on a copy another binding changed meanwhile would let both
	// through, so a stale read is read again.
	read := b.Lookup
	err := retry.OnError(retry.DefaultRetry, func(err error) bool {
		if read != nil {
			// Decided on the snapshot: a refusal is confirmed on a
			// fresh read before it is reported.
			read = nil
			var notFound *NotFoundError
			var held *HeldError
			return errors.As(err, &notFound) || errors.As(err, &held) || irsa.IsStaleRead(err) || b.heldMeanwhile(err)
		}
		return irsa.IsStaleRead(err) || b.heldMeanwhile(err)
	}, func() (err error) {
		// out keeps a creation across tries: a ServiceAccount created by
		// the first try and annotated by a later one is still ours.
		sa, err = b.annotate(ctx, spec, own, read, &out)
		return err
	})
	if out.Created {
		own.Created, own.CreatedUID = true, out.UID
	}
	out.Ownership = own
	if err != nil {
		return Outcome{Ownership: own}, err
	}
	out.Annotated = true
	out.Ownership.Adopt = false
	out.UID = sa.UID
	out.AnnotatedAt = AnnotatedAt(sa, b.Conn.FieldManager, own.ID)

	e := spec.Binding.Expectation(out.AnnotatedAt)
	out.Recycle, err = b.engine().Recycle(ctx, b.recycleOptions(spec, e))
	out.Stale = b.report(ctx, spec, e, out.Recycle, err)
	return out, err
}

// heldMeanwhile reports an apply refused because another binding's field
// manager owns a value: that binding took the ServiceAccount between the
// read and the apply. Read again, and the holder check names it.
func (b Binder) heldMeanwhile(err error) bool {
	var conflict *irsa.ConflictError
	if !errors.As(err, &conflict) {
		return false
	}
	for _, c := range conflict.Conflicts {
		for _, m := range c.Managers {
			if strings.HasPrefix(m, b.Conn.FieldManager+"/") {
				return true
			}
		}
	}
	return false
}

// annotate reads the ServiceAccount, checks who holds it, and applies the
// annotations, conditional on what it read.
func (b Binder) annotate(ctx context.Context, spec Spec, own Ownership, read func(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error), out *Outcome) (*corev1.ServiceAccount, error) {
	sas := irsa.ServiceAccounts{Conn: b.Conn, ID: own.ID}
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
		out.Created, out.UID = true, existing.UID
	}
	if out.Created && existing != nil && existing.UID != out.UID {
		// Ours was deleted and another created under its name since.
		out.Created, out.UID = false, ""
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
	} else if _, err = CheckHolder(existing, own.ID, spec.Binding.Annotations(), b.Conn.FieldManager); err != nil {
		return nil, err
	} else if irsa.LegacyHeld(existing, b.Conn.FieldManager, own.ID) {
		// Held the way earlier releases did: onto the binding's own field
		// manager first, no value changed, so that the apply below
		// conflicts with no earlier self.
		b.logf("moving the binding of ServiceAccount %s/%s onto its own field manager", spec.Namespace, spec.ServiceAccount)
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

	b.logf("annotating ServiceAccount %s/%s with role %s", spec.Namespace, spec.ServiceAccount, spec.Binding.RoleARN)
	sa, err := sas.Apply(ctx, spec.Namespace, spec.ServiceAccount, spec.Binding.Annotations(), opts)
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{Namespace: spec.Namespace, Name: spec.ServiceAccount}
	}
	return sa, err
}

// errReadAgain retries annotate from the read: someone created the
// ServiceAccount between our read and our create.
var errReadAgain = apierrors.NewConflict(schema.GroupResource{Resource: "serviceaccounts"}, "", errors.New("created meanwhile; reading it again"))

func (b Binder) recycleOptions(spec Spec, c recycle.Credentials) recycle.RecycleOptions {
	gate := spec.Restart.GateTimeout
	switch {
	case gate == 0:
		gate = DefaultGateTimeout
	case gate < 0:
		gate = 0
	}
	return recycle.RecycleOptions{
		Namespace: spec.Namespace, ServiceAccount: spec.ServiceAccount, Selector: spec.Restart.Selector,
		Credentials: c, Strategy: spec.Restart.Strategy, Wait: spec.Restart.Wait,
		MaxRetries: MaxRaceRetries, GateTimeout: gate, Logf: b.logf,
	}
}

// report takes the last look at the pods, under its own short deadline so
// that a timeout or a cancel of the operation still ends with the truth.
// When even that fails, every pod the plan named counts as stale, so the
// next plan looks again. When recycling's own last list is still the truth
// (it touched nothing, or its wait saw everything done), that is the look.
func (b Binder) report(ctx context.Context, spec Spec, c recycle.Credentials, res recycle.RecycleResult, recycleErr error) []recycle.StalePod {
	plan := res.Plan
	if recycleErr == nil && res.Listed != nil {
		return recycle.Stale(res.Listed, c)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	pods, err := kube.PodsOf(ctx, b.Conn.Client, spec.Namespace, spec.ServiceAccount, spec.Restart.Selector)
	if err == nil {
		return recycle.Stale(pods, c)
	}
	reason := "not checked after recycling: " + err.Error()
	var stale []recycle.StalePod
	for _, r := range plan.Restart {
		for _, name := range r.Pods {
			stale = append(stale, recycle.StalePod{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, Reason: reason, Recyclable: true})
		}
	}
	for _, g := range plan.Replace {
		for _, pod := range g.Pods {
			stale = append(stale, recycle.StalePod{Pod: pod, Reason: reason, Recyclable: true})
		}
	}
	return stale
}

// IDLength is the length of a binding's ID.
const IDLength = 16

// newID is a random binding ID, IDLength hex digits: nothing Terraform
// hands a provider names a resource instance across states.
func newID() string {
	b := make([]byte, IDLength/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (b Binder) engine() recycle.Engine { return recycle.Engine{Conn: b.Conn} }

func (b Binder) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
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
