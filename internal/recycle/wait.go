package recycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// waitView is the recycle's view for its waits, made at the first.
func (r *recycler) waitView() *waitView {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.view == nil {
		r.view = newWaitView(r.Client, r.o.Namespace, r.o.ServiceAccount, r.o.Selector)
	}
	return r.view
}

// target is something a recycle touched and waits for: a restarted
// workload, or pods removed from a workload (or from nothing, for bare and
// Job pods under strategy delete).
type target struct {
	workload Workload
	restart  bool
	// gone are the pods removed, which must disappear.
	gone []*corev1.Pod
	// want is how many live pods of the ServiceAccount the workload must
	// have again: as many as when the plan was made, surge pods of a
	// rollout under way not counted.
	want int
}

func (r *recycler) newTarget(w Workload, restart bool, gone []*corev1.Pod) *target {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := r.owners.Info(w)
	want := len(info.Pods)
	if info.Replicas > 0 {
		want = min(want, int(info.Replicas))
	}
	return &target{workload: w, restart: restart, gone: gone, want: want}
}

// watchedLook is how often the wait looks while its view is watched: a
// look then costs no request, so it may look often, and see a rollout done
// soon after it is.
const watchedLook = 200 * time.Millisecond

// waitFor looks at the recycle's view of the pods and the restarted
// workloads, every PollInterval while a look costs requests, more often
// while the view is watched (watchedLook; see waitView), until every target
// is done: a restarted workload rolled out as
// `kubectl rollout status` judges it, removed pods gone, and the workload's
// replacements Ready and credentialed. Pods the recycle did not touch never
// hold it up. A replacement without credentials re-enters planning.
func (r *recycler) waitFor(ctx context.Context, targets []*target) error {
	o := r.o
	view := r.waitView()
	retries := 0
	var pending, lastPending []string
	// unreachable is the last round's failure to reach the API server.
	var unreachable error
	var lastRead time.Time
	err := wait.PollUntilContextCancel(ctx, min(o.PollInterval, watchedLook), false, func(ctx context.Context) (bool, error) {
		if view.reads() {
			if time.Since(lastRead) < o.PollInterval {
				return false, nil
			}
			lastRead = time.Now()
		}
		pending = pending[:0]
		unreachable = nil
		pods, err := view.livePods(ctx)
		if err != nil {
			if kube.IsTransient(err) {
				pending = append(pending, "listing pods: "+err.Error())
				unreachable = err
				return false, nil
			}
			return false, err
		}
		live := map[types.UID]bool{}
		byWorkload := map[Workload][]*corev1.Pod{}
		for i := range pods {
			live[pods[i].UID] = true
			w := r.workloadOf(ctx, &pods[i])
			byWorkload[w] = append(byWorkload[w], &pods[i])
		}
		var raced []StalePod
		for _, t := range targets {
			if t.restart {
				obj, err := view.workload(ctx, t.workload)
				done, why := false, ""
				if err == nil {
					done, why, err = workloadStatus(obj)
				}
				var failed *RolloutFailedError
				switch {
				case errors.As(err, &failed):
					return false, err
				case err != nil && kube.IsTransient(err):
					pending = append(pending, fmt.Sprintf("%s: %v", t.workload, err))
					unreachable = err
				case err != nil:
					return false, err
				case !done:
					pending = append(pending, fmt.Sprintf("%s: %s", t.workload, why))
				}
			}
			for _, g := range t.gone {
				if live[g.UID] {
					pending = append(pending, fmt.Sprintf("pod %s: waiting for it to go", g.Name))
				}
			}
			if t.workload.IsZero() {
				continue
			}
			mine := byWorkload[t.workload]
			// A restarted workload's size is its rollout status's call
			// (an autoscaler may scale it meanwhile).
			if !t.restart && len(mine) < t.want {
				pending = append(pending, fmt.Sprintf("%s: %d of %d pods", t.workload, len(mine), t.want))
			}
			// A Deployment or DaemonSet rollout replaces every pod: its
			// status can say done before the view has seen the last stale
			// pod go (two watches, two streams), and that pod must not be
			// the last look's stale pod. Pods an earlier, interrupted
			// rollout already replaced were there before too, but carry
			// the credentials, and stay.
			replacesAll := t.restart && (t.workload.Kind == KindDeployment || t.workload.Kind == KindDaemonSet)
			for _, pod := range mine {
				if r.owners.Before[pod.UID] {
					if replacesAll && !o.Credentials.Judge(pod).Credentialed {
						pending = append(pending, fmt.Sprintf("pod %s: stale pod of %s still running", pod.Name, t.workload))
					}
					continue // not a replacement: the rollout status covers it
				}
				v := o.Credentials.Judge(pod)
				switch {
				case !v.Credentialed && v.Recyclable:
					raced = append(raced, StalePod{Pod: pod, Reason: v.Reason, Recyclable: true})
					pending = append(pending, fmt.Sprintf("pod %s: %s", pod.Name, v.Reason))
				case !v.Credentialed:
					// Recycling cannot fix it; stale_pods reports it.
				case !podReady(pod):
					pending = append(pending, fmt.Sprintf("pod %s: not Ready", pod.Name))
				}
			}
		}
		if len(raced) > 0 {
			if retries >= o.MaxRetries {
				return false, fmt.Errorf("%d replacement pods came up without credentials after %d re-recycles", len(raced), retries)
			}
			retries++
			if err := r.reenter(ctx, raced, retries); err != nil {
				return false, err
			}
			// What the re-recycle did must not be missed for an event
			// still on its way.
			view.reread()
			return false, nil
		}
		// One line when what is pending changes, not one per poll.
		if len(pending) > 0 && !slices.Equal(pending, lastPending) {
			o.Logf("waiting for %s", strings.Join(pending, "; "))
		}
		lastPending = append(lastPending[:0], pending...)
		if len(pending) == 0 {
			// Paced waits run side by side.
			r.mu.Lock()
			r.final = pods
			r.mu.Unlock()
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		var failed *RolloutFailedError
		if errors.As(err, &failed) {
			return err
		}
		// The last complete look says what is not done; a look the
		// timeout cut short may have seen only part of it.
		if len(lastPending) == 0 {
			lastPending = pending
		}
		if len(lastPending) == 0 {
			lastPending = []string{"nothing checked yet"}
		}
		return &NotDoneError{Pending: append([]string(nil), lastPending...), Unreachable: unreachable, Err: err}
	}
	return nil
}

// reenter sends replacements that came up without credentials (the webhook
// missed them: its cache lagged, or it was away) through planning again.
// They belong to workloads this recycle touched, so the plan can only name
// them, and they go through the strategy: evicted under evict, so budgets
// hold.
func (r *recycler) reenter(ctx context.Context, raced []StalePod, round int) error {
	r.mu.Lock()
	plan := PlanRecycle(raced, r.o.Strategy, r.owners)
	r.mu.Unlock()
	for _, rs := range plan.Restart {
		// All of a workload's replacements missed the credentials.
		r.o.Logf("%s came up without credentials; restarting it again (%d/%d)", rs.Workload, round, r.o.MaxRetries)
		if err := r.restart(ctx, r.o.Namespace, rs.Workload, timeNow()); err != nil {
			return fmt.Errorf("restart %s: %w", rs.Workload, err)
		}
		r.noteRetried(rs.Pods...)
	}
	for _, g := range plan.Replace {
		pods := g.Pods
		if g.Paced {
			// One at a time here too; the others are seen next round.
			pods = pods[:1]
		}
		for _, pod := range pods {
			r.o.Logf("pod %s came up without credentials; replacing it again (%d/%d)", pod.Name, round, r.o.MaxRetries)
			if err := r.removePod(ctx, r.o.Strategy, pod, r.o.Logf); err != nil {
				return err
			}
			r.noteRetried(pod.Name)
		}
	}
	return nil
}

func (r *recycler) noteRetried(names ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retried = append(r.retried, names...)
}
