package irsa

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/podspec"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// What the pod identity webhook injects and honours.
const (
	EnvRoleARN               = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile  = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvSTSRegionalEndpoints  = "AWS_STS_REGIONAL_ENDPOINTS"
	TokenVolumeName          = "aws-iam-token"
	DefaultAudience          = "sts.amazonaws.com"
	SkipPodLabel             = "eks.amazonaws.com/skip-pod-identity-webhook"
	SkipContainersAnnotation = "eks.amazonaws.com/skip-containers"
	// MinTokenExpiration is the webhook's floor for token lifetimes.
	MinTokenExpiration = int64(600)

	// envContainerCredentialsFullURI is what the webhook injects for EKS
	// Pod Identity, which it gives precedence over IRSA.
	envContainerCredentialsFullURI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
)

// Expectation is what a pod credentialed through IRSA by one binding looks
// like: the engine's recycle.Credentials for IRSA.
type Expectation struct {
	// RoleARN is the role pods must carry; empty means pods must carry
	// no injected role (after the binding was destroyed).
	RoleARN string
	// Audience of the token volume; empty means DefaultAudience.
	Audience string
	// STSRegionalEndpoints is the binding's sts-regional-endpoints
	// annotation; nil leaves the variable to the webhook's flag.
	STSRegionalEndpoints *bool
	// TokenExpiration is the binding's token-expiration annotation in
	// seconds; nil leaves the lifetime to the webhook's flag.
	TokenExpiration *int64
	// AnnotatedAt is when the annotations were last applied, by the API
	// server's clock (managedFields), to tell "created before the
	// annotation" from "the webhook did not mutate it". Zero means not
	// applied yet: every pod predates it.
	AnnotatedAt time.Time
	// PodIdentityDeleted is set after the binding deleted the
	// ServiceAccount's EKS Pod Identity association (a move back to
	// IRSA): container credentials in a pod predate that, so the pod is
	// stale and recyclable, and a dry-run pod that still gets them shows
	// EKS propagating the deletion, not a precedence to give up on.
	PodIdentityDeleted bool
}

// predates reports whether pod was created before the annotations were
// applied. Creation timestamps have whole seconds.
func (e Expectation) predates(pod *corev1.Pod) bool {
	return e.AnnotatedAt.IsZero() || pod.CreationTimestamp.Time.Before(e.AnnotatedAt.Truncate(time.Second))
}

var _ recycle.Credentials = Expectation{}

// Judge is Inspect, for the engine.
func (e Expectation) Judge(pod *corev1.Pod) recycle.Verdict { return Inspect(pod, e) }

// Injected reports a pod where some container carries the webhook's pair of
// web identity variables, whatever the role.
func (e Expectation) Injected(pod *corev1.Pod) bool {
	for _, c := range podspec.Containers(pod) {
		if hasEnv(c, EnvRoleARN) && hasEnv(c, EnvWebIdentityTokenFile) {
			return true
		}
	}
	return false
}

// Lacking says what a pod the webhook left alone lacks.
func (e Expectation) Lacking() string {
	return "no " + EnvRoleARN + " and no " + TokenVolumeName + " token volume"
}

// Inspect decides whether pod carries the credentials e describes. A pod is
// credentialed when every container and init container that the webhook does
// not exempt (the skip label, the skip-containers annotation) has AWS_ROLE_ARN
// equal to the role, AWS_WEB_IDENTITY_TOKEN_FILE, and the token volume with the
// expected audience.
func Inspect(pod *corev1.Pod, e Expectation) recycle.Verdict {
	if _, skip := pod.Labels[SkipPodLabel]; skip {
		return recycle.Verdict{Credentialed: true}
	}
	skipped := SkippedContainers(pod)
	audience := e.Audience
	if audience == "" {
		audience = DefaultAudience
	}

	containers := podspec.Containers(pod)
	if e.RoleARN == "" {
		for _, c := range containers {
			if skipped[c.Name] {
				continue
			}
			if role, ok := envValue(c, EnvRoleARN); ok && hasEnv(c, EnvWebIdentityTokenFile) {
				return recycle.Verdict{Reason: fmt.Sprintf("container %s still has role %s injected", c.Name, role), Recyclable: true}
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
		if hasEnv(c, envContainerCredentialsFullURI) && e.PodIdentityDeleted {
			return recycle.Verdict{Reason: fmt.Sprintf("container %s still has EKS Pod Identity credentials (%s) from the association "+
				"this binding deleted", c.Name, envContainerCredentialsFullURI), Recyclable: true}
		}
		if hasEnv(c, envContainerCredentialsFullURI) {
			return recycle.Verdict{
				Reason: fmt.Sprintf("container %s is credentialed by EKS Pod Identity (%s), which the webhook gives precedence over IRSA: "+
					"no restart gives pods this role; delete the Pod Identity association of the ServiceAccount "+
					"(aws eks delete-pod-identity-association) to use IRSA", c.Name, envContainerCredentialsFullURI),
				Superseded: true,
			}
		}
		role, hasRole := envValue(c, EnvRoleARN)
		_, hasFile := envValue(c, EnvWebIdentityTokenFile)
		mounted := hasMount(c)
		switch {
		case !hasRole && !hasFile:
			return recycle.Verdict{Reason: notMutatedReason(pod, e), Recyclable: true}
		case hasRole != hasFile || !mounted:
			// Half of the pair: the container set one variable itself,
			// so the webhook added neither.
			return recycle.Verdict{Reason: fmt.Sprintf("container %s presets %s itself; the webhook never overrides a preset value", c.Name, presetName(hasRole)), Recyclable: false}
		case role != e.RoleARN:
			if injectedByWebhook(c) {
				return recycle.Verdict{Reason: fmt.Sprintf("runs with role %s, not %s", role, e.RoleARN), Recyclable: true}
			}
			return recycle.Verdict{Reason: fmt.Sprintf("container %s presets AWS_ROLE_ARN=%s itself; the webhook never overrides a preset value", c.Name, role), Recyclable: false}
		}
	}
	if checked == 0 {
		return recycle.Verdict{Credentialed: true}
	}
	if got := tokenAudience(pod); got != audience {
		if got == "" {
			return recycle.Verdict{Reason: "has no " + TokenVolumeName + " token volume", Recyclable: true}
		}
		return recycle.Verdict{Reason: fmt.Sprintf("token audience is %s, not %s", got, audience), Recyclable: true}
	}
	if reason, stale := tokenExpirationDiffers(pod, e); stale {
		return recycle.Verdict{Reason: reason, Recyclable: true}
	}
	if reason, stale := regionalSTSDiffers(pod, containers, skipped, e); stale {
		return recycle.Verdict{Reason: reason, Recyclable: true}
	}
	return recycle.Verdict{Credentialed: true}
}

// tokenExpirationDiffers compares the token volume's lifetime with what the
// webhook would set now: the pod's own annotation over the binding's, raised
// to the webhook's floor.
func tokenExpirationDiffers(pod *corev1.Pod, e Expectation) (string, bool) {
	if e.TokenExpiration == nil {
		return "", false
	}
	want := *e.TokenExpiration
	if v, ok := pod.Annotations[TokenExpirationAnnotation]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			want = n
		}
	}
	want = max(want, MinTokenExpiration)
	got := tokenExpiration(pod)
	if got == want {
		return "", false
	}
	return fmt.Sprintf("token expiration is %ds, not %ds", got, want), true
}

