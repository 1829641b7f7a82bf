// Package podidentity is what EKS Pod Identity looks like in a pod: the
// container credentials the pod identity webhook injects for a
// ServiceAccount that has an association, and the engine's
// recycle.Credentials for the pod_identity mechanism. The association
// itself lives in EKS (internal/awseks); nothing in a pod names its role, so
// whether a pod runs with the association's current role is decided by when
// it was created.
package podidentity

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/podspec"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// What the pod identity webhook injects for a ServiceAccount with an
// association (container-credentials mode).
const (
	EnvFullURI            = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	EnvAuthorizationToken = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	TokenVolumeName       = "eks-pod-identity-token"
	Audience              = "pods.eks.amazonaws.com"
	// TrustedService is the principal a Pod Identity role's trust policy
	// names.
	TrustedService = "pods.eks.amazonaws.com"
)

// Expectation is what a pod credentialed through EKS Pod Identity looks like.
type Expectation struct {
	// Associated is false after the binding released its association:
	// pods must then carry no container credentials.
	Associated bool
	// ChangedAt is when the association last changed in a way that pods
	// started earlier do not see (created, role changed), by the API
	// server's clock: the agent caches credentials per pod, so a pod
	// created before runs with what it got then. Zero means not known (an
	// imported association): pods are judged by what they carry.
	ChangedAt time.Time
	// Pending is set while the change is still to be made (a plan): every
	// pod running now predates it.
	Pending bool
}

var _ recycle.Credentials = Expectation{}

// predates reports whether pod was created before the last change.
// Creation timestamps have whole seconds.
func (e Expectation) predates(pod *corev1.Pod) bool {
	if e.Pending {
		return true
	}
	return !e.ChangedAt.IsZero() && pod.CreationTimestamp.Time.Before(e.ChangedAt.Truncate(time.Second))
}

// Judge decides whether every container the webhook does not exempt carries
// the container credentials, with the token volume, and the pod was created
// after the association's last change.
func (e Expectation) Judge(pod *corev1.Pod) recycle.Verdict {
	if _, skip := pod.Labels[irsa.SkipPodLabel]; skip {
		return recycle.Verdict{Credentialed: true}
	}
	skipped := irsa.SkippedContainers(pod)
	containers := allContainers(pod)
	if !e.Associated {
		for _, c := range containers {
			if !skipped[c.Name] && hasEnv(c, EnvFullURI) && hasEnv(c, EnvAuthorizationToken) && injected(pod) {
				return recycle.Verdict{Reason: fmt.Sprintf("container %s still has EKS Pod Identity credentials (%s)", c.Name, EnvFullURI), Recyclable: true}
			}
		}
		return recycle.Verdict{Credentialed: true}
	}
	checked := 0
	for _, c := range containers {
		if skipped[c.Name] {
			continue
		}
		checked++
		hasURI, hasToken := hasEnv(c, EnvFullURI), hasEnv(c, EnvAuthorizationToken)
		switch {
		case !hasURI && !hasToken:
			if role, ok := envValue(c, irsa.EnvRoleARN); ok {
				return recycle.Verdict{Reason: fmt.Sprintf("container %s runs with IRSA role %s, not EKS Pod Identity (%s)", c.Name, role, e.notMutated(pod)), Recyclable: true}
			}
			return recycle.Verdict{Reason: "has no " + EnvFullURI + " (" + e.notMutated(pod) + ")", Recyclable: true}
		case hasURI != hasToken || !hasMount(c):
			// The webhook adds both or neither: a container that set one
			// itself keeps it, whatever is recycled.
			name := EnvFullURI
			if hasToken {
				name = EnvAuthorizationToken
			}
			return recycle.Verdict{Reason: fmt.Sprintf("container %s presets %s itself; the webhook never overrides a preset value", c.Name, name)}
		}
	}
	if checked == 0 {
		return recycle.Verdict{Credentialed: true}
	}
	if got := tokenAudience(pod); got != Audience {
		if got == "" {
			return recycle.Verdict{Reason: "has no " + TokenVolumeName + " token volume", Recyclable: true}
		}
		return recycle.Verdict{Reason: fmt.Sprintf("%s token audience is %s, not %s", TokenVolumeName, got, Audience), Recyclable: true}
	}
	if e.predates(pod) {
		return recycle.Verdict{Reason: "created before the Pod Identity association's last change, which the agent's cached credentials do not see", Recyclable: true}
	}
	return recycle.Verdict{Credentialed: true}
}

// Injected reports a pod where the webhook injected container credentials.
func (e Expectation) Injected(pod *corev1.Pod) bool { return injected(pod) }

// Lacking says what a pod the webhook left alone lacks.
func (e Expectation) Lacking() string {
	return "no " + EnvFullURI + " and no " + TokenVolumeName + " token volume"
}

func (e Expectation) notMutated(pod *corev1.Pod) string {
	if e.predates(pod) {
		return "created before the association took effect"
	}
	return "not mutated by the pod identity webhook: it was down, or had not seen the association yet"
}

// Credentialed reports whether pod carries EKS Pod Identity credentials in
// some container, whatever the association: what tells a pod the webhook
// gave container credentials from one it gave IRSA's.
func Credentialed(pod *corev1.Pod) bool { return injected(pod) }

func injected(pod *corev1.Pod) bool {
	if tokenAudience(pod) == "" {
		return false
	}
	for _, c := range allContainers(pod) {
		if hasEnv(c, EnvFullURI) && hasEnv(c, EnvAuthorizationToken) {
			return true
		}
	}
	return false
}

func allContainers(pod *corev1.Pod) []corev1.Container { return podspec.Containers(pod) }

func envValue(c corev1.Container, name string) (string, bool) { return podspec.Env(c, name) }

func hasEnv(c corev1.Container, name string) bool { return podspec.HasEnv(c, name) }

func hasMount(c corev1.Container) bool { return podspec.Mounts(c, TokenVolumeName) }

func tokenAudience(pod *corev1.Pod) string {
	if t := podspec.Token(pod, TokenVolumeName); t != nil {
		return t.Audience
	}
	return ""
}
