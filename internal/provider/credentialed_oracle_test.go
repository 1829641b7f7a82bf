package provider

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// An oracle for "this pod carries the role", written from what the EKS pod
// identity webhook injects (../shared/IRSA.md), independently of the code
// under test: it calls nothing in internal/irsa or internal/recycle nor the webhook port in
// internal/testenv/podidentity, and spells every name and path out itself.

const (
	oracleTokenDir      = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	oracleTokenFile     = oracleTokenDir + "/token"
	oracleVolume        = "aws-iam-token"
	oracleAudience      = "sts.amazonaws.com"
	oracleMinExpiration = int64(600)
)

// oracleWant is what a credentialed pod must show.
type oracleWant struct {
	// Role the containers must carry in AWS_ROLE_ARN.
	Role string
	// Audience of the projected token; empty means sts.amazonaws.com.
	Audience string
	// Expiration is the ServiceAccount's token-expiration in seconds; nil
	// leaves the lifetime unchecked (the webhook's flag decides it).
	Expiration *int64
}

// oracleJudged are the containers the webhook mutates: init containers and
// containers, less those named in the skip-containers annotation.
func oracleJudged(p *corev1.Pod) []corev1.Container {
	skip := map[string]bool{}
	for _, n := range strings.Split(p.Annotations["eks.amazonaws.com/skip-containers"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			skip[n] = true
		}
	}
	var out []corev1.Container
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if !skip[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

func oracleEnv(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// credentialedOracle reports whether pod p carries the credentials w
// describes, and if not, why.
func credentialedOracle(p *corev1.Pod, w oracleWant) (bool, string) {
	if p == nil {
		return false, "no pod"
	}
	if _, skip := p.Labels["eks.amazonaws.com/skip-pod-identity-webhook"]; skip {
		return false, "pod is labelled eks.amazonaws.com/skip-pod-identity-webhook: the webhook never mutates it"
	}
	if w.Role == "" {
		return false, "oracle called without a role to expect"
	}
	judged := oracleJudged(p)
	if len(judged) == 0 {
		return false, "no container to judge"
	}
	for _, c := range judged {
		if _, ok := oracleEnv(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"); ok {
			return false, fmt.Sprintf("container %s has EKS Pod Identity credentials instead of IRSA", c.Name)
		}
		role, ok := oracleEnv(c, "AWS_ROLE_ARN")
		if !ok {
			return false, fmt.Sprintf("container %s has no AWS_ROLE_ARN", c.Name)
		}
		if role != w.Role {
			return false, fmt.Sprintf("container %s has AWS_ROLE_ARN=%s, want %s", c.Name, role, w.Role)
		}
		file, ok := oracleEnv(c, "AWS_WEB_IDENTITY_TOKEN_FILE")
		if !ok {
			return false, fmt.Sprintf("container %s has no AWS_WEB_IDENTITY_TOKEN_FILE", c.Name)
		}
		if file != oracleTokenFile {
			return false, fmt.Sprintf("container %s has AWS_WEB_IDENTITY_TOKEN_FILE=%s, want %s", c.Name, file, oracleTokenFile)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.Name == oracleVolume && m.MountPath == oracleTokenDir && m.ReadOnly {
				mounted = true
			}
		}
		if !mounted {
			return false, fmt.Sprintf("container %s does not mount %s read-only at %s", c.Name, oracleVolume, oracleTokenDir)
		}
	}

	var token *corev1.ServiceAccountTokenProjection
	for _, v := range p.Spec.Volumes {
		if v.Name != oracleVolume || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				token = s.ServiceAccountToken
			}
		}
	}
	if token == nil {
		return false, fmt.Sprintf("pod has no projected serviceAccountToken volume %s", oracleVolume)
	}
	if token.Path != "token" {
		return false, fmt.Sprintf("token volume path is %q, want \"token\"", token.Path)
	}
	audience := w.Audience
	if audience == "" {
		audience = oracleAudience
	}
	if token.Audience != audience {
		return false, fmt.Sprintf("token audience is %q, want %q", token.Audience, audience)
	}
	if want, check := oracleExpiration(p, w); check {
		if token.ExpirationSeconds == nil {
			return false, fmt.Sprintf("token volume has no expirationSeconds, want %d", want)
		}
		if *token.ExpirationSeconds != want {
			return false, fmt.Sprintf("token expirationSeconds is %d, want %d", *token.ExpirationSeconds, want)
		}
	}
	return true, ""
}

// oracleExpiration is the lifetime the webhook gives the token: the pod's
// annotation over the ServiceAccount's, raised to 600 s.
func oracleExpiration(p *corev1.Pod, w oracleWant) (int64, bool) {
	want, check := int64(0), false
	if w.Expiration != nil {
		want, check = *w.Expiration, true
	}
	if s, ok := p.Annotations["eks.amazonaws.com/token-expiration"]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			want, check = n, true
		}
	}
	if want < oracleMinExpiration {
		want = oracleMinExpiration
	}
	return want, check
}

// uncredentialedOracle reports whether pod p carries no injected role: no
// judged container has AWS_ROLE_ARN or AWS_WEB_IDENTITY_TOKEN_FILE, and the
// pod has no aws-iam-token volume.
func uncredentialedOracle(p *corev1.Pod) (bool, string) {
	if p == nil {
		return false, "no pod"
	}
	for _, c := range oracleJudged(p) {
		for _, name := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
			if v, ok := oracleEnv(c, name); ok {
				return false, fmt.Sprintf("container %s still has %s=%s", c.Name, name, v)
			}
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == oracleVolume {
			return false, fmt.Sprintf("pod still has volume %s", oracleVolume)
		}
	}
	return true, ""
}
