package recycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// The readiness gate: before a recycle touches anything, a server-side
// dry-run create of a pod that runs as the ServiceAccount shows what the pod
// identity webhook would inject right now. Upstream declares the webhook
// sideEffects: None, so the dry run goes through it and creates nothing.

// GateCause says why the webhook would not credential a new pod.
type GateCause string

// Gate causes.
const (
	// GateNotMutated: nothing injected. The webhook is down (AWS ships it
	// with failurePolicy Ignore), not registered, or excludes the namespace.
	GateNotMutated GateCause = "not mutated"
	// GateStaleCache: injected, but not what the annotations say now. The
	// webhook's ServiceAccount cache has not caught up.
	GateStaleCache GateCause = "stale cache"
	// GateUnreachable: the API server could not call the webhook.
	GateUnreachable GateCause = "unreachable"
	// GateSuperseded: another mechanism credentials new pods, and the
	// webhook gives it precedence; Found says which, and what to do.
	GateSuperseded GateCause = "superseded"
	// GateNotRegistered: no mutating webhook for pod creation is
	// registered at all.
	GateNotRegistered GateCause = "not registered"
	// GateExcluded: a webhook is registered, but its namespace or object
	// selector leaves this pod out.
	GateExcluded GateCause = "excluded"
)

// GateError stops a recycle before it touches any pod.
type GateError struct {
	Cause GateCause
	// Found is what the last dry run showed.
	Found string
	Wait  time.Duration
	// Unchecked is what explaining the cause could not read (the
	// webhook registrations, the namespace's labels), and why: the cause
	// is then less precise than it could be.
	Unchecked []Unchecked
	Err       error
}

// Unchecked is something a degraded check could not read.
type Unchecked struct {
	// What was not read, and what it would have told.
	What string
	Err  error
}

func (u Unchecked) String() string { return kube.DeniedNote(u.What, u.Err) }

func (e *GateError) Error() string {
	msg := fmt.Sprintf("pod identity webhook check (%s) after %s: %s", e.Cause, e.Wait, e.Found)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *GateError) Unwrap() error { return e.Err }

// probePod is what the dry run creates: the pod a planned workload's
// controller would create, or, for a plan of bare pods, the stale pod's
// labels, annotations and containers without anything injected.
func probePod(namespace, sa string, tpl *corev1.PodTemplateSpec, claimVolumes []string, fallback *corev1.Pod) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "irsa-readiness-probe-", Namespace: namespace}}
	switch {
	case tpl != nil:
		pod.Labels = tpl.Labels
		pod.Annotations = tpl.Annotations
		pod.Spec = *tpl.Spec.DeepCopy()
		// A StatefulSet's controller adds a volume per claim template;
		// without them the template's mounts would make the probe invalid.
		for _, name := range claimVolumes {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
	case fallback != nil:
		pod.Labels = fallback.Labels
		pod.Annotations = fallback.Annotations
		for _, c := range fallback.Spec.InitContainers {
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: c.Name, Image: c.Image})
		}
		for _, c := range fallback.Spec.Containers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
		}
	default:
		pod.Spec.Containers = []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}}
	}
	pod.Spec.ServiceAccountName = sa
	pod.Spec.NodeName = ""
	return pod
}

