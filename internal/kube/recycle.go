package kube

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
)

// RecycleOptions say which pods to recycle and how.
type RecycleOptions struct {
	Namespace      string
	ServiceAccount string
	Selector       string
	Expectation    Expectation
	Strategy       Strategy
	// Wait until every recycled pod is replaced, Ready and credentialed.
	Wait bool
	// MaxRetries bounds how often a replacement that came up without
	// credentials (the webhook's cache race) is recycled again.
	MaxRetries int
	// PollInterval is how often progress is checked while waiting.
	PollInterval time.Duration
	// Logf reports progress (the provider sends it to tflog).
	Logf func(format string, args ...any)
}

// RecycleResult is what Recycle did and what is still stale.
type RecycleResult struct {
	Plan RecyclePlan
	// Retried are replacements recycled again because they came up
	// without credentials.
	Retried []string
	// Remaining are the stale pods after recycling (and waiting).
	Remaining []StalePod
}

// ErrEvictionBlocked is wrapped by the error of an eviction that a
// PodDisruptionBudget kept refusing until the timeout.
var ErrEvictionBlocked = errors.New("eviction blocked by a PodDisruptionBudget")

// NotDoneError is returned when waiting ends (timeout or retries
// exhausted) with workloads or pods not done. Each entry says why.
type NotDoneError struct {
	Pending []string
	Err     error
}

func (e *NotDoneError) Error() string {
	return fmt.Sprintf("not done: %s: %v", strings.Join(e.Pending, "; "), e.Err)
}

func (e *NotDoneError) Unwrap() error { return e.Err }

// Recycle replaces the stale pods of a ServiceAccount with the strategy and,
// with Wait, polls until they are replaced, Ready and credentialed. The
// webhook reads ServiceAccounts from a cache, so a replacement can come up
// without credentials; such pods are recycled again, at most MaxRetries
// times, before Recycle gives up naming them.
func (p Pods) Recycle(ctx context.Context, o RecycleOptions) (RecycleResult, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	var res RecycleResult
	plan, err := p.Plan(ctx, o.Namespace, o.ServiceAccount, o.Selector, o.Expectation, o.Strategy)
	if err != nil {
		return res, err
	}
	res.Plan = plan
	started := time.Now()

	for _, w := range plan.Restart {
		o.Logf("restarting %s for stale pods %s", w, strings.Join(plan.RestartPods[w], ", "))
		if err := p.restart(ctx, o.Namespace, w, started); err != nil {
			return res, fmt.Errorf("restart %s: %w", w, err)
		}
	}
	for _, pod := range plan.Replace {
		if err := p.replace(ctx, o, pod); err != nil {
			return res, err
		}
	}

	if o.Wait && !plan.Empty() {
		if err := p.waitCredentialed(ctx, o, plan, started, &res); err != nil {
			res.Remaining, _ = p.remaining(context.WithoutCancel(ctx), o)
			return res, err
		}
	}
	res.Remaining, err = p.remaining(ctx, o)
	return res, err
}

func (p Pods) remaining(ctx context.Context, o RecycleOptions) ([]StalePod, error) {
	pods, err := p.ForServiceAccount(ctx, o.Namespace, o.ServiceAccount, o.Selector)
	if err != nil {
		return nil, err
	}
	return Stale(pods, o.Expectation), nil
}

// replace deletes or evicts one pod. Pods of a ReplicaSet without a
// Deployment are replaced one at a time: with Wait, the next one goes only
// when the ReplicaSet is whole again.
func (p Pods) replace(ctx context.Context, o RecycleOptions, pod *corev1.Pod) error {
	switch o.Strategy {
	case StrategyEvict:
		o.Logf("evicting pod %s", pod.Name)
		return p.evict(ctx, o, pod)
	default:
		o.Logf("deleting pod %s", pod.Name)
		err := p.Client.CoreV1().Pods(o.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete pod %s: %w", pod.Name, err)
		}
		if owner := metav1.GetControllerOf(pod); o.Strategy != StrategyDelete && owner != nil && owner.Kind == "ReplicaSet" && o.Wait {
			return p.waitReplicaSetReady(ctx, o, owner.Name)
		}
		return nil
	}
}

// evictionBackoff paces retries of an eviction a budget blocks: from 1 s,
// doubling up to kubectl drain's 5 s, until the context ends.
var evictionBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Cap: 5 * time.Second, Steps: math.MaxInt32}

