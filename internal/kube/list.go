package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// ParseSelector validates a pod_selector; empty selects every pod.
func ParseSelector(s string) (labels.Selector, error) {
	if s == "" {
		return labels.Everything(), nil
	}
	return labels.Parse(s)
}

// PodsOf lists the live pods that run as ServiceAccount sa and match
// selector. The ServiceAccount is a server-side field selector, so the
// cost is one LIST whatever else runs in the namespace; terminating and
// finished pods are left out, as no recycling concerns them. A failure that
// passes (429, 5xx, a dropped connection) is retried for a few seconds, as
// client-go itself retries only answers that carry Retry-After.
func PodsOf(ctx context.Context, client kubernetes.Interface, namespace, sa, selector string) ([]corev1.Pod, error) {
	var list *corev1.PodList
	err := OnTransient(ctx, func() (err error) {
		list, err = client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
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
		if IsLive(&pod) {
			live = append(live, pod)
		}
	}
	return live, nil
}

// IsLive reports a pod that neither terminates nor has finished.
func IsLive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}