// checkWebhook dry-runs probe until the webhook injects c,
// for at most timeout. skipped is set when the dry run itself is not
// possible (RBAC, an admission policy rejecting the probe): the gate is then
// skipped, and recycling relies on checking the replacements.
func (p Engine) checkWebhook(ctx context.Context, probe *corev1.Pod, c Credentials, timeout, interval time.Duration) (skipped, err error) {
	var last *GateError
	start := time.Now()
	poll := func(ctx context.Context) (bool, error) {
		got, err := p.Client.CoreV1().Pods(probe.Namespace).Create(ctx, probe.DeepCopy(), metav1.CreateOptions{
			DryRun: []string{metav1.DryRunAll}, FieldManager: p.FieldManager,
		})
		switch {
		case err == nil:
		case strings.Contains(err.Error(), "failed calling webhook"):
			last = &GateError{Cause: GateUnreachable, Found: "the API server could not call a mutating webhook", Err: err}
			return false, nil
		case apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			skipped = fmt.Errorf("a dry-run create of a pod as the ServiceAccount was refused: %w", err)
			return true, nil
		case kube.IsTransient(err):
			last = &GateError{Cause: GateNotMutated, Found: "the dry run failed", Err: err}
			return false, nil
		default:
			return false, err
		}
		v := c.Judge(got)
		switch {
		case v.Credentialed:
			return true, nil
		case v.Superseded:
			// Waiting cannot change it.
			last = &GateError{Cause: GateSuperseded, Found: v.Reason}
			return false, last
		case c.Injected(got):
			last = &GateError{Cause: GateStaleCache, Found: "a new pod would get " + v.Reason}
		default:
			last = &GateError{Cause: GateNotMutated, Found: "a new pod would get " + c.Lacking()}
		}
		return false, nil
	}
	err = wait.PollUntilContextTimeout(ctx, interval, timeout, true, poll)
	if err == nil {
		return skipped, nil
	}
	var gerr *GateError
	if errors.As(err, &gerr) {
		gerr.Wait = time.Since(start).Round(time.Second)
		return nil, gerr
	}
	if last != nil && ctx.Err() == nil {
		last.Wait = time.Since(start).Round(time.Second)
		if last.Cause == GateNotMutated {
			p.explainNotMutated(ctx, probe, last)
		}
		return nil, last
	}
	return nil, fmt.Errorf("pod identity webhook check: %w", err)
}

// explainNotMutated narrows "the webhook injected nothing" down with the
// webhook registrations, when the provider may read them (a cluster-scoped
// list many identities lack; then the cause stays as it is, and g says
// what was not read).
func (p Engine) explainNotMutated(ctx context.Context, probe *corev1.Pod, g *GateError) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	list, err := p.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		g.Unchecked = append(g.Unchecked, Unchecked{What: "whether a pod identity webhook is registered was not checked", Err: err})
		return
	}
	// Without read access to the namespace, its selector is not judged.
	var nsLabels labels.Set
	ns, err := p.Client.CoreV1().Namespaces().Get(ctx, probe.Namespace, metav1.GetOptions{})
	nsKnown := err == nil
	if nsKnown {
		nsLabels = ns.Labels
	} else {
		g.Unchecked = append(g.Unchecked, Unchecked{What: "whether the webhook's namespaceSelector leaves out namespace " + probe.Namespace + " was not checked", Err: err})
	}
	var registered, excluded []string
	for _, cfg := range list.Items {
		for _, wh := range cfg.Webhooks {
			if !mutatesPodCreate(wh.Rules) {
				continue
			}
			name := fmt.Sprintf("webhook %s of MutatingWebhookConfiguration %s", wh.Name, cfg.Name)
			switch {
			case nsKnown && !selects(wh.NamespaceSelector, nsLabels):
				excluded = append(excluded, name+": its namespaceSelector leaves out namespace "+probe.Namespace)
			case !selects(wh.ObjectSelector, probe.Labels):
				excluded = append(excluded, name+": its objectSelector leaves out the pod's labels")
			default:
				policy := "Fail"
				if wh.FailurePolicy != nil {
					policy = string(*wh.FailurePolicy)
				}
				registered = append(registered, fmt.Sprintf("%s, failurePolicy %s", name, policy))
			}
		}
	}
	switch {
	case len(registered) > 0:
		g.Found += "; registered for pods: " + strings.Join(registered, "; ")
	case len(excluded) > 0:
		g.Cause = GateExcluded
		g.Found += "; " + strings.Join(excluded, "; ")
	default:
		g.Cause = GateNotRegistered
		g.Found += "; no mutating webhook for pod creation is registered"
	}
}

func mutatesPodCreate(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		ops := slices.Contains(r.Operations, admissionregistrationv1.Create) || slices.Contains(r.Operations, admissionregistrationv1.OperationAll)
		group := slices.Contains(r.APIGroups, "") || slices.Contains(r.APIGroups, "*")
		res := slices.Contains(r.Resources, "pods") || slices.Contains(r.Resources, "*")
		if ops && group && res {
			return true
		}
	}
	return false
}

// selects reports whether a webhook selector matches; nil matches all.
func selects(sel *metav1.LabelSelector, set labels.Set) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err != nil || s.Matches(set)
}
