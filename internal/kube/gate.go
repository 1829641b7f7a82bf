package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
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
	// GatePodIdentity: EKS Pod Identity credentials the pod instead.
	GatePodIdentity GateCause = "pod identity"
)

// GateError stops a recycle before it touches any pod.
type GateError struct {
	Cause GateCause
	// Found is what the last dry run showed.
	Found string
	Wait  time.Duration
	Err   error
}

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
func probePod(namespace, sa string, tpl *corev1.PodTemplateSpec, fallback *corev1.Pod) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "irsa-readiness-probe-", Namespace: namespace}}
	switch {
	case tpl != nil:
		pod.Labels = tpl.Labels
		pod.Annotations = tpl.Annotations
		pod.Spec = *tpl.Spec.DeepCopy()
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

// checkWebhook dry-runs probe until the webhook injects what e describes,
// for at most timeout. skipped is non-empty when the dry run itself is not
// possible (RBAC, an admission policy rejecting the probe): the gate is then
// skipped, and recycling relies on checking the replacements.
func (p Pods) checkWebhook(ctx context.Context, probe *corev1.Pod, e Expectation, timeout, interval time.Duration) (skipped string, err error) {
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
			skipped = fmt.Sprintf("a dry-run create of a pod as the ServiceAccount was refused: %v", err)
			return true, nil
		case IsTransient(err):
			last = &GateError{Cause: GateNotMutated, Found: "the dry run failed", Err: err}
			return false, nil
		default:
			return false, err
		}
		v := Inspect(got, e)
		switch {
		case v.Credentialed:
			return true, nil
		case v.PodIdentity:
			// Waiting cannot change it.
			last = &GateError{Cause: GatePodIdentity, Found: v.Reason}
			return false, last
		case hasInjectedRole(got):
			last = &GateError{Cause: GateStaleCache, Found: "a new pod would get " + v.Reason}
		default:
			last = &GateError{Cause: GateNotMutated, Found: "a new pod would get no " + EnvRoleARN + " and no token volume"}
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
		return "", gerr
	}
	if last != nil && ctx.Err() == nil {
		last.Wait = time.Since(start).Round(time.Second)
		return "", last
	}
	return "", fmt.Errorf("pod identity webhook check: %w", err)
}

// hasInjectedRole reports a pod where some container carries the webhook's
// pair of variables, whatever the role.
func hasInjectedRole(pod *corev1.Pod) bool {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if hasEnv(c, EnvRoleARN) && hasEnv(c, EnvWebIdentityTokenFile) {
			return true
		}
	}
	return false
}
