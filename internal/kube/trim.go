package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimPod returns the part of pod that the engine (internal/recycle) and the
// credential mechanisms (internal/irsa, EKS Pod Identity) read, as a new
// value that holds on to nothing else of pod: what a snapshot keeps per pod
// between a plan's reads. A whole pod is mostly what nobody here reads
// (images' details, resources, probes, the scheduler's and the kubelet's
// fields, managedFields), and a plan of 500 bindings holds thousands.
//
// Everything listed here is kept because something reads it; whatever is
// not listed is dropped. A new reader of another field adds it here, and
// the trim-safety tests (trim_test.go and the engine's, the mechanisms')
// compare the verdicts and plans of trimmed and whole pods over every
// fixture of their tests.
func TrimPod(pod *corev1.Pod) corev1.Pod {
	out := corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			// Who the pod is: messages, stale_pods, deletes and evictions
			// by name with the UID as a precondition, owners.Before.
			Name:      pod.Name,
			Namespace: pod.Namespace,
			UID:       pod.UID,
			// Which version was judged: a verdict holds for it.
			ResourceVersion: pod.ResourceVersion,
			// Created before or after the annotation (irsa: predates).
			CreationTimestamp: pod.CreationTimestamp,
			// Live or terminating (IsLive).
			DeletionTimestamp: pod.DeletionTimestamp,
			// pod_selector, the webhook's skip label, a StatefulSet pod's
			// controller-revision-hash (OfOlderRevision).
			Labels: pod.Labels,
			// The webhook's per-pod settings: skip-containers, token
			// expiration; Pod Identity's.
			Annotations: pod.Annotations,
			// The controller: workloads, rollouts, bare and Job pods.
			OwnerReferences: pod.OwnerReferences,
		},
		Spec: corev1.PodSpec{
			// Whose pod it is: the snapshot groups by it, and the gate's
			// probe runs as it.
			ServiceAccountName: pod.Spec.ServiceAccountName,
			// Where it runs (Pod Identity reads it).
			NodeName:       pod.Spec.NodeName,
			InitContainers: trimContainers(pod.Spec.InitContainers),
			Containers:     trimContainers(pod.Spec.Containers),
			Volumes:        trimVolumes(pod.Spec.Volumes),
		},
		Status: corev1.PodStatus{
			// Live or finished (IsLive), Pod Identity's judgement.
			Phase: pod.Status.Phase,
			// Ready: the wait's "replacement Ready".
			Conditions: pod.Status.Conditions,
		},
	}
	if n := len(pod.Status.ContainerStatuses); n > 0 {
		// Each container's readiness (Pod Identity reads it).
		out.Status.ContainerStatuses = make([]corev1.ContainerStatus, n)
		for i, s := range pod.Status.ContainerStatuses {
			out.Status.ContainerStatuses[i] = corev1.ContainerStatus{Name: s.Name, Ready: s.Ready, Started: s.Started}
		}
	}
	return out
}

// trimContainers keeps what the webhooks inject and the mechanisms judge.
func trimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{
			// skip-containers names containers; messages name them.
			Name: c.Name,
			// The gate's probe for a plan of bare pods runs the stale
			// pod's containers by name and image (probePod).
			Image: c.Image,
			// Names and values: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
			// AWS_STS_REGIONAL_ENDPOINTS, AWS_CONTAINER_CREDENTIALS_FULL_URI,
			// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and whatever a container
			// presets itself, which the webhooks never override.
			Env: c.Env,
			// Variables a container may preset from a ConfigMap or Secret.
			EnvFrom: c.EnvFrom,
			// The token volumes' mounts.
			VolumeMounts: c.VolumeMounts,
		}
	}
	return out
}

// trimVolumes keeps every volume's name and, of projected volumes, the
// sources: the webhooks' tokens are projected ServiceAccountToken sources
// (audience, path, expirationSeconds). Other sources are nobody's concern
// here.
func trimVolumes(vs []corev1.Volume) []corev1.Volume {
	if len(vs) == 0 {
		return nil
	}
	out := make([]corev1.Volume, len(vs))
	for i, v := range vs {
		out[i] = corev1.Volume{Name: v.Name}
		if v.Projected != nil {
			out[i].Projected = v.Projected
		}
	}
	return out
}
