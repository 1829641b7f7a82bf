package recycle

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// The engine's tests run it with a mechanism of their own. It is neither
// IRSA's judgement nor EKS Pod Identity's (internal/irsa tests IRSA's
// against fixtures and the real webhook): the engine must recycle right
// whatever mechanism tells it what a credentialed pod is.

const (
	roleA = "arn:aws:iam::123456789012:role/a"
	roleB = "arn:aws:iam::123456789012:role/b"

	// envRole is what the fake webhook injects into every container.
	envRole = "TEST_ROLE"
	// envOther is what it injects for another mechanism, which it gives
	// precedence.
	envOther = "TEST_OTHER_MECHANISM"
)

// roleCredentials is credentialed when every container carries envRole
// with its role.
type roleCredentials struct{ role string }

func (c roleCredentials) Judge(pod *corev1.Pod) Verdict {
	for _, ctr := range pod.Spec.Containers {
		if _, ok := env(ctr, envOther); ok {
			return Verdict{Reason: "container " + ctr.Name + " has the other mechanism's credentials", Superseded: true}
		}
		role, ok := env(ctr, envRole)
		switch {
		case !ok:
			return Verdict{Reason: "not mutated", Recyclable: true}
		case role != c.role:
			return Verdict{Reason: fmt.Sprintf("runs with role %s, not %s", role, c.role), Recyclable: true}
		}
	}
	return Verdict{Credentialed: true}
}

func (c roleCredentials) Injected(pod *corev1.Pod) bool {
	for _, ctr := range pod.Spec.Containers {
		if _, ok := env(ctr, envRole); ok {
			return true
		}
	}
	return false
}

func (c roleCredentials) Lacking() string { return "no " + envRole }

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}
