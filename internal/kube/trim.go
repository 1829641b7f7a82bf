package kube

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// TrimPod returns the part of pod that the engine (internal/recycle) and the
// credential mechanisms (internal/irsa, EKS Pod Identity) read, as a new
// value that holds on to nothing else of pod: what a snapshot hands out. A
// whole pod is mostly what nobody here reads (images' details, resources,
// probes, the scheduler's and the kubelet's fields, managedFields), and a
// plan of 500 bindings holds thousands of pods.
//
// What is kept is decided in one place, keep; whatever it does not name is
// dropped. A new reader of another field adds it there, and the trim-safety
// tests (trim_test.go here, and the engine's and the mechanisms') compare
// the verdicts and plans of trimmed and whole pods over every fixture of
// their tests.
func TrimPod(pod *corev1.Pod) corev1.Pod {
	r := keep(pod)
	return r.pod()
}

// podRecord is a trimmed pod as a snapshot keeps it between a plan's reads:
// a few hundred bytes, where a corev1.Pod value alone is 1.2 KiB of mostly
// empty fields (and a Container 400 bytes, a Volume 250). The snapshot
// builds the corev1.Pod that Credentials.Judge takes when it is asked; the
// parts the record holds (maps, env, mounts, conditions) are shared with
// every pod built from it, which only read them.
type podRecord struct {
	meta           metav1.ObjectMeta
	serviceAccount string
	nodeName       string
	initContainers []containerRecord
	containers     []containerRecord
	volumes        []volumeRecord
	phase          corev1.PodPhase
	conditions     []corev1.PodCondition
	statuses       []statusRecord
}

type containerRecord struct {
	name, image string
	env         []corev1.EnvVar
	envFrom     []corev1.EnvFromSource
	mounts      []corev1.VolumeMount
}

type volumeRecord struct {
	name      string
	projected *corev1.ProjectedVolumeSource
}

type statusRecord struct {
	name    string
	ready   bool
	started *bool
}

