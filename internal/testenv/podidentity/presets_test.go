package podidentity

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestMutate_PresetCredentialsRegionAndSTS mirrors upstream's fixture
// pkg/handler/testdata/rawPodHasAll.pod.yaml: a container that presets
// AWS_ROLE_ARN, AWS_REGION and AWS_STS_REGIONAL_ENDPOINTS is left as it is,
// without the token mount, while the pod still gets the token volume. Its
// companion rawPodHasSTS.pod.yaml (region and STS preset, no role) shows the
// other side: the credentials and the mount are added.
func TestMutate_PresetCredentialsRegionAndSTS(t *testing.T) {
	t.Parallel()
	const cnRole = "arn:aws-cn:iam::111122223333:role/s3-reader"
	entry := Entry{RoleARN: cnRole, Audience: "sts.amazonaws.com", RegionalSTS: true, TokenExpiration: 3600}
	cfg := Config{Region: "cn-north-1", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"}
	expiration := int64(3600)
	wantVolume := corev1.Volume{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: "sts.amazonaws.com", ExpirationSeconds: &expiration, Path: "token",
		}}},
	}}}
	presetRegionAndSTS := []corev1.EnvVar{
		{Name: "AWS_REGION", Value: "cn-northwest-1"},
		{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
	}
	tests := []struct {
		name string
		env  []corev1.EnvVar
		want corev1.Container
	}{
		{
			name: "rawPodHasAll",
			env:  append(slices.Clone(presetRegionAndSTS), corev1.EnvVar{Name: "AWS_ROLE_ARN", Value: cnRole}),
			want: corev1.Container{Name: "main", Image: "app", Env: []corev1.EnvVar{
				{Name: "AWS_REGION", Value: "cn-northwest-1"},
				{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
				{Name: "AWS_ROLE_ARN", Value: cnRole},
			}},
		},
		{
			name: "rawPodHasSTS",
			env:  slices.Clone(presetRegionAndSTS),
			want: corev1.Container{Name: "main", Image: "app",
				Env: []corev1.EnvVar{
					{Name: "AWS_REGION", Value: "cn-northwest-1"},
					{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
					{Name: "AWS_ROLE_ARN", Value: cnRole},
					{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "aws-iam-token", ReadOnly: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := pod(func(p *corev1.Pod) { p.Spec.Containers[0].Env = tt.env })
			if !Mutate(p, entry, cfg) {
				t.Error("Mutate() reported no change, want the token volume added")
			}
			if diff := cmp.Diff(tt.want, p.Spec.Containers[0]); diff != "" {
				t.Errorf("container (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]corev1.Volume{wantVolume}, p.Spec.Volumes); diff != "" {
				t.Errorf("volumes (-want +got):\n%s", diff)
			}
		})
	}
}
