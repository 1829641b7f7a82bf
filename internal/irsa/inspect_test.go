package irsa

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const (
	roleA     = "arn:aws:iam::123456789012:role/a"
	roleB     = "arn:aws:iam::123456789012:role/b"
	tokenFile = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

// mutated is a container as the webhook leaves it for role.
func mutated(name, role string) corev1.Container {
	return corev1.Container{
		Name: name,
		Env:  []corev1.EnvVar{{Name: EnvRoleARN, Value: role}, {Name: EnvWebIdentityTokenFile, Value: tokenFile}},
		VolumeMounts: []corev1.VolumeMount{{
			Name: TokenVolumeName, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", ReadOnly: true,
		}},
	}
}

func tokenVolume(audience string) corev1.Volume {
	exp := int64(86400)
	return corev1.Volume{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: &exp, Path: "token"}}},
	}}}
}

func testPod(created time.Time, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(created)},
		Spec:       corev1.PodSpec{Containers: containers, Volumes: []corev1.Volume{tokenVolume(DefaultAudience)}},
	}
}

func withExpiration(p *corev1.Pod, seconds int64) *corev1.Pod {
	p.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds = &seconds
	return p
}

func withEnv(p *corev1.Pod, name, value string) *corev1.Pod {
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: name, Value: value})
	return p
}

// inspectCase is a pod, what it is judged against, and the verdict.
type inspectCase struct {
	name           string
	pod            *corev1.Pod
	e              Expectation
	credentialed   bool
	recyclable     bool
	reasonContains string
	// superseded: another mechanism wins, which the gate stops on.
	superseded bool
}

