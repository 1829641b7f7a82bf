package recycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// Engine plans and recycles the pods of ServiceAccounts through one
// connection; every write carries its field manager.
type Engine struct {
	kube.Conn
}

// RecycleOptions say which pods to recycle and how.
type RecycleOptions struct {
	Namespace      string
	ServiceAccount string
	Selector       string
	// Credentials are what a credentialed pod looks like: the binding's
	// mechanism says.
	Credentials Credentials
	Strategy    Strategy
	// Wait until every touched pod is replaced, Ready and credentialed.
	// Paced replacement waits between pods whatever this says.
	Wait bool
	// MaxRetries bounds how often replacements that came up without
	// credentials (what the gate cannot see) re-enter planning.
	MaxRetries int
	// PollInterval is how often progress is checked while waiting.
	PollInterval time.Duration
	// GateTimeout bounds the readiness gate: how long the webhook may take
	// to inject the expectation into a dry-run pod before recycling gives
	// up without touching anything. Zero skips the gate.
	GateTimeout time.Duration
	// Logf reports progress (the provider sends it to tflog).
	Logf func(format string, args ...any)
	// ListPods, when set, lists the ServiceAccount's live pods for Plan
	// instead of asking the API server: a plan's shared snapshot. Recycle
	// always lists fresh.
	ListPods func(ctx context.Context) ([]corev1.Pod, error)
}

// RecycleResult is what Recycle planned and did.
type RecycleResult struct {
	Plan RecyclePlan
	// GateSkipped says why the readiness gate could not run; nil when it
	// ran (or was not asked for).
	GateSkipped error
	// Retried are replacements that came up without credentials and went
	// through planning again.
	Retried []string
	// Listed is the last look at the pods when it is still the truth:
	// the list the plan was made from when the plan touched nothing, or
	// the wait's last list when it saw everything done. Nil otherwise
	// (the caller looks again).
	Listed []corev1.Pod
}

// NotDoneError is returned when waiting ends (timeout or retries
// exhausted) with workloads or pods not done. Each entry says why.
type NotDoneError struct {
	Pending []string
	// Unreachable is set when the last look could not reach the API
	// server: the wait did not fail on the pods, it lost sight of them.
	Unreachable error
	Err         error
}

func (e *NotDoneError) Error() string {
	return fmt.Sprintf("not done: %s: %v", strings.Join(e.Pending, "; "), e.Err)
}

func (e *NotDoneError) Unwrap() error { return e.Err }

// Plan lists the stale pods and decides what strategy would do with them,
// changing nothing.
func (p Engine) Plan(ctx context.Context, o RecycleOptions) (RecyclePlan, error) {
	plan, _, _, err := p.plan(ctx, o)
	return plan, err
}

// plan is Plan that also returns the pods it planned from.
func (p Engine) plan(ctx context.Context, o RecycleOptions) (RecyclePlan, Owners, []corev1.Pod, error) {
	list := o.ListPods
	if list == nil {
		list = func(ctx context.Context) ([]corev1.Pod, error) {
			return kube.PodsOf(ctx, p.Client, o.Namespace, o.ServiceAccount, o.Selector)
		}
	}
	var pods []corev1.Pod
	err := kube.OnTransient(ctx, func() (err error) {
		pods, err = list(ctx)
		return err
	})
	if err != nil {
		return RecyclePlan{Strategy: o.Strategy}, Owners{}, nil, err
	}
	if pods == nil {
		pods = []corev1.Pod{} // listed, and none: unlike not listed
	}
	stale := Stale(pods, o.Credentials)
	owners := Owners{ReplicaSetDeployment: map[string]string{}, ReplicaSetRevision: map[string]string{}, Workloads: map[Workload]*WorkloadInfo{}}
	if o.Strategy != StrategyNone && anyRecyclable(stale) {
		err = kube.OnTransient(ctx, func() (err error) {
			owners, err = p.ResolveOwners(ctx, o.Namespace, pods)
			return err
		})
		if err != nil {
			return RecyclePlan{Strategy: o.Strategy}, owners, nil, err
		}
	}
	owners.Before = map[types.UID]bool{}
	for i := range pods {
		owners.Before[pods[i].UID] = true
	}
	return PlanRecycle(stale, o.Strategy, owners), owners, pods, nil
}

func anyRecyclable(stale []StalePod) bool {
	for _, s := range stale {
		if s.Recyclable {
			return true
		}
	}
	return false
}

