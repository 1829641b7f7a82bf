package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Pods finds, inspects and recycles the pods of a ServiceAccount. Get one
// from Conn.Pods.
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
// finished pods are left out, as no recycling concerns them. A failure that
// passes (429, 5xx, a dropped connection) is retried for a few seconds, as
// client-go itself retries only answers that carry Retry-After.
func (p Pods) ForServiceAccount(ctx context.Context, namespace, sa, selector string) ([]corev1.Pod, error) {
	var list *corev1.PodList
	err := onTransient(ctx, func() (err error) {
		list, err = p.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", sa).String(),
			LabelSelector: selector,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	live := list.Items[:0]
	for _, pod := range list.Items {
		if isLive(&pod) {
			live = append(live, pod)
		}
	}
	return live, nil
}

func isLive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
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

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
