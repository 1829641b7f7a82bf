package podidentity

import (
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
)

// Names of what the container-credentials (EKS Pod Identity) mode injects,
// and upstream's defaults for its --container-credentials-* flags.
const (
	EnvContainerCredentialsFullURI       = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	EnvContainerAuthorizationTokenFile   = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	PodIdentityLabel                     = AnnotationPrefix + "/pod-identity"
	podIdentityLabelValue                = "enabled"
	DefaultContainerCredentialsAudience  = "pods.eks.amazonaws.com"
	DefaultContainerCredentialsFullURI   = "http://169.254.170.23/v1/credentials"
	DefaultContainerCredentialsMountPath = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
	DefaultContainerCredentialsVolume    = "eks-pod-identity-token"
	DefaultContainerCredentialsTokenPath = "eks-pod-identity-token"
	// jitterMinTokenExpiration is upstream's DefaultMinTokenExpiration: a
	// token left at the default lifetime gets one drawn from
	// [jitterMinTokenExpiration, DefaultTokenExpiration], so that the pods
	// of a node do not all refresh at once.
	jitterMinTokenExpiration = int64(79200)
)

// ContainerCredentialsConfig holds the --container-credentials-* flags.
type ContainerCredentialsConfig struct {
	Audience   string
	FullURI    string
	MountPath  string
	VolumeName string
	TokenPath  string
}

// DefaultContainerCredentialsConfig returns upstream's defaults.
func DefaultContainerCredentialsConfig() ContainerCredentialsConfig {
	return ContainerCredentialsConfig{
		Audience:   DefaultContainerCredentialsAudience,
		FullURI:    DefaultContainerCredentialsFullURI,
		MountPath:  DefaultContainerCredentialsMountPath,
		VolumeName: DefaultContainerCredentialsVolume,
		TokenPath:  DefaultContainerCredentialsTokenPath,
	}
}

// MutateContainerCredentials applies the container-credentials mutation to
// the pod of a ServiceAccount the identities file lists, whatever its
// annotations say: upstream gives this mode precedence over web identity, so
// a role-arn annotation yields no AWS_ROLE_ARN here.
//
// sa is the ServiceAccount's cache entry, found reports whether the cache had
// it: like upstream's GetCommonConfigurations, only its regional-STS setting
// and token expiration are used, and a ServiceAccount missing from the cache
// means neither regional STS nor a custom lifetime. It reports whether the
// pod changed: always, for a pod not skipped.
func MutateContainerCredentials(pod *corev1.Pod, sa Entry, found bool, cc ContainerCredentialsConfig, cfg Config) bool {
	if pod == nil || skippedPod(pod) {
		return false
	}
	regionalSTS, expiration := false, DefaultTokenExpiration
	if found {
		regionalSTS, expiration = sa.RegionalSTS, sa.TokenExpiration
	}
	expiration = jitterDefault(podTokenExpiration(pod, expiration))

	patchConfig{
		identityEnv: []corev1.EnvVar{
			{Name: EnvContainerCredentialsFullURI, Value: cc.FullURI},
			{Name: EnvContainerAuthorizationTokenFile, Value: tokenFilePath(pod, cc.MountPath, cc.TokenPath)},
		},
		volume: projectedToken{
			name:       cc.VolumeName,
			mountPath:  cc.MountPath,
			tokenPath:  cc.TokenPath,
			audience:   cc.Audience,
			expiration: expiration,
		},
		region:         cfg.Region,
		regionalSTS:    regionalSTS,
		skipContainers: skipContainers(pod),
	}.apply(pod)

	// Upstream labels every pod of this mode, and so always reports a change.
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[PodIdentityLabel] = podIdentityLabelValue
	return true
}

func jitterDefault(expiration int64) int64 {
	if expiration != DefaultTokenExpiration {
		return expiration
	}
	return jitterMinTokenExpiration + rand.Int64N(DefaultTokenExpiration-jitterMinTokenExpiration+1) //nolint:gosec // spreads refreshes, not a secret
}