// Recycle plans from what is in the cluster, checks that the webhook would
// credential new pods (the gate), then acts on exactly what the plan names
// through the strategy, and waits for what it touched. Replacements that
// come up without credentials anyway re-enter planning, at most MaxRetries
// times; only pods of workloads the plan touched are candidates, so a Job
// pod, a bare pod or an operator's pod created meanwhile is never touched.
func (p Engine) Recycle(ctx context.Context, o RecycleOptions) (RecycleResult, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	o.ListPods = nil // what is recycled is decided on a fresh list
	plan, owners, listed, err := p.plan(ctx, o)
	res := RecycleResult{Plan: plan}
	if err != nil || plan.Empty() {
		res.Listed = listed
		return res, err
	}
	if o.GateTimeout > 0 {
		tpl, claims := probeTemplate(plan, owners)
		probe := probePod(o.Namespace, o.ServiceAccount, tpl, claims, firstPod(plan))
		res.GateSkipped, err = p.checkWebhook(ctx, probe, o.Credentials, o.GateTimeout, o.PollInterval)
		if err != nil {
			return res, err
		}
	}
	r := &recycler{Engine: p, o: o, owners: owners, plan: plan}
	err = r.run(ctx)
	if r.view != nil {
		r.view.close()
	}
	res.Retried = r.retried
	if err == nil {
		res.Listed = r.final
	}
	return res, err
}

// probeTemplate is the template of a workload the plan touches, and the
// claim volumes its pods get besides.
func probeTemplate(plan RecyclePlan, owners Owners) (*corev1.PodTemplateSpec, []string) {
	var ws []Workload
	for _, r := range plan.Restart {
		ws = append(ws, r.Workload)
	}
	for _, g := range plan.Replace {
		ws = append(ws, g.Workload)
	}
	for _, w := range ws {
		if info := owners.Info(w); info.Template != nil {
			return info.Template, info.ClaimVolumes
		}
	}
	return nil, nil
}

func firstPod(plan RecyclePlan) *corev1.Pod {
	for _, g := range plan.Replace {
		if len(g.Pods) > 0 {
			return g.Pods[0]
		}
	}
	return nil
}

// timeNow stamps restartedAt; like kubectl, the local clock is fine for a
// value whose only job is to differ from the last one.
var timeNow = time.Now

// recycler carries one recycle's acts and waits.
type recycler struct {
	Engine
	o    RecycleOptions
	plan RecyclePlan

	mu      sync.Mutex
	owners  Owners // grows as new ReplicaSets of a rollout appear
	retried []string
	// final is the wait's list of the round that found everything done.
	final []corev1.Pod
	// view is what the waits look at (watch.go).
	view *waitView
}

func (r *recycler) run(ctx context.Context) error {
	o := r.o
	var targets []*target
	for _, rs := range r.plan.Restart {
		if rs.InProgress {
			o.Logf("waiting for the rollout of %s already under way, which replaces its pods %s", rs.Workload, strings.Join(rs.Pods, ", "))
			targets = append(targets, r.newTarget(rs.Workload, true, nil))
			continue
		}
		o.Logf("restarting %s, whose pods %s run without the role's credentials", rs.Workload, strings.Join(rs.Pods, ", "))
		if err := r.restart(ctx, o.Namespace, rs.Workload, timeNow()); err != nil {
			return fmt.Errorf("restart %s: %w", rs.Workload, err)
		}
		targets = append(targets, r.newTarget(rs.Workload, true, nil))
	}

	// Paced groups (only under rollout) go side by side, one workload
	// each; the first to fail stops the others. Unpaced groups (evict,
	// delete) go at once.
	paced, pacedCtx := errgroup.WithContext(ctx)
	for _, g := range r.plan.Replace {
		if g.Paced {
			paced.Go(func() error { return r.replacePaced(pacedCtx, g) })
			continue
		}
		for _, pod := range g.Pods {
			if err := r.removePod(ctx, o.Strategy, pod, o.Logf); err != nil {
				return err
			}
		}
		targets = append(targets, r.newTarget(g.Workload, false, g.Pods))
	}
	if err := paced.Wait(); err != nil {
		return err
	}
	if !o.Wait || len(targets) == 0 {
		return nil
	}
	return r.waitFor(ctx, targets)
}

// replacePaced replaces a workload's stale pods one at a time: each
// replacement Ready and credentialed before the next pod goes.
func (r *recycler) replacePaced(ctx context.Context, g Replacement) error {
	for i, pod := range g.Pods {
		if err := r.removePod(ctx, r.o.Strategy, pod, r.o.Logf); err != nil {
			return err
		}
		if i == len(g.Pods)-1 && !r.o.Wait {
			return nil
		}
		if err := r.waitFor(ctx, []*target{r.newTarget(g.Workload, false, []*corev1.Pod{pod})}); err != nil {
			return err
		}
		r.o.Logf("pod %s of %s replaced (%d of %d)", pod.Name, g.Workload, i+1, len(g.Pods))
	}
	return nil
}

// workloadOf is Owners.WorkloadOf, reading a ReplicaSet it has not seen
// (a rollout's new one) once.
func (r *recycler) workloadOf(ctx context.Context, pod *corev1.Pod) Workload {
	r.mu.Lock()
	defer r.mu.Unlock()
	owner := metav1.GetControllerOf(pod)
	if owner != nil && owner.Kind == KindReplicaSet {
		if _, known := r.owners.ReplicaSetDeployment[owner.Name]; !known {
			if _, err := r.learnReplicaSet(ctx, pod.Namespace, owner.Name, r.owners); err != nil {
				// Unknown for now; the next poll asks again.
				return Workload{KindReplicaSet, owner.Name}
			}
		}
	}
	return r.owners.WorkloadOf(pod)
}
