package recycle

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Workload kinds the recycler knows how to replace pods of.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindReplicaSet  = "ReplicaSet"
	KindJob         = "Job"
)

// Workload identifies a pod controller.
type Workload struct {
	Kind string // Deployment, StatefulSet, DaemonSet, ReplicaSet
	Name string
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// IsZero reports a pod that no replicated workload controls.
func (w Workload) IsZero() bool { return w.Kind == "" }

// WorkloadInfo is what the planner needs to know about a workload beyond
// its pods.
type WorkloadInfo struct {
	// Template is the pod template, for the readiness gate's dry run.
	Template *corev1.PodTemplateSpec
	// ClaimVolumes are a StatefulSet's volumeClaimTemplates: volumes its
	// pods have that the template does not.
	ClaimVolumes []string
	// Replicas is how many pods the workload wants (a DaemonSet: how
	// many it schedules).
	Replicas int32
	// Paused is a paused Deployment: a restart would not roll it.
	Paused bool
	// OnDelete is a StatefulSet or DaemonSet whose controller never
	// replaces pods after a template change.
	OnDelete bool
	// Partition is a StatefulSet's rolling-update partition: only
	// ordinals at or above it are rolled.
	Partition int32
	// RollingOut is a rollout already in progress (an earlier apply that
	// was interrupted, or someone else's): it replaces the pods of older
	// revisions by itself, so the recycle waits for it instead of acting
	// when every stale pod is of an older revision.
	RollingOut bool
	// Revision is the revision a rollout goes to: a Deployment's
	// deployment.kubernetes.io/revision, a StatefulSet's updateRevision.
	Revision string
	// Pods are the names of the workload's live pods that run as the
	// ServiceAccount (and match the selector), stale or not.
	Pods []string
}

// Owners maps pods to the workloads that control them. Build it with
// ResolveOwners; the planner reads it and never calls the API.
type Owners struct {
	// ReplicaSetDeployment maps a ReplicaSet to its Deployment ("" = none).
	ReplicaSetDeployment map[string]string
	// ReplicaSetRevision maps a Deployment's ReplicaSet to its revision.
	ReplicaSetRevision map[string]string
	Workloads          map[Workload]*WorkloadInfo
	// Before are the UIDs of the ServiceAccount's live pods when the plan
	// was made: any other pod of a touched workload is a replacement.
	Before map[types.UID]bool
}

// WorkloadOf names the Deployment, StatefulSet, DaemonSet or bare
// ReplicaSet that controls pod; zero for a bare pod, a Job's pod, or a pod of
// a controller the provider does not know.
func (o Owners) WorkloadOf(pod *corev1.Pod) Workload {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return Workload{}
	}
	switch owner.Kind {
	case KindReplicaSet:
		if dep := o.ReplicaSetDeployment[owner.Name]; dep != "" {
			return Workload{KindDeployment, dep}
		}
		return Workload{KindReplicaSet, owner.Name}
	case KindStatefulSet, KindDaemonSet:
		return Workload{owner.Kind, owner.Name}
	}
	return Workload{}
}

// revisionAnnotation numbers a Deployment's revisions, on it and on each of
// its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// OfOlderRevision reports a pod a rollout of its workload under way will
// replace: one of a Deployment's older ReplicaSets, or a StatefulSet pod
// not at the update revision. Unknown revisions answer false.
func (o Owners) OfOlderRevision(pod *corev1.Pod) bool {
	w := o.WorkloadOf(pod)
	info := o.Info(w)
	if info.Revision == "" {
		return false
	}
	switch w.Kind {
	case KindDeployment:
		owner := metav1.GetControllerOf(pod)
		rev := o.ReplicaSetRevision[owner.Name]
		return rev != "" && rev != info.Revision
	case KindStatefulSet:
		rev := pod.Labels[appsv1.ControllerRevisionHashLabelKey]
		return rev != "" && rev != info.Revision
	}
	return false
}

// Info returns what is known of w; never nil.
func (o Owners) Info(w Workload) *WorkloadInfo {
	if info, ok := o.Workloads[w]; ok {
		return info
	}
	return &WorkloadInfo{}
}

