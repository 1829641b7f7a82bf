package podidentity

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fixtures spell out what the pod identity webhook injects in
// container-credentials mode as AWS documents it (literal names, not this
// package's constants): the two variables, the token volume with audience
// pods.eks.amazonaws.com and its mount.

var changedAt = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func container(name string, env ...corev1.EnvVar) corev1.Container {
	return corev1.Container{Name: name, Image: "app", Env: env}
}

func withPodIdentity(c corev1.Container) corev1.Container {
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"},
		corev1.EnvVar{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "eks-pod-identity-token", MountPath: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount", ReadOnly: true})
	return c
}

func tokenVolume(audience string) corev1.Volume {
	return corev1.Volume{Name: "eks-pod-identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, Path: "eks-pod-identity-token"}}},
	}}}
}

func pod(created time.Time, volumes []corev1.Volume, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", CreationTimestamp: metav1.NewTime(created)},
		Spec:       corev1.PodSpec{ServiceAccountName: "sa", Containers: containers, Volumes: volumes},
	}
}

// judgeCase is a pod and what Judge must say of it.
type judgeCase struct {
	name         string
	pod          *corev1.Pod
	associated   bool
	credentialed bool
	recyclable   bool
	reason       string
}

func judgeCases() []judgeCase {
	after, before := changedAt.Add(time.Minute), changedAt.Add(-time.Minute)
	irsaEnv := []corev1.EnvVar{
		{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::123456789012:role/old"},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
	}
	half := container("app", corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://127.0.0.1:1/creds"})
	skipped := pod(after, nil, container("app"), withPodIdentity(container("side")))
	skipped.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "app"}
	skipLabel := pod(after, nil, container("app"))
	skipLabel.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}

	return []judgeCase{
		{"injected after the change", pod(after, []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app"))), true, true, false, ""},
		{"same second as the change", pod(changedAt.Add(400*time.Millisecond), []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app"))), true, true, false, ""},
		{"injected before the change", pod(before, []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app"))), true, false, true, "created before"},
		{"still on IRSA", pod(before, nil, container("app", irsaEnv...)), true, false, true, "IRSA role arn:aws:iam::123456789012:role/old"},
		{"nothing injected after the change", pod(after, nil, container("app")), true, false, true, "not mutated"},
		{"one of two containers injected", pod(after, []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app")), container("side")), true, false, true, "has no AWS_CONTAINER_CREDENTIALS_FULL_URI"},
		{"a container presets the URI", pod(after, nil, half), true, false, false, "presets AWS_CONTAINER_CREDENTIALS_FULL_URI"},
		{"wrong audience", pod(after, []corev1.Volume{tokenVolume("sts.amazonaws.com")}, withPodIdentity(container("app"))), true, false, true, "audience is sts.amazonaws.com"},
		{"no token volume", pod(after, nil, withPodIdentity(container("app"))), true, false, true, "no eks-pod-identity-token"},
		{"skipped container", func() *corev1.Pod {
			p := skipped.DeepCopy()
			p.Spec.Volumes = []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}
			return p
		}(), true, true, false, ""},
		{"skip label", skipLabel, true, true, false, ""},
		{"released, pod still injected", pod(before, []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app"))), false, false, true, "still has EKS Pod Identity"},
		{"released, pod plain", pod(before, nil, container("app")), false, true, false, ""},
		{"released, pod on IRSA", pod(before, nil, container("app", irsaEnv...)), false, true, false, ""},
	}
}

func TestJudge(t *testing.T) {
	tests := judgeCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Expectation{Associated: tt.associated, ChangedAt: changedAt}.Judge(tt.pod)
			if v.Credentialed != tt.credentialed || (!v.Credentialed && v.Recyclable != tt.recyclable) {
				t.Fatalf("Judge = %+v, want credentialed %v recyclable %v", v, tt.credentialed, tt.recyclable)
			}
			if !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", v.Reason, tt.reason)
			}
		})
	}
}

func TestChangeTime(t *testing.T) {
	old := pod(changedAt.Add(-time.Hour), []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app")))
	if v := (Expectation{Associated: true}).Judge(old); !v.Credentialed {
		t.Errorf("with no change time known, a pod is judged by what it carries: got %+v", v)
	}
	if v := (Expectation{Associated: true, Pending: true}).Judge(old); v.Credentialed || !v.Recyclable {
		t.Errorf("a change still to be made predates every pod: got %+v", v)
	}
	if v := (Expectation{Associated: true, Pending: true}).Judge(pod(changedAt, nil, container("app"))); v.Credentialed || !strings.Contains(v.Reason, "created before") {
		t.Errorf("a pod without credentials, before a pending change: got %+v", v)
	}
}

func TestInjected(t *testing.T) {
	with := pod(changedAt, []corev1.Volume{tokenVolume("pods.eks.amazonaws.com")}, withPodIdentity(container("app")))
	if !(Expectation{}).Injected(with) || !Credentialed(with) {
		t.Error("a pod with both variables and the token volume is injected")
	}
	if (Expectation{}).Injected(pod(changedAt, nil, container("app"))) {
		t.Error("a plain pod is not injected")
	}
	if (Expectation{}).Injected(pod(changedAt, nil, withPodIdentity(container("app")))) {
		t.Error("variables without the webhook's token volume were not injected by it")
	}
}
