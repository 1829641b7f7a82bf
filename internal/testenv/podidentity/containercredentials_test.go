package podidentity

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// The expectations below are written from upstream's fixtures
// (pkg/handler/testdata/containercredentials/*.pod.yaml, named per case) and
// the webhook's documented behaviour, never from this package's code: the
// literals are the values upstream documents, not the constants under test.
const (
	ccURI       = "http://169.254.170.23/v1/credentials"
	ccMountPath = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
	ccTokenFile = ccMountPath + "/eks-pod-identity-token"
	ccVolume    = "eks-pod-identity-token"
	// jittered stands for "the default lifetime, jittered": upstream's
	// fixtures show 79200, the low end their seeded random source draws.
	jittered = int64(-1)
)

func ccEnv(extra ...corev1.EnvVar) []corev1.EnvVar {
	return append(extra,
		corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: ccURI},
		corev1.EnvVar{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: ccTokenFile},
	)
}

func ccMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: ccVolume, ReadOnly: true, MountPath: ccMountPath}
}

func ccTokenVolume(expiration int64) corev1.Volume {
	return corev1.Volume{Name: ccVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: "pods.eks.amazonaws.com", ExpirationSeconds: &expiration, Path: "eks-pod-identity-token",
		}}},
	}}}
}

func labelled(p *corev1.Pod) *corev1.Pod {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels["eks.amazonaws.com/pod-identity"] = "enabled"
	return p
}

func TestMutateContainerCredentials(t *testing.T) {
	t.Parallel()
	regionalSA := Entry{RegionalSTS: true, TokenExpiration: 10000, Audience: "sts.amazonaws.com"}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		sa          Entry
		found       bool
		cc          ContainerCredentialsConfig
		cfg         Config
		want        *corev1.Pod
		wantChanged bool
	}{
		{
			name: "rawPodWithoutVolumes: env, mount, jittered token volume and the label",
			pod:  pod(), cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "rawPodNeedsAll: regional STS and expiration from the ServiceAccount, region from the flag",
			pod:  pod(), sa: regionalSA, found: true, cc: DefaultContainerCredentialsConfig(), cfg: Config{Region: "cn-north-1"}, wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv(
					corev1.EnvVar{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
					corev1.EnvVar{Name: "AWS_DEFAULT_REGION", Value: "cn-north-1"},
					corev1.EnvVar{Name: "AWS_REGION", Value: "cn-north-1"},
				)
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(10000)}
			})),
		},
		{
			name: "rawPodWithRoleArn: container credentials take precedence over the role annotation",
			pod:  pod(), sa: Entry{RoleARN: testRole, RegionalSTS: true, TokenExpiration: 10000, Audience: "sts.amazonaws.com"}, found: true,
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv(corev1.EnvVar{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"})
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(10000)}
			})),
		},
		{
			name: "rawPodSkip: skip-containers leaves that container alone",
			pod: pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "sidecar"}
				p.Spec.Containers = []corev1.Container{{Name: "sidecar", Image: "app"}, {Name: "main", Image: "app"}}
			}),
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "sidecar"}
				p.Spec.Containers = []corev1.Container{
					{Name: "sidecar", Image: "app"},
					{Name: "main", Image: "app", Env: ccEnv(), VolumeMounts: []corev1.VolumeMount{ccMount()}},
				}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "rawPodWithVolume: the token volume goes first",
			pod:  pod(func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "tokenPath"}} }),
			cc:   DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered), {Name: "tokenPath"}}
			})),
		},
		{
			name: "rawPodWithConflictingVolumeMount: a volume and mount of that name are kept as they are",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: ccVolume, ReadOnly: true, MountPath: "/some/other/path"}}
				p.Spec.Volumes = []corev1.Volume{{Name: ccVolume, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "token"}}}}
			}),
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: ccVolume, ReadOnly: true, MountPath: "/some/other/path"}}
				p.Spec.Volumes = []corev1.Volume{{Name: ccVolume, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "token"}}}}
			})),
		},
		{
			name: "the fixtures' custom flags reach env, mount and volume",
			pod:  pod(),
			cc: ContainerCredentialsConfig{
				Audience: "con-creds-aud", FullURI: "con-creds-uri", MountPath: "/con-creds-mount-path",
				VolumeName: "con-creds-volume-name", TokenPath: "con-creds-token-path",
			},
			sa: Entry{TokenExpiration: 3600}, found: true, wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				exp := int64(3600)
				p.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "con-creds-uri"},
					{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/con-creds-mount-path/con-creds-token-path"},
				}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "con-creds-volume-name", ReadOnly: true, MountPath: "/con-creds-mount-path"}}
				p.Spec.Volumes = []corev1.Volume{{Name: "con-creds-volume-name", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
						Audience: "con-creds-aud", ExpirationSeconds: &exp, Path: "con-creds-token-path",
					}}},
				}}}}
			})),
		},
		{
			name: "a ServiceAccount missing from the cache means no regional STS and the default lifetime",
			pod:  pod(), sa: regionalSA, found: false, cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "the pod's token-expiration annotation overrides, raised to 600",
			pod:  pod(func(p *corev1.Pod) { p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "60"} }),
			sa:   regionalSA, found: true, cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "60"}
				p.Spec.Containers[0].Env = ccEnv(corev1.EnvVar{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"})
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(600)}
			})),
		},
		{
			name: "a preset container credentials variable wins; the mount is still added",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://127.0.0.1:1/mine"}}
			}),
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://127.0.0.1:1/mine"}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "credentials, region and regional STS all preset: the container is left wholly alone",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "AWS_REGION", Value: "eu-west-1"}, {Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
					{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/mine"},
				}
			}),
			sa: regionalSA, found: true, cc: DefaultContainerCredentialsConfig(), cfg: Config{Region: "cn-north-1"}, wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "AWS_REGION", Value: "eu-west-1"}, {Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
					{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/mine"},
				}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(10000)}
			})),
		},
		{
			name: "preset web identity variables do not stop container credentials",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: testRole}}
			}),
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = ccEnv(corev1.EnvVar{Name: "AWS_ROLE_ARN", Value: testRole})
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "init containers, restartable sidecars included, as in rawPodWithInitContainer",
			pod: pod(func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{{Name: "init"}, {Name: "sidecar", RestartPolicy: &always}}
			}),
			cc: DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{
					{Name: "init", Env: ccEnv(), VolumeMounts: []corev1.VolumeMount{ccMount()}},
					{Name: "sidecar", RestartPolicy: &always, Env: ccEnv(), VolumeMounts: []corev1.VolumeMount{ccMount()}},
				}
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "labels the pod has are kept",
			pod:  pod(func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }),
			cc:   DefaultContainerCredentialsConfig(), wantChanged: true,
			want: pod(func(p *corev1.Pod) {
				p.Labels = map[string]string{"app": "web", "eks.amazonaws.com/pod-identity": "enabled"}
				p.Spec.Containers[0].Env = ccEnv()
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			}),
		},
		{
			name: "windows pods get a windows token path",
			pod:  pod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"} }),
			cc:   DefaultContainerCredentialsConfig(), wantChanged: true,
			want: labelled(pod(func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"}
				p.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: ccURI},
					{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: `C:\var\run\secrets\pods.eks.amazonaws.com\serviceaccount\eks-pod-identity-token`},
				}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{ccMount()}
				p.Spec.Volumes = []corev1.Volume{ccTokenVolume(jittered)}
			})),
		},
		{
			name: "the skip label excludes the pod",
			pod: pod(func(p *corev1.Pod) {
				p.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
			}),
			cc: DefaultContainerCredentialsConfig(),
			want: pod(func(p *corev1.Pod) {
				p.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.pod.DeepCopy()
			if changed := MutateContainerCredentials(got, tt.sa, tt.found, tt.cc, tt.cfg); changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			want := tt.want.DeepCopy()
			acceptJitter(t, want, got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
		})
	}
}

