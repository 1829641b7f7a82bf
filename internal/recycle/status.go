package recycle

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// RolloutFailedError is a rollout that will not finish by waiting longer: a
// Deployment past its progress deadline.
type RolloutFailedError struct {
	Workload Workload
	Reason   string
}

func (e *RolloutFailedError) Error() string { return e.Workload.String() + ": " + e.Reason }

// workloadStatus judges a restarted workload as `kubectl rollout status`
// does (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go): done, or
// not yet and why, or failed for good. nil is a kind without a rollout.
func workloadStatus(obj runtime.Object) (bool, string, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return deploymentStatus(o)
	case *appsv1.StatefulSet:
		done, why := statefulSetStatus(o)
		return done, why, nil
	case *appsv1.DaemonSet:
		done, why := daemonSetStatus(o)
		return done, why, nil
	case nil:
		return true, "", nil
	}
	return false, "", fmt.Errorf("no rollout status for %T", obj)
}

func deploymentStatus(d *appsv1.Deployment) (bool, string, error) {
	st := d.Status
	if d.Generation > st.ObservedGeneration {
		return false, "waiting for the controller to see the restart", nil
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", &RolloutFailedError{Workload{KindDeployment, d.Name}, "exceeded its progress deadline: " + c.Message}
		}
	}
	want := replicas(d.Spec.Replicas)
	switch {
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d new pods created", st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old pods pending termination", st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d new pods available", st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	return true, "", nil
}

// statefulSetStatus judges a partitioned StatefulSet against its partition:
// ordinals below it are never rolled.
func statefulSetStatus(s *appsv1.StatefulSet) (bool, string) {
	st := s.Status
	if st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration {
		return false, "waiting for the controller to see the restart"
	}
	want := replicas(s.Spec.Replicas)
	if st.ReadyReplicas < want {
		return false, fmt.Sprintf("%d of %d pods ready", st.ReadyReplicas, want)
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if st.UpdatedReplicas < want-*ru.Partition {
			return false, fmt.Sprintf("%d of %d pods at or above partition %d updated", st.UpdatedReplicas, want-*ru.Partition, *ru.Partition)
		}
		return true, ""
	}
	if st.UpdateRevision != st.CurrentRevision {
		return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedReplicas, want)
	}
	return true, ""
}

func daemonSetStatus(ds *appsv1.DaemonSet) (bool, string) {
	st := ds.Status
	switch {
	case ds.Generation > st.ObservedGeneration:
		return false, "waiting for the controller to see the restart"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return false, fmt.Sprintf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return true, ""
}
