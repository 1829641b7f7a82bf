package podidentity

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testRole = "arn:aws:iam::123456789012:role/app"

func sa(annotations map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Annotations: annotations}}
}

func pod(mutators ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			Containers:         []corev1.Container{{Name: "main", Image: "app"}},
		},
	}
	for _, m := range mutators {
		m(p)
	}
	return p
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func hasMount(c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == TokenVolumeName && m.MountPath == DefaultTokenMountPath && m.ReadOnly {
			return true
		}
	}
	return false
}

func tokenVolume(p *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	for _, v := range p.Spec.Volumes {
		if v.Name == TokenVolumeName && v.Projected != nil && len(v.Projected.Sources) == 1 {
			return v.Projected.Sources[0].ServiceAccountToken
		}
	}
	return nil
}

func TestEntryFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		annotations map[string]string
		cfg         Config
		want        Entry
	}{
		{
			name:        "defaults",
			annotations: map[string]string{RoleARNAnnotation: testRole},
			cfg:         DefaultConfig(),
			want:        Entry{RoleARN: testRole, Audience: "sts.amazonaws.com", TokenExpiration: 86400},
		},
		{
			name:        "no role",
			annotations: map[string]string{"other": "x"},
			cfg:         DefaultConfig(),
			want:        Entry{Audience: "sts.amazonaws.com", TokenExpiration: 86400},
		},
		{
			name: "every annotation",
			annotations: map[string]string{
				RoleARNAnnotation: testRole, AudienceAnnotation: "custom",
				STSRegionalEndpointsAnnotation: "true", TokenExpirationAnnotation: "3600",
			},
			cfg:  DefaultConfig(),
			want: Entry{RoleARN: testRole, Audience: "custom", RegionalSTS: true, TokenExpiration: 3600},
		},
		{
			name:        "expiration below the minimum is raised to 600",
			annotations: map[string]string{RoleARNAnnotation: testRole, TokenExpirationAnnotation: "60"},
			cfg:         DefaultConfig(),
			want:        Entry{RoleARN: testRole, Audience: "sts.amazonaws.com", TokenExpiration: 600},
		},
		{
			name:        "unparsable expiration keeps the flag's",
			annotations: map[string]string{RoleARNAnnotation: testRole, TokenExpirationAnnotation: "1h"},
			cfg:         DefaultConfig(),
			want:        Entry{RoleARN: testRole, Audience: "sts.amazonaws.com", TokenExpiration: 86400},
		},
		{
			name:        "annotation false overrides the regional flag",
			annotations: map[string]string{RoleARNAnnotation: testRole, STSRegionalEndpointsAnnotation: "false"},
			cfg:         Config{RegionalSTS: true},
			want:        Entry{RoleARN: testRole, Audience: "sts.amazonaws.com", TokenExpiration: 86400},
		},
		{
			name:        "unparsable regional value keeps the flag's",
			annotations: map[string]string{RoleARNAnnotation: testRole, STSRegionalEndpointsAnnotation: "yes"},
			cfg:         Config{RegionalSTS: true, Audience: "flag-aud", TokenExpiration: 7200},
			want:        Entry{RoleARN: testRole, Audience: "flag-aud", RegionalSTS: true, TokenExpiration: 7200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := EntryFor(sa(tt.annotations), tt.cfg); got != tt.want {
				t.Errorf("EntryFor() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMutate(t *testing.T) {
	t.Parallel()
	entry := Entry{RoleARN: testRole, Audience: "sts.amazonaws.com", TokenExpiration: 86400}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		entry       Entry
		cfg         Config
		wantChanged bool
		check       func(t *testing.T, p *corev1.Pod)
	}{
		{
			name: "injects env, mount and volume", pod: pod(), entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				c := p.Spec.Containers[0]
				if v, _ := env(c, EnvRoleARN); v != testRole {
					t.Errorf("AWS_ROLE_ARN = %q", v)
				}
				if v, _ := env(c, EnvWebIdentityTokenFile); v != DefaultTokenMountPath+"/token" {
					t.Errorf("AWS_WEB_IDENTITY_TOKEN_FILE = %q", v)
				}
				if _, ok := env(c, EnvSTSRegionalEndpoints); ok {
					t.Error("AWS_STS_REGIONAL_ENDPOINTS set without the annotation")
				}
				if !hasMount(c) {
					t.Error("token mount missing")
				}
				tv := tokenVolume(p)
				if tv == nil || tv.Audience != "sts.amazonaws.com" || *tv.ExpirationSeconds != 86400 || tv.Path != "token" {
					t.Errorf("token volume = %+v", tv)
				}
			},
		},
		{
			name: "no role leaves the pod alone", pod: pod(), entry: Entry{Audience: "sts.amazonaws.com"}, cfg: DefaultConfig(),
			check: func(t *testing.T, p *corev1.Pod) {
				if len(p.Spec.Containers[0].Env) != 0 || len(p.Spec.Volumes) != 0 {
					t.Error("pod changed")
				}
			},
		},
		{
			name: "custom audience goes to the volume",
			pod:  pod(), entry: Entry{RoleARN: testRole, Audience: "custom", TokenExpiration: 3600}, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if tv := tokenVolume(p); tv == nil || tv.Audience != "custom" || *tv.ExpirationSeconds != 3600 {
					t.Errorf("token volume = %+v", tv)
				}
			},
		},
		{
			name: "regional STS", pod: pod(), entry: Entry{RoleARN: testRole, Audience: "a", TokenExpiration: 600, RegionalSTS: true},
			cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if v, _ := env(p.Spec.Containers[0], EnvSTSRegionalEndpoints); v != "regional" {
					t.Errorf("AWS_STS_REGIONAL_ENDPOINTS = %q", v)
				}
			},
		},
		{
			name: "default region", pod: pod(), entry: entry, cfg: Config{Region: "eu-west-1"}, wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				for _, k := range []string{EnvRegion, EnvDefaultRegion} {
					if v, _ := env(p.Spec.Containers[0], k); v != "eu-west-1" {
						t.Errorf("%s = %q", k, v)
					}
				}
			},
		},
		{
			name: "a preset region variable stops both",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvRegion, Value: "us-west-2"}}
			}),
			entry: entry, cfg: Config{Region: "eu-west-1"}, wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if _, ok := env(p.Spec.Containers[0], EnvDefaultRegion); ok {
					t.Error("AWS_DEFAULT_REGION added although AWS_REGION was preset")
				}
			},
		},
		{
			name: "pod annotation overrides the expiration, raised to 600",
			pod: pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{TokenExpirationAnnotation: "30"}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if tv := tokenVolume(p); tv == nil || *tv.ExpirationSeconds != 600 {
					t.Errorf("token volume = %+v", tv)
				}
			},
		},
		{
			name: "pod annotation that does not parse is ignored",
			pod: pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{TokenExpirationAnnotation: "soon"}
			}),
			entry: Entry{RoleARN: testRole, Audience: "a", TokenExpiration: 1200}, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if tv := tokenVolume(p); tv == nil || *tv.ExpirationSeconds != 1200 {
					t.Errorf("token volume = %+v", tv)
				}
			},
		},
		{
			name: "preset AWS_ROLE_ARN wins and no token file is added",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvRoleARN, Value: "arn:aws:iam::1:role/mine"}}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				c := p.Spec.Containers[0]
				if v, _ := env(c, EnvRoleARN); v != "arn:aws:iam::1:role/mine" {
					t.Errorf("AWS_ROLE_ARN = %q, want the preset value", v)
				}
				if _, ok := env(c, EnvWebIdentityTokenFile); ok {
					t.Error("AWS_WEB_IDENTITY_TOKEN_FILE added to a container that preset AWS_ROLE_ARN")
				}
				if len(c.Env) != 1 {
					t.Errorf("env = %+v", c.Env)
				}
			},
		},
		{
			name: "preset AWS_WEB_IDENTITY_TOKEN_FILE wins",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvWebIdentityTokenFile, Value: "/mine"}}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if _, ok := env(p.Spec.Containers[0], EnvRoleARN); ok {
					t.Error("AWS_ROLE_ARN added to a container that preset the token file")
				}
			},
		},
		{
			name: "skip-containers, init containers included",
			pod: pod(func(p *corev1.Pod) {
				p.Annotations = map[string]string{SkipContainersAnnotation: "sidecar,init"}
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar"})
				p.Spec.InitContainers = []corev1.Container{{Name: "init"}, {Name: "migrate"}}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if _, ok := env(p.Spec.Containers[1], EnvRoleARN); ok || hasMount(p.Spec.Containers[1]) {
					t.Error("skipped container mutated")
				}
				if _, ok := env(p.Spec.InitContainers[0], EnvRoleARN); ok {
					t.Error("skipped init container mutated")
				}
				if v, _ := env(p.Spec.InitContainers[1], EnvRoleARN); v != testRole || !hasMount(p.Spec.InitContainers[1]) {
					t.Error("init container not mutated")
				}
				if v, _ := env(p.Spec.Containers[0], EnvRoleARN); v != testRole {
					t.Error("main container not mutated")
				}
			},
		},
		{
			name: "skip label excludes the pod",
			pod: pod(func(p *corev1.Pod) {
				p.Labels = map[string]string{SkipPodLabel: "true"}
			}),
			entry: entry, cfg: DefaultConfig(),
			check: func(t *testing.T, p *corev1.Pod) {
				if tokenVolume(p) != nil {
					t.Error("skipped pod got the volume")
				}
			},
		},
		{
			name: "existing token volume is kept",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: TokenVolumeName}}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Projected != nil {
					t.Errorf("volumes = %+v", p.Spec.Volumes)
				}
			},
		},
		{
			name: "windows pods get a windows token path",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"}
			}),
			entry: entry, cfg: DefaultConfig(), wantChanged: true,
			check: func(t *testing.T, p *corev1.Pod) {
				want := `C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token`
				if v, _ := env(p.Spec.Containers[0], EnvWebIdentityTokenFile); v != want {
					t.Errorf("AWS_WEB_IDENTITY_TOKEN_FILE = %q, want %q", v, want)
				}
			},
		},
		{
			name: "a fully mutated pod is not changed again",
			pod: func() *corev1.Pod {
				p := pod()
				Mutate(p, entry, DefaultConfig())
				return p
			}(),
			entry: entry, cfg: DefaultConfig(),
			check: func(t *testing.T, p *corev1.Pod) {
				if n := len(p.Spec.Containers[0].Env); n != 2 {
					t.Errorf("env has %d entries, want 2", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.pod.DeepCopy()
			if got := Mutate(p, tt.entry, tt.cfg); got != tt.wantChanged {
				t.Errorf("Mutate() changed = %v, want %v", got, tt.wantChanged)
			}
			tt.check(t, p)
		})
	}
}
