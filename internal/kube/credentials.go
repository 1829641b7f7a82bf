package kube

import (
	"encoding/csv"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// What the pod identity webhook injects and honours.
const (
	EnvRoleARN               = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile  = "AWS_WEB_IDENTITY_TOKEN_FILE"
	TokenVolumeName          = "aws-iam-token"
	DefaultAudience          = "sts.amazonaws.com"
	SkipPodLabel             = "eks.amazonaws.com/skip-pod-identity-webhook"
	SkipContainersAnnotation = "eks.amazonaws.com/skip-containers"
)

// Expectation is what a credentialed pod of a binding looks like.
type Expectation struct {
	// RoleARN is the role pods must carry; empty means pods must carry
	// no injected role (after the binding was destroyed).
	RoleARN string
	// Audience of the token volume; empty means DefaultAudience.
	Audience string
	// AnnotatedAt is when the role annotation was last applied, to tell
	// "created before the annotation" from "the webhook did not mutate it".
	AnnotatedAt time.Time
}

// Verdict is the outcome of inspecting one pod.
type Verdict struct {
	Credentialed bool
	// Reason explains a pod that is not credentialed, for people.
	Reason string
	// Recyclable is false when re-creating the pod cannot help: a
	// container presets the variables, which the webhook never overrides.
	Recyclable bool
}

// Inspect decides whether pod carries the credentials e describes. A pod is
// credentialed when every container and init container that the webhook does
// not exempt (the skip label, the skip-containers annotation) has AWS_ROLE_ARN
// equal to the role, AWS_WEB_IDENTITY_TOKEN_FILE, and the token volume with the
// expected audience.
func Inspect(pod *corev1.Pod, e Expectation) Verdict {
	if _, skip := pod.Labels[SkipPodLabel]; skip {
		return Verdict{Credentialed: true}
	}
	skipped := skipContainers(pod)
	audience := e.Audience
	if audience == "" {
		audience = DefaultAudience
	}

	var containers []corev1.Container
	containers = append(containers, pod.Spec.InitContainers...)
	containers = append(containers, pod.Spec.Containers...)
	if e.RoleARN == "" {
		for _, c := range containers {
			if skipped[c.Name] {
				continue
			}
			if role, ok := envValue(c, EnvRoleARN); ok && hasEnv(c, EnvWebIdentityTokenFile) {
				return Verdict{Reason: fmt.Sprintf("container %s still has role %s injected", c.Name, role), Recyclable: true}
			}
		}
		return Verdict{Credentialed: true}
	}

	checked := 0
	for _, c := range containers {
		if skipped[c.Name] {
			continue
		}
		checked++
		role, hasRole := envValue(c, EnvRoleARN)
		_, hasFile := envValue(c, EnvWebIdentityTokenFile)
		mounted := hasMount(c)
		switch {
		case !hasRole && !hasFile:
			return Verdict{Reason: notMutatedReason(pod, e), Recyclable: true}
		case hasRole != hasFile || !mounted:
			// Half of the pair: the container set one variable itself,
			// so the webhook added neither.
			return Verdict{Reason: fmt.Sprintf("container %s presets %s itself; the webhook never overrides a preset value", c.Name, presetName(hasRole)), Recyclable: false}
		case role != e.RoleARN:
			if injectedByWebhook(c) {
				return Verdict{Reason: fmt.Sprintf("runs with role %s, not %s", role, e.RoleARN), Recyclable: true}
			}
			return Verdict{Reason: fmt.Sprintf("container %s presets AWS_ROLE_ARN=%s itself; the webhook never overrides a preset value", c.Name, role), Recyclable: false}
		}
	}
	if checked == 0 {
		return Verdict{Credentialed: true}
	}
	if got := tokenAudience(pod); got != audience {
		if got == "" {
			return Verdict{Reason: "has no " + TokenVolumeName + " token volume", Recyclable: true}
		}
		return Verdict{Reason: fmt.Sprintf("token audience is %s, not %s", got, audience), Recyclable: true}
	}
	return Verdict{Credentialed: true}
}

func notMutatedReason(pod *corev1.Pod, e Expectation) string {
	if !e.AnnotatedAt.IsZero() && pod.CreationTimestamp.Time.Before(e.AnnotatedAt.Truncate(time.Second)) {
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

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func hasEnv(c corev1.Container, name string) bool {
	_, ok := envValue(c, name)
	return ok
}

func hasMount(c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == TokenVolumeName {
			return true
		}
	}
	return false
}

func tokenAudience(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name != TokenVolumeName || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return s.ServiceAccountToken.Audience
			}
		}
	}
	return ""
}

// skipContainers reads the annotation as the webhook does. The local
// environment's webhook (internal/testenv/podidentity) parses it on its own on
// purpose: the tests compare two readings of upstream's behaviour, and a
// shared bug would make them agree.
func skipContainers(pod *corev1.Pod) map[string]bool {
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
