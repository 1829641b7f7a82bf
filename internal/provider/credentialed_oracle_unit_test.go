package provider

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const oracleRole = "arn:aws:iam::111122223333:role/app"

// mutatedContainer is a container as the webhook leaves it, written by hand.
func mutatedContainer(name string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: "busybox",
		Env: []corev1.EnvVar{
			{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
			{Name: "AWS_ROLE_ARN", Value: oracleRole},
			{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
		},
		VolumeMounts: []corev1.VolumeMount{{
			Name: "aws-iam-token", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", ReadOnly: true,
		}},
	}
}

// mutatedPod is a pod with an init container and two containers as the
// webhook mutates it for oracleRole, the default audience and 86400 s.
func mutatedPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-1", Namespace: "default"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "api",
			InitContainers:     []corev1.Container{mutatedContainer("init")},
			Containers:         []corev1.Container{mutatedContainer("app"), mutatedContainer("sidecar")},
			Volumes: []corev1.Volume{{
				Name: "aws-iam-token",
				VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
						Audience: "sts.amazonaws.com", ExpirationSeconds: ptr.To[int64](86400), Path: "token",
					}}},
				}},
			}},
		},
	}
}

func dropEnv(c *corev1.Container, name string) {
	var kept []corev1.EnvVar
	for _, e := range c.Env {
		if e.Name != name {
			kept = append(kept, e)
		}
	}
	c.Env = kept
}

func TestCredentialedOracle(t *testing.T) {
	t.Parallel()
	want := oracleWant{Role: oracleRole, Expiration: ptr.To[int64](86400)}
	token := func(p *corev1.Pod) *corev1.ServiceAccountTokenProjection {
		return p.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken
	}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   oracleWant
		ok     bool
		reason string
	}{
		{name: "mutated", mutate: func(*corev1.Pod) {}, want: want, ok: true},
		{name: "any expiration", mutate: func(p *corev1.Pod) { token(p).ExpirationSeconds = ptr.To[int64](3600) }, want: oracleWant{Role: oracleRole}, ok: true},
		{name: "skipped container unmutated", mutate: func(p *corev1.Pod) {
			p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "sidecar"}
			p.Spec.Containers[1] = corev1.Container{Name: "sidecar"}
		}, want: want, ok: true},
		{name: "pod annotation overrides expiration", mutate: func(p *corev1.Pod) {
			p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "100"}
			token(p).ExpirationSeconds = ptr.To[int64](600)
		}, want: want, ok: true},

		{name: "no env", mutate: func(p *corev1.Pod) {
			for i := range p.Spec.Containers {
				p.Spec.Containers[i].Env = nil
			}
		}, want: want, reason: "no AWS_ROLE_ARN"},
		{name: "no token file env", mutate: func(p *corev1.Pod) { dropEnv(&p.Spec.Containers[0], "AWS_WEB_IDENTITY_TOKEN_FILE") }, want: want, reason: "no AWS_WEB_IDENTITY_TOKEN_FILE"},
		{name: "wrong role", mutate: func(*corev1.Pod) {}, want: oracleWant{Role: "arn:aws:iam::111122223333:role/other"}, reason: "want arn:aws:iam::111122223333:role/other"},
		{name: "wrong role in init container", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Env[1].Value = "arn:aws:iam::111122223333:role/old"
		}, want: want, reason: "container init has AWS_ROLE_ARN"},
		{name: "no volume", mutate: func(p *corev1.Pod) { p.Spec.Volumes = nil }, want: want, reason: "no projected serviceAccountToken volume"},
		{name: "wrong audience", mutate: func(*corev1.Pod) {}, want: oracleWant{Role: oracleRole, Audience: "custom.example.com"}, reason: "token audience"},
		{name: "missing mount in one container", mutate: func(p *corev1.Pod) { p.Spec.Containers[1].VolumeMounts = nil }, want: want, reason: "container sidecar does not mount"},
		{name: "wrong expiration", mutate: func(*corev1.Pod) {}, want: oracleWant{Role: oracleRole, Expiration: ptr.To[int64](3600)}, reason: "expirationSeconds is 86400, want 3600"},
		{name: "expiration raised to the floor", mutate: func(*corev1.Pod) {}, want: oracleWant{Role: oracleRole, Expiration: ptr.To[int64](60)}, reason: "want 600"},
		{name: "pod identity instead", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"})
		}, want: want, reason: "EKS Pod Identity"},
		{name: "skip label", mutate: func(p *corev1.Pod) {
			p.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
		}, want: want, reason: "skip-pod-identity-webhook"},
		{name: "every container skipped", mutate: func(p *corev1.Pod) {
			p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "init,app,sidecar"}
		}, want: want, reason: "no container to judge"},
		{name: "no role expected", mutate: func(*corev1.Pod) {}, want: oracleWant{}, reason: "without a role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mutatedPod()
			tc.mutate(p)
			ok, reason := credentialedOracle(p, tc.want)
			if ok != tc.ok {
				t.Fatalf("ok = %v (%q), want %v", ok, reason, tc.ok)
			}
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q does not say %q", reason, tc.reason)
			}
		})
	}
}

func TestUncredentialedOracle(t *testing.T) {
	t.Parallel()
	if ok, _ := uncredentialedOracle(mutatedPod()); ok {
		t.Error("a mutated pod judged uncredentialed")
	}
	p := mutatedPod()
	p.Spec.Volumes = nil
	if ok, _ := uncredentialedOracle(p); ok {
		t.Error("a pod with the role env judged uncredentialed")
	}
	p = mutatedPod()
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			cs[i].Env, cs[i].VolumeMounts = nil, nil
		}
	}
	if ok, _ := uncredentialedOracle(p); ok {
		t.Error("a pod with the token volume judged uncredentialed")
	}
	p.Spec.Volumes = nil
	if ok, reason := uncredentialedOracle(p); !ok {
		t.Errorf("a plain pod judged credentialed: %s", reason)
	}
}