// evict posts an Eviction, which respects PodDisruptionBudgets. 429 means a
// budget blocks it now: retry with backoff, as kubectl drain does, until the
// timeout.
func (p Pods) evict(ctx context.Context, o RecycleOptions, pod *corev1.Pod) error {
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: o.Namespace}}
	var lastErr error
	blocked := false
	err := wait.ExponentialBackoffWithContext(ctx, evictionBackoff, func(ctx context.Context) (bool, error) {
		lastErr = p.Client.PolicyV1().Evictions(o.Namespace).Evict(ctx, eviction)
		switch {
		case lastErr == nil || apierrors.IsNotFound(lastErr):
			return true, nil
		case apierrors.IsTooManyRequests(lastErr):
			blocked = true
			o.Logf("eviction of pod %s blocked by a PodDisruptionBudget; retrying", pod.Name)
			return false, nil
		case blocked && ctx.Err() != nil:
			// The timeout cut the last try short: the budget is still why.
			return false, ctx.Err()
		default:
			return false, lastErr
		}
	})
	if err == nil {
		return nil
	}
	if blocked && (apierrors.IsTooManyRequests(lastErr) || ctx.Err() != nil) {
		budgets := p.budgetsFor(context.WithoutCancel(ctx), pod)
		return fmt.Errorf("evict pod %s: %w %s until the timeout: %w", pod.Name, ErrEvictionBlocked, strings.Join(budgets, ", "), lastErr)
	}
	if lastErr != nil {
		return fmt.Errorf("evict pod %s: %w", pod.Name, lastErr)
	}
	return fmt.Errorf("evict pod %s: %w", pod.Name, err)
}

// budgetsFor names the PodDisruptionBudgets whose selector matches pod.
func (p Pods) budgetsFor(ctx context.Context, pod *corev1.Pod) []string {
	list, err := p.Client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{"(could not list PodDisruptionBudgets: " + err.Error() + ")"}
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

func (p Pods) waitReplicaSetReady(ctx context.Context, o RecycleOptions, name string) error {
	return wait.PollUntilContextCancel(ctx, o.PollInterval, false, func(ctx context.Context) (bool, error) {
		rs, err := p.Client.AppsV1().ReplicaSets(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		want := int32(1)
		if rs.Spec.Replicas != nil {
			want = *rs.Spec.Replicas
		}
		return rs.Status.ObservedGeneration >= rs.Generation && rs.Status.ReadyReplicas >= want && rs.Status.Replicas == want, nil
	})
}

// waitCredentialed polls until every restarted workload has rolled out and
// every selected pod is Ready and credentialed, except the pods the plan
// leaves alone.
func (p Pods) waitCredentialed(ctx context.Context, o RecycleOptions, plan RecyclePlan, started time.Time, res *RecycleResult) error {
	leftAlone := map[string]bool{}
	for _, l := range plan.LeftAlone {
		leftAlone[l.Pod] = true
	}
	retries := 0
	var pending, lastPending []string
	err := wait.PollUntilContextCancel(ctx, o.PollInterval, false, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, w := range plan.Restart {
			done, why, err := p.rolledOut(ctx, o.Namespace, w)
			if err != nil {
				return false, err
			}
			if !done {
				pending = append(pending, fmt.Sprintf("%s: %s", w, why))
			}
		}
		pods, err := p.ForServiceAccount(ctx, o.Namespace, o.ServiceAccount, o.Selector)
		if err != nil {
			return false, err
		}
		var raced []*corev1.Pod
		for i := range pods {
			pod := &pods[i]
			if leftAlone[pod.Name] {
				continue
			}
			v := Inspect(pod, o.Expectation)
			switch {
			case !v.Credentialed && v.Recyclable && !pod.CreationTimestamp.Time.Before(started.Truncate(time.Second)):
				// A replacement created after recycling began, without
				// credentials: the webhook had not seen the annotation.
				raced = append(raced, pod)
				pending = append(pending, fmt.Sprintf("pod %s: %s", pod.Name, v.Reason))
			case !v.Credentialed && v.Recyclable:
				pending = append(pending, fmt.Sprintf("pod %s: %s, waiting for its replacement", pod.Name, v.Reason))
			case !v.Credentialed:
				// Not fixable by recycling; reported, not waited for.
			case !podReady(pod):
				pending = append(pending, fmt.Sprintf("pod %s: not Ready", pod.Name))
			}
		}
		if len(raced) > 0 {
			if retries >= o.MaxRetries {
				return false, fmt.Errorf("%d replacement pods came up without credentials after %d re-recycles", len(raced), retries)
			}
			retries++
			for _, pod := range raced {
				o.Logf("pod %s came up without credentials (webhook cache race); recycling it again (%d/%d)", pod.Name, retries, o.MaxRetries)
				res.Retried = append(res.Retried, pod.Name)
				err := p.Client.CoreV1().Pods(o.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					return false, err
				}
			}
			return false, nil
		}
		if len(pending) > 0 {
			o.Logf("waiting: %s", strings.Join(pending, "; "))
		}
		lastPending = append(lastPending[:0], pending...)
		return len(pending) == 0, nil
	})
	if err != nil {
		// The last complete look says what is not done; a look the
		// timeout cut short may have seen only part of it.
		if len(lastPending) == 0 {
			lastPending = pending
		}
		return &NotDoneError{Pending: append([]string(nil), lastPending...), Err: err}
	}
	return nil
}