// acceptJitter checks a token lifetime marked jittered against upstream's
// range, [79200, 86400] seconds, and then takes the drawn value as expected.
func acceptJitter(t *testing.T, want, got *corev1.Pod) {
	t.Helper()
	for i, v := range want.Spec.Volumes {
		if v.Projected == nil || *v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds != jittered {
			continue
		}
		if i >= len(got.Spec.Volumes) || got.Spec.Volumes[i].Projected == nil {
			return // the diff reports it
		}
		drawn := *got.Spec.Volumes[i].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds
		if drawn < 79200 || drawn > 86400 {
			t.Errorf("token lifetime %d, want the default jittered into [79200, 86400]", drawn)
		}
		*want.Spec.Volumes[i].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds = drawn
	}
}

// TestMutateContainerCredentials_JittersTheDefaultLifetime checks that the
// default lifetime is spread, not fixed at one value of the range.
func TestMutateContainerCredentials_JittersTheDefaultLifetime(t *testing.T) {
	t.Parallel()
	seen := map[int64]bool{}
	for range 50 {
		p := pod()
		MutateContainerCredentials(p, Entry{TokenExpiration: 86400}, true, DefaultContainerCredentialsConfig(), Config{})
		seen[*p.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken.ExpirationSeconds] = true
	}
	if len(seen) < 2 {
		t.Errorf("50 pods all got the lifetime %v: not jittered", seen)
	}
}

func TestDefaultContainerCredentialsConfig_IsUpstreams(t *testing.T) {
	t.Parallel()
	// Upstream main.go's flag defaults.
	want := ContainerCredentialsConfig{
		Audience:   "pods.eks.amazonaws.com",
		FullURI:    "http://169.254.170.23/v1/credentials",
		MountPath:  "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
		VolumeName: "eks-pod-identity-token",
		TokenPath:  "eks-pod-identity-token",
	}
	if got := DefaultContainerCredentialsConfig(); got != want {
		t.Errorf("DefaultContainerCredentialsConfig() = %+v, want %+v", got, want)
	}
}