// ResolveOwners reads the controllers of pods: each ReplicaSet, Deployment,
// StatefulSet and DaemonSet once, however many pods it has.
func (p Engine) ResolveOwners(ctx context.Context, namespace string, pods []corev1.Pod) (Owners, error) {
	o := Owners{ReplicaSetDeployment: map[string]string{}, ReplicaSetRevision: map[string]string{}, Workloads: map[Workload]*WorkloadInfo{}}
	for i := range pods {
		owner := metav1.GetControllerOf(&pods[i])
		if owner == nil {
			continue
		}
		var w Workload
		switch owner.Kind {
		case KindReplicaSet:
			if _, done := o.ReplicaSetDeployment[owner.Name]; !done {
				rs, err := p.learnReplicaSet(ctx, namespace, owner.Name, o)
				if err != nil {
					return o, err
				}
				if rs != nil && o.ReplicaSetDeployment[owner.Name] == "" {
					o.Workloads[Workload{KindReplicaSet, rs.Name}] = &WorkloadInfo{Template: &rs.Spec.Template, Replicas: replicas(rs.Spec.Replicas)}
				}
			}
			w = o.WorkloadOf(&pods[i])
		case KindStatefulSet, KindDaemonSet:
			w = Workload{owner.Kind, owner.Name}
		default:
			continue
		}
		if _, done := o.Workloads[w]; !done {
			info, err := p.workloadInfo(ctx, namespace, w)
			if err != nil {
				return o, err
			}
			o.Workloads[w] = info
		}
		o.Workloads[w].Pods = append(o.Workloads[w].Pods, pods[i].Name)
	}
	return o, nil
}

// learnReplicaSet reads a ReplicaSet once and records in o which Deployment
// (if any) owns it, and its revision. A ReplicaSet that is gone is recorded
// as owned by none, and returned nil.
func (p Engine) learnReplicaSet(ctx context.Context, namespace, name string, o Owners) (*appsv1.ReplicaSet, error) {
	rs, err := p.Client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		o.ReplicaSetDeployment[name] = ""
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get ReplicaSet %s: %w", name, err)
	}
	o.ReplicaSetDeployment[name] = ""
	if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == KindDeployment {
		o.ReplicaSetDeployment[name] = ref.Name
		o.ReplicaSetRevision[name] = rs.Annotations[revisionAnnotation]
	}
	return rs, nil
}

// workloadInfo reads a Deployment, StatefulSet or DaemonSet. One that is
// gone is known by name only: its pods are on their way out.
func (p Engine) workloadInfo(ctx context.Context, namespace string, w Workload) (*WorkloadInfo, error) {
	apps := p.Client.AppsV1()
	var info *WorkloadInfo
	var err error
	switch w.Kind {
	case KindDeployment:
		var d *appsv1.Deployment
		if d, err = apps.Deployments(namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			st := d.Status
			info = &WorkloadInfo{Template: &d.Spec.Template, Replicas: replicas(d.Spec.Replicas), Paused: d.Spec.Paused,
				RollingOut: d.Generation > st.ObservedGeneration || st.UpdatedReplicas < replicas(d.Spec.Replicas) || st.Replicas > st.UpdatedReplicas,
				Revision:   d.Annotations[revisionAnnotation]}
		}
	case KindStatefulSet:
		var s *appsv1.StatefulSet
		if s, err = apps.StatefulSets(namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			info = &WorkloadInfo{Template: &s.Spec.Template, Replicas: replicas(s.Spec.Replicas),
				OnDelete: s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType}
			for _, claim := range s.Spec.VolumeClaimTemplates {
				info.ClaimVolumes = append(info.ClaimVolumes, claim.Name)
			}
			// Not "ready": a pod that is merely unhealthy is no rollout.
			info.RollingOut = !info.OnDelete && (s.Generation > s.Status.ObservedGeneration || s.Status.UpdateRevision != s.Status.CurrentRevision)
			info.Revision = s.Status.UpdateRevision
			if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
				info.Partition = *ru.Partition
			}
		}
	case KindDaemonSet:
		var ds *appsv1.DaemonSet
		if ds, err = apps.DaemonSets(namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			info = &WorkloadInfo{Template: &ds.Spec.Template, Replicas: ds.Status.DesiredNumberScheduled,
				OnDelete: ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType}
			info.RollingOut = !info.OnDelete && (ds.Generation > ds.Status.ObservedGeneration || ds.Status.UpdatedNumberScheduled < ds.Status.DesiredNumberScheduled)
		}
	default:
		return &WorkloadInfo{}, nil
	}
	if apierrors.IsNotFound(err) {
		return &WorkloadInfo{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", w, err)
	}
	return info, nil
}

func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}
