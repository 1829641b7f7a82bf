package kube

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Pods finds, inspects and recycles the pods of a ServiceAccount.
type Pods struct {
	Client       kubernetes.Interface
	FieldManager string
}

// ParseSelector validates a pod_selector; empty selects every pod.
func ParseSelector(s string) (labels.Selector, error) {
	if s == "" {
		return labels.Everything(), nil
	}
	return labels.Parse(s)
}

// ForServiceAccount lists the live pods that run as ServiceAccount sa and
// match selector. The ServiceAccount is a server-side field selector, so the
// cost is one LIST whatever else runs in the namespace; terminating and
// finished pods are left out, as no recycling concerns them.
func (p Pods) ForServiceAccount(ctx context.Context, namespace, sa, selector string) ([]corev1.Pod, error) {
	list, err := p.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", sa).String(),
		LabelSelector: selector,
	})
	if err != nil {
		return nil, err
	}
	live := list.Items[:0]
	for _, pod := range list.Items {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		live = append(live, pod)
	}
	return live, nil
}

// Stale returns the pods that do not carry the credentials e describes.
func Stale(pods []corev1.Pod, e Expectation) []StalePod {
	var stale []StalePod
	for i := range pods {
		if v := Inspect(&pods[i], e); !v.Credentialed {
			stale = append(stale, StalePod{Pod: &pods[i], Reason: v.Reason, Recyclable: v.Recyclable})
		}
	}
	return stale
}

// ResolveOwners fetches what PlanRecycle needs about the owners of pods: the
// Deployment behind each ReplicaSet, whether it is paused, and how many live
// pods each workload has. It costs one GET per distinct ReplicaSet and
// Deployment.
func (p Pods) ResolveOwners(ctx context.Context, namespace string, pods []corev1.Pod) (Owners, error) {
	o := Owners{ReplicaSetDeployment: map[string]string{}, PausedDeployments: map[string]bool{}, LivePods: map[Workload]int{}}
	defer func() {
		for i := range pods {
			if w, ok := o.workloadOf(&pods[i]); ok {
				o.LivePods[w]++
			}
		}
	}()
	for i := range pods {
		owner := metav1.GetControllerOf(&pods[i])
		if owner == nil || owner.Kind != "ReplicaSet" {
			continue
		}
		if _, done := o.ReplicaSetDeployment[owner.Name]; done {
			continue
		}
		rs, err := p.Client.AppsV1().ReplicaSets(namespace).Get(ctx, owner.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			o.ReplicaSetDeployment[owner.Name] = ""
			continue
		}
		if err != nil {
			return o, err
		}
		dep := ""
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
			dep = ref.Name
		}
		o.ReplicaSetDeployment[owner.Name] = dep
		if dep == "" {
			continue
		}
		if _, done := o.PausedDeployments[dep]; done {
			continue
		}
		d, err := p.Client.AppsV1().Deployments(namespace).Get(ctx, dep, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return o, err
		}
		o.PausedDeployments[dep] = err == nil && d.Spec.Paused
	}
	return o, nil
}

// Plan lists the stale pods and decides what strategy would do with them.
func (p Pods) Plan(ctx context.Context, namespace, sa, selector string, e Expectation, strategy Strategy) (RecyclePlan, error) {
	pods, err := p.ForServiceAccount(ctx, namespace, sa, selector)
	if err != nil {
		return RecyclePlan{}, err
	}
	stale := Stale(pods, e)
	if len(stale) == 0 {
		return RecyclePlan{}, nil
	}
	owners, err := p.ResolveOwners(ctx, namespace, pods)
	if err != nil {
		return RecyclePlan{}, err
	}
	return PlanRecycle(stale, strategy, owners), nil
}

// restartedAtAnnotation is what `kubectl rollout restart` sets.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// restart does what `kubectl rollout restart` does: a new pod-template
// annotation, which rolls the workload with its own surge and availability
// settings.
func (p Pods) restart(ctx context.Context, namespace string, w Workload, now time.Time) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, now.Format(time.RFC3339))
	opts := metav1.PatchOptions{FieldManager: p.FieldManager}
	var err error
	switch w.Kind {
	case "Deployment":
		_, err = p.Client.AppsV1().Deployments(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
	case "StatefulSet":
		_, err = p.Client.AppsV1().StatefulSets(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
	case "DaemonSet":
		_, err = p.Client.AppsV1().DaemonSets(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
	default:
		err = fmt.Errorf("cannot restart %s", w)
	}
	return err
}

// rolledOut reports whether w finished rolling out, as `kubectl rollout
// status` judges it, and if not, why.
func (p Pods) rolledOut(ctx context.Context, namespace string, w Workload) (bool, string, error) {
	apps := p.Client.AppsV1()
	switch w.Kind {
	case "Deployment":
		d, err := apps.Deployments(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return deploymentDone(d)
	case "StatefulSet":
		s, err := apps.StatefulSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		switch {
		case s.Status.ObservedGeneration < s.Generation:
			return false, "waiting for the controller to see the restart", nil
		case s.Status.UpdatedReplicas < want || s.Status.CurrentRevision != s.Status.UpdateRevision:
			return false, fmt.Sprintf("%d of %d pods updated", s.Status.UpdatedReplicas, want), nil
		case s.Status.ReadyReplicas < want:
			return false, fmt.Sprintf("%d of %d pods ready", s.Status.ReadyReplicas, want), nil
		}
		return true, "", nil
	case "DaemonSet":
		ds, err := apps.DaemonSets(namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		st := ds.Status
		switch {
		case st.ObservedGeneration < ds.Generation:
			return false, "waiting for the controller to see the restart", nil
		case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled), nil
		case st.NumberAvailable < st.DesiredNumberScheduled:
			return false, fmt.Sprintf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled), nil
		}
		return true, "", nil
	}
	return true, "", nil
}

func deploymentDone(d *appsv1.Deployment) (bool, string, error) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return false, "waiting for the controller to see the restart", nil
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d new pods created", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old pods still running", st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d new pods available", st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	return true, "", nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
