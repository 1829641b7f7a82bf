package recycle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// The acts of a recycle: each touches exactly one workload or one pod the
// plan names.

// restartedAtAnnotation is what `kubectl rollout restart` sets.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// ErrEvictionBlocked is wrapped by the error of an eviction that a
// PodDisruptionBudget kept refusing until the timeout.
var ErrEvictionBlocked = errors.New("eviction blocked by a PodDisruptionBudget")

// restart does what `kubectl rollout restart` does: a new pod-template
// annotation, which rolls the workload with its own surge and availability
// settings. The stamp has nanoseconds, where kubectl's has seconds: two
// restarts within a second (a binding's create and its destroy, or a
// re-recycle, once waits see a rollout done within milliseconds) would
// otherwise write the same template, and the second would roll nothing.
func (p Engine) restart(ctx context.Context, namespace string, w Workload, now time.Time) error {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, now.UTC().Format(time.RFC3339Nano))
	opts := metav1.PatchOptions{FieldManager: p.FieldManager}
	apps := p.Client.AppsV1()
	return kube.OnTransient(ctx, func() error {
		var err error
		switch w.Kind {
		case KindDeployment:
			_, err = apps.Deployments(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
		case KindStatefulSet:
			_, err = apps.StatefulSets(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
		case KindDaemonSet:
			_, err = apps.DaemonSets(namespace).Patch(ctx, w.Name, types.StrategicMergePatchType, patch, opts)
		default:
			err = fmt.Errorf("cannot restart %s", w)
		}
		return err
	})
}

// removePod deletes or (strategy evict) evicts one pod, with its UID as a
// precondition: a pod re-created under the same name (a StatefulSet's) is
// never the one removed. A pod already gone is not an error.
func (p Engine) removePod(ctx context.Context, strategy Strategy, pod *corev1.Pod, logf func(string, ...any)) error {
	if strategy == StrategyEvict {
		logf("evicting pod %s", pod.Name)
		return p.evict(ctx, pod, logf)
	}
	logf("deleting pod %s", pod.Name)
	err := kube.OnTransient(ctx, func() error {
		return p.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", pod.Name, err)
	}
	return nil
}

// Eviction retries: from 1 s, doubling up to kubectl drain's 5 s, until the
// context ends. (A wait.Backoff with a Cap stops stepping once it reaches
// the cap, so the loop paces itself.)
var (
	evictionFirstDelay = time.Second
	evictionMaxDelay   = 5 * time.Second
)

// evict posts an Eviction, which respects PodDisruptionBudgets. 429 means a
// budget blocks it now: retry, as kubectl drain does, until the context
// ends. Other transient failures are retried the same way. A 409 is either
// the UID precondition (the pod is already another) or the API server giving
// up on a contended budget: only a pod that is gone counts as evicted.
func (p Engine) evict(ctx context.Context, pod *corev1.Pod, logf func(string, ...any)) error {
	eviction := &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}},
	}
	var lastErr error
	blocked := false
	for delay := evictionFirstDelay; ; delay = min(2*delay, evictionMaxDelay) {
		lastErr = p.Client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, eviction)
		switch {
		case lastErr == nil || apierrors.IsNotFound(lastErr):
			return nil
		case apierrors.IsConflict(lastErr) && p.gone(ctx, pod):
			return nil
		case apierrors.IsTooManyRequests(lastErr):
			blocked = true
			logf("eviction of pod %s blocked by a PodDisruptionBudget; retrying", pod.Name)
		case apierrors.IsConflict(lastErr) || kube.IsTransient(lastErr) || (blocked && ctx.Err() != nil):
			// Retried; a try the timeout cut short keeps the budget as why.
		default:
			return fmt.Errorf("evict pod %s: %w", pod.Name, lastErr)
		}
		select {
		case <-ctx.Done():
			if blocked {
				budgets := p.budgetsFor(context.WithoutCancel(ctx), pod)
				return fmt.Errorf("evict pod %s: %w %s until the timeout: %w", pod.Name, ErrEvictionBlocked, strings.Join(budgets, ", "), lastErr)
			}
			return fmt.Errorf("evict pod %s: %w (last error: %w)", pod.Name, ctx.Err(), lastErr)
		case <-time.After(wait.Jitter(delay, 0.1)):
		}
	}
}

// gone reports whether pod (that very one, by UID) no longer exists. It
// lists by name rather than getting the pod, so that the provider needs
// list on pods, which every mode has, and never get.
func (p Engine) gone(ctx context.Context, pod *corev1.Pod) bool {
	list, err := p.Client.CoreV1().Pods(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", pod.Name).String(),
	})
	if err != nil {
		return false
	}
	for _, got := range list.Items {
		if got.Name == pod.Name && got.UID == pod.UID {
			return false
		}
	}
	return true
}

// budgetsFor names the PodDisruptionBudgets whose selector matches pod.
func (p Engine) budgetsFor(ctx context.Context, pod *corev1.Pod) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := p.Client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{"(" + kube.DeniedNote("the PodDisruptionBudgets were not named", err) + ")"}
	}
	var names []string
	for _, pdb := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		desc := "PodDisruptionBudget " + pdb.Name
		if pdb.Spec.MinAvailable != nil {
			desc += " (minAvailable " + pdb.Spec.MinAvailable.String() + ")"
		} else if pdb.Spec.MaxUnavailable != nil {
			desc += " (maxUnavailable " + pdb.Spec.MaxUnavailable.String() + ")"
		}
		names = append(names, desc)
	}
	sort.Strings(names)
	return names
}