// inspectCases are TestInspect's fixtures; the trim-safety test judges
// each again, trimmed.
func inspectCases() []inspectCase {
	annotated := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	before, after := annotated.Add(-time.Hour), annotated.Add(time.Minute)
	want := Expectation{RoleARN: roleA, AnnotatedAt: annotated}

	return []inspectCase{
		{name: "credentialed", pod: testPod(after, mutated("app", roleA)), e: want, credentialed: true},
		{
			name: "created before the annotation", pod: testPod(before, corev1.Container{Name: "app"}), e: want,
			recyclable: true, reasonContains: "created before the role annotation",
		},
		{
			name: "created after, not mutated", pod: testPod(after, corev1.Container{Name: "app"}), e: want,
			recyclable: true, reasonContains: "not mutated by the pod identity webhook",
		},
		{
			name: "old role injected", pod: testPod(after, mutated("app", roleB)), e: want,
			recyclable: true, reasonContains: "runs with role " + roleB,
		},
		{
			name: "one of two containers stale", pod: testPod(after, mutated("app", roleA), corev1.Container{Name: "sidecar"}), e: want,
			recyclable: true, reasonContains: "not mutated",
		},
		{
			name: "init container counts", pod: func() *corev1.Pod {
				p := testPod(after, mutated("app", roleA))
				p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
				return p
			}(), e: want, recyclable: true, reasonContains: "not mutated",
		},
		{
			name: "skipped container is exempt", pod: func() *corev1.Pod {
				p := testPod(after, mutated("app", roleA), corev1.Container{Name: "sidecar"})
				p.Annotations = map[string]string{SkipContainersAnnotation: "sidecar"}
				return p
			}(), e: want, credentialed: true,
		},
		{
			name: "skip label exempts the pod", pod: func() *corev1.Pod {
				p := testPod(after, corev1.Container{Name: "app"})
				p.Labels = map[string]string{SkipPodLabel: "true"}
				return p
			}(), e: want, credentialed: true,
		},
		{
			name: "preset role without the token file", pod: testPod(after, corev1.Container{
				Name: "app", Env: []corev1.EnvVar{{Name: EnvRoleARN, Value: roleA}},
				VolumeMounts: []corev1.VolumeMount{{Name: TokenVolumeName}},
			}), e: want, reasonContains: "presets AWS_ROLE_ARN itself",
		},
		{
			name: "preset pair of another role", pod: testPod(after, corev1.Container{
				Name:         "app",
				Env:          []corev1.EnvVar{{Name: EnvRoleARN, Value: roleB}, {Name: EnvWebIdentityTokenFile, Value: "/mine/token"}},
				VolumeMounts: []corev1.VolumeMount{{Name: TokenVolumeName}},
			}), e: want, reasonContains: "presets AWS_ROLE_ARN=" + roleB,
		},
		{
			name: "wrong audience", pod: testPod(after, mutated("app", roleA)), e: Expectation{RoleARN: roleA, Audience: "custom"},
			recyclable: true, reasonContains: "token audience is sts.amazonaws.com, not custom",
		},
		{
			name: "no token volume", pod: func() *corev1.Pod {
				p := testPod(after, mutated("app", roleA))
				p.Spec.Volumes = nil
				return p
			}(), e: want, recyclable: true, reasonContains: "has no aws-iam-token token volume",
		},
		{
			name: "EKS Pod Identity takes precedence", pod: testPod(after, corev1.Container{
				Name: "app", Env: []corev1.EnvVar{{Name: envContainerCredentialsFullURI, Value: "http://169.254.170.23/v1/credentials"}},
			}), e: want, reasonContains: "EKS Pod Identity", superseded: true,
		},
		{
			name: "token expiration differs from the binding's", pod: testPod(after, mutated("app", roleA)),
			e: Expectation{RoleARN: roleA, TokenExpiration: ptr.To[int64](3600)}, recyclable: true, reasonContains: "token expiration is 86400s, not 3600s",
		},
		{
			name: "token expiration below the floor is raised", pod: withExpiration(testPod(after, mutated("app", roleA)), 600),
			e: Expectation{RoleARN: roleA, TokenExpiration: ptr.To[int64](60)}, credentialed: true,
		},
		{
			name: "the pod's own token expiration wins", pod: func() *corev1.Pod {
				p := withExpiration(testPod(after, mutated("app", roleA)), 7200)
				p.Annotations = map[string]string{TokenExpirationAnnotation: "7200"}
				return p
			}(), e: Expectation{RoleARN: roleA, TokenExpiration: ptr.To[int64](3600)}, credentialed: true,
		},
		{
			name: "regional STS asked for, missing", pod: testPod(after, mutated("app", roleA)),
			e: Expectation{RoleARN: roleA, STSRegionalEndpoints: ptr.To(true), AnnotatedAt: annotated}, recyclable: true, reasonContains: "has no AWS_STS_REGIONAL_ENDPOINTS",
		},
		{
			name: "regional STS turned off, pod from before", pod: withEnv(testPod(before, mutated("app", roleA)), EnvSTSRegionalEndpoints, "regional"),
			e: Expectation{RoleARN: roleA, STSRegionalEndpoints: ptr.To(false), AnnotatedAt: annotated}, recyclable: true, reasonContains: "still has AWS_STS_REGIONAL_ENDPOINTS",
		},
		{
			name: "regional STS off, pod from after sets it itself", pod: withEnv(testPod(after, mutated("app", roleA)), EnvSTSRegionalEndpoints, "regional"),
			e: Expectation{RoleARN: roleA, STSRegionalEndpoints: ptr.To(false), AnnotatedAt: annotated}, credentialed: true,
		},
		{
			name: "not applied yet: every pod predates it", pod: testPod(after, corev1.Container{Name: "app"}),
			e: Expectation{RoleARN: roleA}, recyclable: true, reasonContains: "created before the role annotation",
		},
		{name: "after destroy: no role is right", pod: testPod(after, corev1.Container{Name: "app"}), e: Expectation{}, credentialed: true},
		{
			name: "after destroy: role still injected", pod: testPod(after, mutated("app", roleA)), e: Expectation{},
			recyclable: true, reasonContains: "still has role",
		},
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	for _, tt := range inspectCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := Inspect(tt.pod, tt.e)
			if v.Superseded != tt.superseded {
				t.Errorf("Superseded = %v, want %v", v.Superseded, tt.superseded)
			}
			if v.Credentialed != tt.credentialed || (!v.Credentialed && v.Recyclable != tt.recyclable) {
				t.Fatalf("Inspect() = %+v, want credentialed %v recyclable %v", v, tt.credentialed, tt.recyclable)
			}
			if !strings.Contains(v.Reason, tt.reasonContains) {
				t.Errorf("reason %q does not contain %q", v.Reason, tt.reasonContains)
			}
		})
	}
}

// Injected tells the gate a webhook whose cache lags (the pair injected,
// another role) from one that did not mutate the pod.
func TestExpectation_Injected(t *testing.T) {
	t.Parallel()
	e := Expectation{RoleARN: roleA}
	if !e.Injected(testPod(time.Now(), mutated("app", roleB))) {
		t.Error("a pod with another role injected is not Injected")
	}
	if e.Injected(testPod(time.Now(), corev1.Container{Name: "app"})) {
		t.Error("a pod the webhook left alone is Injected")
	}
	if e.Injected(testPod(time.Now(), corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: EnvRoleARN, Value: roleA}}})) {
		t.Error("a container presetting only AWS_ROLE_ARN is Injected: the webhook injects the pair")
	}
	if got := e.Lacking(); !strings.Contains(got, EnvRoleARN) || !strings.Contains(got, TokenVolumeName) {
		t.Errorf("Lacking() = %q names neither the variable nor the volume", got)
	}
}
