// Package podidentity is the local environment's stand-in for the EKS pod
// identity webhook (github.com/aws/amazon-eks-pod-identity-webhook), which the
// Go module proxy does not serve. It applies the same mutations to pods at
// creation: the web identity (IRSA) env or, for the ServiceAccounts its
// container-credentials file lists, the EKS Pod Identity env; with either, the
// projected token volume and its mount.
//
// The behaviour mirrors upstream closely on purpose: the provider's tests use
// it as evidence of what pods on EKS look like, so every difference would be a
// place where the tests could pass and production fail.
package podidentity

import (
	"encoding/csv"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotation and label names the webhook honours. The prefix is upstream's
// default for --annotation-prefix.
const (
	AnnotationPrefix = "eks.amazonaws.com"

	RoleARNAnnotation              = AnnotationPrefix + "/role-arn"
	AudienceAnnotation             = AnnotationPrefix + "/audience"
	STSRegionalEndpointsAnnotation = AnnotationPrefix + "/sts-regional-endpoints"
	TokenExpirationAnnotation      = AnnotationPrefix + "/token-expiration"
	SkipContainersAnnotation       = AnnotationPrefix + "/skip-containers"
	SkipPodLabel                   = AnnotationPrefix + "/skip-pod-identity-webhook"
)

// Names of what the webhook injects.
const (
	EnvRoleARN                 = "AWS_ROLE_ARN"
	EnvWebIdentityTokenFile    = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvSTSRegionalEndpoints    = "AWS_STS_REGIONAL_ENDPOINTS"
	EnvRegion                  = "AWS_REGION"
	EnvDefaultRegion           = "AWS_DEFAULT_REGION"
	TokenVolumeName            = "aws-iam-token"
	DefaultTokenMountPath      = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	TokenFileName              = "token"
	DefaultAudience            = "sts.amazonaws.com"
	DefaultTokenExpiration     = int64(86400)
	MinTokenExpiration         = int64(600)
	regionalSTSEndpointsEnvVal = "regional"
)

// Config holds the webhook-wide settings, named after upstream's flags.
type Config struct {
	// Audience is --token-audience: used when the ServiceAccount has no audience annotation.
	Audience string
	// TokenExpiration is --token-expiration in seconds.
	TokenExpiration int64
	// MountPath is --token-mount-path.
	MountPath string
	// Region is --aws-default-region; when set, AWS_REGION and AWS_DEFAULT_REGION are injected.
	Region string
	// RegionalSTS is --sts-regional-endpoint: inject AWS_STS_REGIONAL_ENDPOINTS for every pod.
	RegionalSTS bool
}

// DefaultConfig returns upstream's defaults.
func DefaultConfig() Config {
	return Config{
		Audience:        DefaultAudience,
		TokenExpiration: DefaultTokenExpiration,
		MountPath:       DefaultTokenMountPath,
	}
}

// Entry is what the webhook's ServiceAccount cache keeps per annotated
// ServiceAccount: the settings resolved from its annotations over the flags.
type Entry struct {
	RoleARN         string
	Audience        string
	RegionalSTS     bool
	TokenExpiration int64
}

// EntryFor resolves a ServiceAccount's annotations against cfg the way the
// upstream cache does: audience and regional STS from the annotation over the
// flag, token expiration from the annotation (raised to the minimum) over the
// flag. Values that do not parse fall back to the flag.
func EntryFor(sa *corev1.ServiceAccount, cfg Config) Entry {
	e := Entry{
		RoleARN:         sa.Annotations[RoleARNAnnotation],
		Audience:        cfg.Audience,
		RegionalSTS:     cfg.RegionalSTS,
		TokenExpiration: cfg.TokenExpiration,
	}
	if e.Audience == "" {
		e.Audience = DefaultAudience
	}
	if e.TokenExpiration == 0 {
		e.TokenExpiration = DefaultTokenExpiration
	}
	if v, ok := sa.Annotations[AudienceAnnotation]; ok {
		e.Audience = v
	}
	if v, ok := sa.Annotations[STSRegionalEndpointsAnnotation]; ok {
		if b, err := strconv.ParseBool(v); err == nil {
			e.RegionalSTS = b
		}
	}
	if v, ok := sa.Annotations[TokenExpirationAnnotation]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			e.TokenExpiration = atLeastMinimum(n)
		}
	}
	return e
}

// Mutate applies the web identity (IRSA) mutation to pod in place and reports
// whether anything changed. A zero Entry (the ServiceAccount has no role or
// was not found) leaves the pod as it is: that is the "webhook did not
// mutate" case the provider has to detect.
func Mutate(pod *corev1.Pod, e Entry, cfg Config) bool {
	if pod == nil || e.RoleARN == "" || skippedPod(pod) {
		return false
	}
	mountPath := cfg.MountPath
	if mountPath == "" {
		mountPath = DefaultTokenMountPath
	}
	tokenFile := tokenFilePath(pod, mountPath, TokenFileName)
	return patchConfig{
		identityEnv: []corev1.EnvVar{
			{Name: EnvRoleARN, Value: e.RoleARN},
			{Name: EnvWebIdentityTokenFile, Value: tokenFile},
		},
		volume: projectedToken{
			name:       TokenVolumeName,
			mountPath:  mountPath,
			tokenPath:  TokenFileName,
			audience:   e.Audience,
			expiration: podTokenExpiration(pod, e.TokenExpiration),
		},
		region:         cfg.Region,
		regionalSTS:    e.RegionalSTS,
		skipContainers: skipContainers(pod),
	}.apply(pod)
}

