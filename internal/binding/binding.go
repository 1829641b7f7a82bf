// Package binding is what one irsa_service_account_binding does to a
// cluster, without Terraform: put the credentials' source in place through
// its mechanism (mechanism.go; IRSA's ServiceAccount annotations in
// irsa.go), check that the pod identity webhook would credential new pods
// (the gate), recycle the stale pods, and report what is still stale; on
// destroy, release only what the binding set (destroy.go).
//
// The order is the safety argument. Nothing is touched before the
// credentials' source is in place; no pod is touched before the gate passes;
// and once the source is in place, every outcome, a failure or a cancel included,
// ends with a fresh look at the pods, so the caller can save state that
// lets the next apply converge in place.
package binding

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
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
	// Mechanism is how the role reaches pods; "" is IRSA.
	Mechanism Mechanism
	// PodIdentity is the association's settings beside Binding.RoleARN,
	// with MechanismPodIdentity.
	PodIdentity awseks.Settings
}

// Mechanism names how a binding's role reaches pods.
type Mechanism string

// Mechanisms.
const (
	MechanismIRSA        Mechanism = "irsa"
	MechanismPodIdentity Mechanism = "pod_identity"
)

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
	// Association is the Pod Identity association bound, nil under IRSA.
	Association *awseks.Association
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
	// EKS is the cluster's EKS client, for MechanismPodIdentity.
	EKS *awseks.Client
}

// Apply annotates the ServiceAccount, then recycles its stale pods. With
// Outcome.Annotated unset, nothing changed and the error says why; with it
// set, the error (if any) is about recycling and Outcome.Stale says what is
// left.
func (b Binder) Apply(ctx context.Context, spec Spec, own Ownership) (Outcome, error) {
	if own.ID == "" {
		own.ID = newID()
	}
	m := b.mechanism(spec)
	bound, err := m.bind(ctx, own)
	out := Outcome{Ownership: bound.own, Created: bound.created, UID: bound.uid}
	if err != nil {
		return Outcome{Ownership: bound.own}, err
	}
	out.Annotated = true
	out.AnnotatedAt = bound.at
	out.Association = bound.association

	c := m.credentials(bound.own, bound.at)
	out.Recycle, err = b.engine().Recycle(ctx, b.recycleOptions(spec, c))
	out.Stale = b.report(ctx, spec, c, out.Recycle, err)
	if err == nil {
		// Every pod the plan named now carries the new credentials: what
		// the other mechanism left can go (a migration's last step).
		out.Ownership, err = m.finish(ctx, out.Ownership)
	}
	return out, err
}

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
