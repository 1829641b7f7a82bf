// Package recycle is the engine that replaces the pods of a ServiceAccount
// that do not carry a binding's credentials, in stages: list and judge
// (credentials), owners, plan, gate, act, status, wait. It knows no
// mechanism: what a credentialed pod looks like is the Credentials a
// mechanism (IRSA, EKS Pod Identity) hands it.
//
// Nothing outside the plan is ever deleted, evicted or restarted, and no pod
// is touched before the gate shows that new pods would be credentialed.
package recycle

import (
	corev1 "k8s.io/api/core/v1"
)

// Credentials is what a credentialed pod of one binding looks like, as one
// mechanism injects it through the pod identity webhook. The engine asks it
// about every pod it lists, every dry-run pod of the gate, and every
// replacement it waits for.
type Credentials interface {
	// Judge decides whether pod carries the credentials.
	Judge(pod *corev1.Pod) Verdict
	// Injected reports whether the webhook injected this mechanism's
	// credentials into pod, whatever values they hold: a dry-run pod that
	// has them with other values shows a webhook whose cache has not
	// caught up yet; one without them, a webhook that did not mutate it.
	Injected(pod *corev1.Pod) bool
	// Lacking says what a pod the webhook left alone lacks, for messages:
	// "a new pod would get <Lacking>".
	Lacking() string
}

// Verdict is the outcome of judging one pod.
type Verdict struct {
	Credentialed bool
	// Reason explains a pod that is not credentialed, for people.
	Reason string
	// Recyclable is false when re-creating the pod cannot help (a
	// container presets the variables, which the webhook never overrides).
	Recyclable bool
	// Superseded is set when another mechanism credentials the pod and the
	// webhook gives it precedence: neither waiting nor recycling changes
	// that, so the gate stops at once. Reason says what to do instead.
	Superseded bool
}

// Stale returns the pods that do not carry c.
func Stale(pods []corev1.Pod, c Credentials) []StalePod {
	var stale []StalePod
	for i := range pods {
		if v := c.Judge(&pods[i]); !v.Credentialed {
			stale = append(stale, StalePod{Pod: &pods[i], Reason: v.Reason, Recyclable: v.Recyclable})
		}
	}
	return stale
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