// keep is the trimming: each kept field with who reads it.
func keep(pod *corev1.Pod) podRecord {
	r := podRecord{
		meta: metav1.ObjectMeta{
			// Who the pod is: messages, stale_pods, deletes and evictions
			// by name with the UID as a precondition, owners.Before.
			Name:      pod.Name,
			Namespace: pod.Namespace,
			UID:       pod.UID,
			// Which version was judged.
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
		// Whose pod it is: the snapshot groups by it, and the gate's probe
		// runs as it.
		serviceAccount: pod.Spec.ServiceAccountName,
		// Where it runs (Pod Identity reads it).
		nodeName:       pod.Spec.NodeName,
		initContainers: keepContainers(pod.Spec.InitContainers),
		containers:     keepContainers(pod.Spec.Containers),
		// Live or finished (IsLive), Pod Identity's judgement.
		phase: pod.Status.Phase,
		// Ready: the wait's "replacement Ready" reads the Ready
		// condition's status, and nothing reads the others.
		conditions: readyCondition(pod.Status.Conditions),
	}
	for _, v := range pod.Spec.Volumes {
		// The webhooks' tokens: projected ServiceAccountToken sources
		// (audience, path, expirationSeconds), looked up by the volume's
		// name. Other volumes (the API server's kube-api-access-<random>
		// among them, whose name alone would make every pod's volumes
		// differ), and the other sources of a projected one (the API
		// server's CA, the namespace), are nobody's concern here.
		if !slices.Contains(WebhookTokenVolumes, v.Name) {
			continue
		}
		if tokens := tokenSources(v.Projected); tokens != nil {
			r.volumes = append(r.volumes, volumeRecord{name: v.Name, projected: tokens})
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		// Each container's readiness (Pod Identity reads it).
		r.statuses = append(r.statuses, statusRecord{name: s.Name, ready: s.Ready, started: s.Started})
	}
	return r
}

// WebhookTokenVolumes are the names of the volumes the pod identity webhook
// injects, the only ones a reader of pods here looks up (by name): IRSA's
// (irsa.TokenVolumeName) and EKS Pod Identity's (podidentity.TokenVolumeName).
// Those packages' tests check that their name is here.
var WebhookTokenVolumes = []string{"aws-iam-token", "eks-pod-identity-token"}

// tokenMounts are the mounts of the webhooks' token volumes; nil when a
// container has none.
func tokenMounts(ms []corev1.VolumeMount) []corev1.VolumeMount {
	var out []corev1.VolumeMount
	for _, m := range ms {
		if slices.Contains(WebhookTokenVolumes, m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// readyCondition is the Ready condition's type and status, alone: its
// times, reason and message, and the other conditions, differ from pod to
// pod and nobody here reads them.
func readyCondition(cs []corev1.PodCondition) []corev1.PodCondition {
	for _, c := range cs {
		if c.Type == corev1.PodReady {
			return []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return nil
}

// keepContainers keeps what the webhooks inject and the mechanisms judge.
func keepContainers(cs []corev1.Container) []containerRecord {
	if len(cs) == 0 {
		return nil
	}
	out := make([]containerRecord, len(cs))
	for i, c := range cs {
		out[i] = containerRecord{
			// skip-containers names containers; messages name them.
			name: c.Name,
			// The gate's probe for a plan of bare pods runs the stale
			// pod's containers by name and image (probePod).
			image: c.Image,
			// Names and values: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
			// AWS_STS_REGIONAL_ENDPOINTS, AWS_CONTAINER_CREDENTIALS_FULL_URI,
			// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and whatever a container
			// presets itself, which the webhooks never override.
			env: c.Env,
			// Variables a container may preset from a ConfigMap or Secret.
			envFrom: c.EnvFrom,
			// The webhooks' token volumes' mounts, looked up by name.
			mounts: tokenMounts(c.VolumeMounts),
		}
	}
	return out
}

// tokenSources is a projected volume's ServiceAccountToken sources; nil
// when it has none (or is not projected).
func tokenSources(p *corev1.ProjectedVolumeSource) *corev1.ProjectedVolumeSource {
	if p == nil {
		return nil
	}
	n := 0
	for _, s := range p.Sources {
		if s.ServiceAccountToken != nil {
			n++
		}
	}
	switch {
	case n == 0:
		return nil
	case n == len(p.Sources):
		return p
	}
	out := &corev1.ProjectedVolumeSource{DefaultMode: p.DefaultMode, Sources: make([]corev1.VolumeProjection, 0, n)}
	for _, s := range p.Sources {
		if s.ServiceAccountToken != nil {
			out.Sources = append(out.Sources, corev1.VolumeProjection{ServiceAccountToken: s.ServiceAccountToken})
		}
	}
	return out
}

// pod builds the corev1.Pod the record describes.
func (r *podRecord) pod() corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: r.meta,
		Spec: corev1.PodSpec{
			ServiceAccountName: r.serviceAccount,
			NodeName:           r.nodeName,
			InitContainers:     containersOf(r.initContainers),
			Containers:         containersOf(r.containers),
		},
		Status: corev1.PodStatus{Phase: r.phase, Conditions: r.conditions},
	}
	if len(r.volumes) > 0 {
		p.Spec.Volumes = make([]corev1.Volume, len(r.volumes))
		for i, v := range r.volumes {
			p.Spec.Volumes[i] = corev1.Volume{Name: v.name, VolumeSource: corev1.VolumeSource{Projected: v.projected}}
		}
	}
	if len(r.statuses) > 0 {
		p.Status.ContainerStatuses = make([]corev1.ContainerStatus, len(r.statuses))
		for i, s := range r.statuses {
			p.Status.ContainerStatuses[i] = corev1.ContainerStatus{Name: s.name, Ready: s.ready, Started: s.started}
		}
	}
	return p
}

func containersOf(rs []containerRecord) []corev1.Container {
	if len(rs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(rs))
	for i, c := range rs {
		out[i] = corev1.Container{Name: c.name, Image: c.image, Env: c.env, EnvFrom: c.envFrom, VolumeMounts: c.mounts}
	}
	return out
}

// sharing keeps one copy of what the pods of one list have alike: a
// workload's pods have the same labels and the same owner, and those its
// controller created from one template under one webhook configuration
// the same containers, token volumes, readiness and container statuses.
// Keeping them once is most of what they hold beyond their names.
type sharing struct {
	labels map[string]map[string]string
	owners map[types.UID][]metav1.OwnerReference
	// parts are, by owner, the first pod's parts; a later pod of the
	// owner whose parts are equal holds these instead.
	parts map[types.UID]*recordParts
}

// recordParts are the parts of a podRecord that a workload's pods share.
type recordParts struct {
	initContainers, containers []containerRecord
	volumes                    []volumeRecord
	conditions                 []corev1.PodCondition
	statuses                   []statusRecord
}

func partsOf(r *podRecord) recordParts {
	return recordParts{r.initContainers, r.containers, r.volumes, r.conditions, r.statuses}
}

// record is keep(pod) with the labels, owner references and parts of an
// earlier pod of the list when they are the same.
func (s *sharing) record(pod *corev1.Pod) podRecord {
	r := keep(pod)
	s.shareParts(&r)
	if len(r.meta.Labels) > 0 {
		if s.labels == nil {
			s.labels = map[string]map[string]string{}
		}
		key := labels.Set(r.meta.Labels).String()
		if same, ok := s.labels[key]; ok {
			r.meta.Labels = same
		} else {
			s.labels[key] = r.meta.Labels
		}
	}
	if refs := r.meta.OwnerReferences; len(refs) == 1 {
		if s.owners == nil {
			s.owners = map[types.UID][]metav1.OwnerReference{}
		}
		if same, ok := s.owners[refs[0].UID]; ok && reflect.DeepEqual(same, refs) {
			r.meta.OwnerReferences = same
		} else if !ok {
			s.owners[refs[0].UID] = refs
		}
	}
	return r
}

// shareParts gives r the parts of the first pod of its owner when they are
// equal (the webhook injected the same into both).
func (s *sharing) shareParts(r *podRecord) {
	refs := r.meta.OwnerReferences
	if len(refs) != 1 {
		return
	}
	if s.parts == nil {
		s.parts = map[types.UID]*recordParts{}
	}
	first, ok := s.parts[refs[0].UID]
	if !ok {
		mine := partsOf(r)
		s.parts[refs[0].UID] = &mine
		return
	}
	// Each part on its own: an unready pod still shares its containers.
	shareIfEqual(&r.initContainers, first.initContainers)
	shareIfEqual(&r.containers, first.containers)
	shareIfEqual(&r.volumes, first.volumes)
	shareIfEqual(&r.conditions, first.conditions)
	shareIfEqual(&r.statuses, first.statuses)
}

// shareIfEqual points *mine at first's when they hold the same.
func shareIfEqual[T any](mine *[]T, first []T) {
	if len(*mine) > 0 && reflect.DeepEqual(*mine, first) {
		*mine = first
	}
}
