// Package kubetest holds pod fixtures shared by the tests of the packages
// that read pods (kube, recycle, the mechanisms).
package kubetest

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Fatten returns a copy of p with what no reader of pods here reads (what
// the API server, the scheduler, the kubelet and a workload's author add to
// every pod) filled in: kube.TrimPod must drop all of it, and a verdict or a
// plan must not change for it.
func Fatten(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.GenerateName = p.Name + "-"
	p.Generation = 3
	p.Finalizers = append(p.Finalizers, "example.com/keep")
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{".":{}}}}`)}}
	// What the API server adds to every pod: the kube-api-access volume
	// (a name of its own in each pod) and its mount in every container.
	apiAccess := "kube-api-access-" + string(p.UID)
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: apiAccess, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
		}}}})
	for _, cs := range []*[]corev1.Container{&p.Spec.InitContainers, &p.Spec.Containers} {
		for i := range *cs {
			c := &(*cs)[i]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: apiAccess, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
			c.Command = []string{"/bin/server", "--port=8080"}
			c.Args = []string{"--verbose"}
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
			c.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}}
			c.TerminationMessagePath = "/dev/termination-log"
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		switch {
		case v.Projected != nil:
			// What the API server adds to every pod's token volume.
			v.Projected.Sources = append(v.Projected.Sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}})
		case reflect.ValueOf(v.VolumeSource).IsZero():
			v.EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}})
	p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}}
	p.Spec.SchedulerName = "default-scheduler"
	p.Spec.DNSPolicy = corev1.DNSClusterFirst
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	p.Status.HostIP, p.Status.PodIP = "10.0.0.1", "10.1.0.7"
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.7"}}
	p.Status.QOSClass = corev1.PodQOSBurstable
	p.Status.StartTime = &p.CreationTimestamp
	// The kubelet's conditions: only the Ready condition's status is read.
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		c.LastTransitionTime, c.LastProbeTime = p.CreationTimestamp, p.CreationTimestamp
		if c.Status != corev1.ConditionTrue {
			c.Reason, c.Message = "ContainersNotReady", "containers with unready status: [app]"
		}
	}
	p.Status.Conditions = append(p.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: p.CreationTimestamp},
		corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: p.CreationTimestamp})
	for i := range p.Status.ContainerStatuses {
		s := &p.Status.ContainerStatuses[i]
		s.Image, s.ImageID, s.ContainerID = "registry.example/app:1", "sha256:0123", "containerd://abc"
		s.RestartCount = 2
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: p.CreationTimestamp}}
	}
	return p
}
