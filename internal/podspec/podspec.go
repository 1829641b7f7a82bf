// Package podspec reads what the pod identity webhook writes into a pod
// spec: container variables, volume mounts and projected token volumes.
// Both mechanisms' judges (internal/irsa, internal/podidentity) read pods
// through it, so "has the variable" means the same for both.
package podspec

import corev1 "k8s.io/api/core/v1"

// Containers are the pod's init containers and containers, in the order
// the webhook mutates them.
func Containers(pod *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	out = append(out, pod.Spec.InitContainers...)
	return append(out, pod.Spec.Containers...)
}

// Env is the literal value of variable name in c, and whether c sets it.
func Env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// HasEnv reports whether c sets variable name.
func HasEnv(c corev1.Container, name string) bool {
	_, ok := Env(c, name)
	return ok
}

// Mounts reports whether c mounts volume.
func Mounts(c corev1.Container, volume string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return true
		}
	}
	return false
}

// Token is the projected ServiceAccount token of the pod's volume named
// volume, nil when it has none.
func Token(pod *corev1.Pod, volume string) *corev1.ServiceAccountTokenProjection {
	for _, v := range pod.Spec.Volumes {
		if v.Name != volume || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				return s.ServiceAccountToken
			}
		}
	}
	return nil
}