// regionalSTSDiffers compares AWS_STS_REGIONAL_ENDPOINTS with the binding.
// With true the webhook adds it to every container that lacks it. With false
// it adds nothing, but a container may set the variable itself, so only a
// pod created before the annotation changed counts as stale for having it.
func regionalSTSDiffers(pod *corev1.Pod, containers []corev1.Container, skipped map[string]bool, e Expectation) (string, bool) {
	if e.STSRegionalEndpoints == nil {
		return "", false
	}
	for _, c := range containers {
		if skipped[c.Name] {
			continue
		}
		_, has := envValue(c, EnvSTSRegionalEndpoints)
		switch {
		case *e.STSRegionalEndpoints && !has:
			return fmt.Sprintf("container %s has no %s; the binding asks for the regional STS endpoint", c.Name, EnvSTSRegionalEndpoints), true
		case !*e.STSRegionalEndpoints && has && e.predates(pod):
			return fmt.Sprintf("container %s still has %s from before the binding turned regional endpoints off", c.Name, EnvSTSRegionalEndpoints), true
		}
	}
	return "", false
}

func notMutatedReason(pod *corev1.Pod, e Expectation) string {
	if e.predates(pod) {
		return "created before the role annotation"
	}
	return "not mutated by the pod identity webhook (it was down, or had not seen the annotation yet)"
}

func presetName(hasRole bool) string {
	if hasRole {
		return EnvRoleARN
	}
	return EnvWebIdentityTokenFile
}

// injectedByWebhook tells the webhook's pair (role plus token file at the
// webhook's path, with the mount) from variables a user wrote.
func injectedByWebhook(c corev1.Container) bool {
	file, _ := envValue(c, EnvWebIdentityTokenFile)
	return strings.HasSuffix(file, "/eks.amazonaws.com/serviceaccount/token") || strings.HasSuffix(file, `\eks.amazonaws.com\serviceaccount\token`)
}

func envValue(c corev1.Container, name string) (string, bool) { return podspec.Env(c, name) }

func hasEnv(c corev1.Container, name string) bool { return podspec.HasEnv(c, name) }

func hasMount(c corev1.Container) bool { return podspec.Mounts(c, TokenVolumeName) }

func tokenExpiration(pod *corev1.Pod) int64 {
	if t := podspec.Token(pod, TokenVolumeName); t != nil && t.ExpirationSeconds != nil {
		return *t.ExpirationSeconds
	}
	return 0
}

func tokenAudience(pod *corev1.Pod) string {
	if t := podspec.Token(pod, TokenVolumeName); t != nil {
		return t.Audience
	}
	return ""
}

// SkippedContainers reads the skip-containers annotation as the webhook
// does; both mechanisms honour it. The local
// environment's webhook (internal/testenv/podidentity) parses it on its own on
// purpose: the tests compare two readings of upstream's behaviour, and a
// shared bug would make them agree.
func SkippedContainers(pod *corev1.Pod) map[string]bool {
	raw, ok := pod.Annotations[SkipContainersAnnotation]
	if !ok {
		return nil
	}
	names, err := csv.NewReader(strings.NewReader(raw)).Read()
	if err != nil {
		return nil
	}
	skip := map[string]bool{}
	for _, n := range names {
		skip[n] = true
	}
	return skip
}