// skippedPod reports the skip label. Upstream excludes these pods with the
// webhook's objectSelector; the check here keeps the mutation correct when
// it is called without it.
func skippedPod(pod *corev1.Pod) bool {
	_, skip := pod.Labels[SkipPodLabel]
	return skip
}

// patchConfig is what one mode (web identity or container credentials)
// injects; the rules for applying it are the same for both, as upstream's
// single addEnvToContainer shows.
type patchConfig struct {
	// identityEnv are the mode's credential variables. A container that
	// presets any one of them gets none: whatever it presets wins.
	identityEnv    []corev1.EnvVar
	volume         projectedToken
	region         string
	regionalSTS    bool
	skipContainers map[string]bool
}

type projectedToken struct {
	name, mountPath, tokenPath, audience string
	expiration                           int64
}

func (p patchConfig) apply(pod *corev1.Pod) bool {
	changed := false
	for i := range pod.Spec.InitContainers {
		changed = p.mutateContainer(&pod.Spec.InitContainers[i]) || changed
	}
	for i := range pod.Spec.Containers {
		changed = p.mutateContainer(&pod.Spec.Containers[i]) || changed
	}
	return addTokenVolume(pod, p.volume) || changed
}

// mutateContainer injects env and the token mount into one container. A
// container that presets the mode's credential variables keeps its values and
// still gets the mount and the region/STS variables it lacks, except when it
// presets all three kinds (credentials, a region, AWS_STS_REGIONAL_ENDPOINTS):
// upstream then leaves it wholly alone, without the token mount.
func (p patchConfig) mutateContainer(c *corev1.Container) bool {
	if p.skipContainers[c.Name] {
		return false
	}
	var presetIdentity, presetRegion, presetSTS bool
	for _, e := range c.Env {
		switch {
		case slices.ContainsFunc(p.identityEnv, func(v corev1.EnvVar) bool { return v.Name == e.Name }):
			presetIdentity = true
		case e.Name == EnvRegion || e.Name == EnvDefaultRegion:
			// One region variable set by the user means neither is added.
			presetRegion = true
		case e.Name == EnvSTSRegionalEndpoints:
			presetSTS = true
		}
	}
	if presetIdentity && presetRegion && presetSTS {
		return false
	}

	changed := false
	if p.regionalSTS && !presetSTS {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvSTSRegionalEndpoints, Value: regionalSTSEndpointsEnvVal})
		changed = true
	}
	if p.region != "" && !presetRegion {
		c.Env = append(c.Env,
			corev1.EnvVar{Name: EnvDefaultRegion, Value: p.region},
			corev1.EnvVar{Name: EnvRegion, Value: p.region},
		)
		changed = true
	}
	if !presetIdentity {
		c.Env = append(c.Env, p.identityEnv...)
		changed = true
	}
	for _, m := range c.VolumeMounts {
		if m.Name == p.volume.name {
			return changed
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
		Name:      p.volume.name,
		ReadOnly:  true,
		MountPath: p.volume.mountPath,
	})
	return true
}

// addTokenVolume adds the projected token volume unless the pod already has a
// volume of that name.
func addTokenVolume(pod *corev1.Pod, tv projectedToken) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == tv.name {
			return false
		}
	}
	expiration := tv.expiration
	vol := corev1.Volume{
		Name: tv.name,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{
				ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Audience:          tv.audience,
					ExpirationSeconds: &expiration,
					Path:              tv.tokenPath,
				},
			}},
		}},
	}
	// Upstream prepends the volume.
	pod.Spec.Volumes = append([]corev1.Volume{vol}, pod.Spec.Volumes...)
	return true
}

// tokenFilePath is the token's path inside the containers; Windows pods get
// the same path on drive C: with backslashes.
func tokenFilePath(pod *corev1.Pod, mountPath, tokenPath string) string {
	p := path.Join(mountPath, tokenPath)
	if pod.Spec.NodeSelector["kubernetes.io/os"] == "windows" || pod.Spec.NodeSelector["beta.kubernetes.io/os"] == "windows" {
		return "C:" + strings.ReplaceAll(p, "/", `\`)
	}
	return p
}

// podTokenExpiration lets the pod's annotation override the ServiceAccount's.
func podTokenExpiration(pod *corev1.Pod, fromSA int64) int64 {
	if v, ok := pod.Annotations[TokenExpirationAnnotation]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return atLeastMinimum(n)
		}
	}
	return fromSA
}

func atLeastMinimum(seconds int64) int64 {
	return max(seconds, MinTokenExpiration)
}

// skipContainers parses the comma-separated skip-containers annotation as
// CSV, like upstream; an annotation that does not parse skips nothing.
func skipContainers(pod *corev1.Pod) map[string]bool {
	raw, ok := pod.Annotations[SkipContainersAnnotation]
	if !ok {
		return nil
	}
	names, err := csv.NewReader(strings.NewReader(raw)).Read()
	if err != nil {
		return nil
	}
	skip := make(map[string]bool, len(names))
	for _, name := range names {
		skip[name] = true
	}
	return skip
}
