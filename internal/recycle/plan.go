package recycle

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Strategy is how stale pods are replaced.
type Strategy string

// Strategies, in the order the schema documents them.
const (
	StrategyRollout Strategy = "rollout"
	StrategyEvict   Strategy = "evict"
	StrategyDelete  Strategy = "delete"
	StrategyNone    Strategy = "none"
)

// Strategies lists every strategy; the schema's validator and its
// documentation are built from it.
var Strategies = []Strategy{StrategyRollout, StrategyEvict, StrategyDelete, StrategyNone}

// StalePod is a pod of the ServiceAccount without the right credentials.
type StalePod struct {
	Pod    *corev1.Pod
	Reason string
	// Recyclable is false when re-creating the pod cannot help.
	Recyclable bool
}

// RecyclePlan is everything a recycle will touch, and what it leaves alone.
// Nothing outside it is ever deleted, evicted or restarted.
type RecyclePlan struct {
	Strategy Strategy
	// Restart are workloads whose pod template gets a restartedAt
	// annotation, as `kubectl rollout restart` does.
	Restart []Restart
	// Replace are pods deleted (or evicted, with strategy evict), grouped
	// by the workload that re-creates them.
	Replace []Replacement
	// LeftAlone are stale pods the strategy will not touch, with why.
	LeftAlone []LeftAlone
}

// Restart is a workload to roll and the stale pods that call for it.
type Restart struct {
	Workload Workload
	Pods     []string
	// InProgress is a rollout already under way that replaces every stale
	// pod of the workload: it is waited for, not started again.
	InProgress bool
}

// Replacement is a set of pods replaced one by one.
type Replacement struct {
	// Workload re-creates the pods; zero for bare pods, Job pods and pods
	// of unknown controllers (strategies evict and delete), whose
	// replacements nothing waits for.
	Workload Workload
	// Pods in the order they go: a StatefulSet's from the highest ordinal.
	Pods []*corev1.Pod
	// Paced replaces one pod at a time, waiting for each replacement to be
	// Ready and credentialed before the next goes.
	Paced bool
}

// LeftAlone is a stale pod the strategy does not recycle.
type LeftAlone struct {
	Pod    string
	Reason string
}

// Empty reports whether the plan changes nothing.
func (p RecyclePlan) Empty() bool { return len(p.Restart) == 0 && len(p.Replace) == 0 }

// PlanRecycle decides, per strategy, which workloads are restarted, which
// pods are replaced one by one, and which stale pods are left alone (and
// why). It is pure: owners carries everything it needs from the cluster.
//
//   - rollout restarts a Deployment, StatefulSet or DaemonSet whose pods are
//     all stale; a workload with some credentialed pods (or more pods than
//     the selector shows), an OnDelete StatefulSet or DaemonSet, and a
//     ReplicaSet without a Deployment get their stale pods replaced one at
//     a time instead. Bare pods, Job pods, paused Deployments, pods below a
//     StatefulSet's partition and unknown controllers are left alone.
//   - evict evicts the stale pods of every controller; bare pods are left alone.
//   - delete deletes every stale pod.
//   - none touches nothing.
func PlanRecycle(stale []StalePod, strategy Strategy, owners Owners) RecyclePlan {
	plan := RecyclePlan{Strategy: strategy}
	groups := map[Workload]*Replacement{}
	replace := func(w Workload, pod *corev1.Pod, paced bool) {
		g, ok := groups[w]
		if !ok {
			g = &Replacement{Workload: w, Paced: paced}
			groups[w] = g
		}
		g.Pods = append(g.Pods, pod)
	}
	leave := func(pod *corev1.Pod, reason string) {
		plan.LeftAlone = append(plan.LeftAlone, LeftAlone{pod.Name, reason})
	}
	candidates := map[Workload][]*corev1.Pod{}

	for _, s := range stale {
		pod := s.Pod
		if !s.Recyclable {
			leave(pod, s.Reason+"; recycling cannot fix it")
			continue
		}
		owner := metav1.GetControllerOf(pod)
		w := owners.WorkloadOf(pod)
		switch strategy {
		case StrategyNone:
			leave(pod, "restart.strategy is none")
			continue
		case StrategyDelete:
			replace(w, pod, false)
			continue
		case StrategyEvict:
			if owner == nil {
				leave(pod, "bare pod: nothing would re-create it after eviction")
				continue
			}
			replace(w, pod, false)
			continue
		}

		// rollout
		info := owners.Info(w)
		switch {
		case owner == nil:
			leave(pod, `bare pod: nothing would re-create it; delete it yourself or use restart.strategy = "delete"`)
		case owner.Kind == KindJob:
			leave(pod, "pod of Job "+owner.Name+": restarting it would re-run or lose work")
		case w.IsZero():
			leave(pod, fmt.Sprintf("owned by %s %s, which the provider does not know how to restart", owner.Kind, owner.Name))
		case w.Kind == KindReplicaSet:
			// The ReplicaSet replaces what is deleted.
			replace(w, pod, true)
		case w.Kind == KindDeployment && info.Paused:
			leave(pod, "Deployment "+w.Name+" is paused; resume it and apply again")
		case info.OnDelete:
			// The controller never replaces pods after a template change.
			replace(w, pod, true)
		case w.Kind == KindStatefulSet && info.Partition > 0 && ordinal(pod.Name) < int(info.Partition):
			leave(pod, fmt.Sprintf("below partition %d of StatefulSet %s, which holds it back from rolling updates; lower the partition and apply again", info.Partition, w.Name))
		default:
			candidates[w] = append(candidates[w], pod)
		}
	}

	// Only what is stale is touched: a workload with pods that need no
	// recycling gets just its stale pods replaced, one at a time. A rollout
	// already under way replaces its old pods by itself: wait for it.
	for w, pods := range candidates {
		info := owners.Info(w)
		inProgress := info.RollingOut && !slices.ContainsFunc(pods, func(p *corev1.Pod) bool { return !owners.OfOlderRevision(p) })
		if !inProgress {
			inScope := 0
			for _, name := range info.Pods {
				if w.Kind != KindStatefulSet || ordinal(name) >= int(info.Partition) {
					inScope++
				}
			}
			if want := int(info.Replicas) - int(info.Partition); inScope > len(pods) || want > len(pods) {
				for _, pod := range pods {
					replace(w, pod, true)
				}
				continue
			}
		}
		r := Restart{Workload: w, InProgress: inProgress}
		for _, pod := range pods {
			r.Pods = append(r.Pods, pod.Name)
		}
		sort.Strings(r.Pods)
		plan.Restart = append(plan.Restart, r)
	}

	for _, g := range groups {
		sortForReplacement(g)
		plan.Replace = append(plan.Replace, *g)
	}
	sort.Slice(plan.Restart, func(i, j int) bool { return plan.Restart[i].Workload.String() < plan.Restart[j].Workload.String() })
	sort.Slice(plan.Replace, func(i, j int) bool { return plan.Replace[i].Workload.String() < plan.Replace[j].Workload.String() })
	sort.Slice(plan.LeftAlone, func(i, j int) bool { return plan.LeftAlone[i].Pod < plan.LeftAlone[j].Pod })
	return plan
}

// sortForReplacement orders a StatefulSet's pods from the highest ordinal
// down, as its own rolling update does; others by name.
func sortForReplacement(g *Replacement) {
	if g.Workload.Kind == KindStatefulSet {
		sort.SliceStable(g.Pods, func(i, j int) bool { return ordinal(g.Pods[i].Name) > ordinal(g.Pods[j].Name) })
		return
	}
	sort.Slice(g.Pods, func(i, j int) bool { return g.Pods[i].Name < g.Pods[j].Name })
}

// ordinal is a StatefulSet pod's index, the number after the last '-'; -1
// when there is none.
func ordinal(pod string) int {
	i := strings.LastIndexByte(pod, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(pod[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// Summary describes the plan for a warning: exactly what will be restarted,
// deleted or evicted, and what will be left alone.
func (p RecyclePlan) Summary() string {
	verb := "delete"
	if p.Strategy == StrategyEvict {
		verb = "evict"
	}
	var b strings.Builder
	for _, r := range p.Restart {
		if r.InProgress {
			fmt.Fprintf(&b, "  - wait for the rollout of %s already under way, which replaces its stale pods %s\n", r.Workload, strings.Join(r.Pods, ", "))
			continue
		}
		fmt.Fprintf(&b, "  - restart %s, as kubectl rollout restart does (stale pods: %s)\n", r.Workload, strings.Join(r.Pods, ", "))
	}
	for _, g := range p.Replace {
		names := make([]string, len(g.Pods))
		for i, pod := range g.Pods {
			names[i] = pod.Name
		}
		switch {
		case g.Workload.IsZero():
			fmt.Fprintf(&b, "  - %s pods %s (bare pods are gone for good; a Job or another controller re-creates its own)\n", verb, strings.Join(names, ", "))
		case g.Paced:
			fmt.Fprintf(&b, "  - %s pods of %s one at a time, each replacement Ready and credentialed before the next: %s\n", verb, g.Workload, strings.Join(names, ", "))
		default:
			fmt.Fprintf(&b, "  - %s pods of %s: %s\n", verb, g.Workload, strings.Join(names, ", "))
		}
	}
	for _, l := range p.LeftAlone {
		fmt.Fprintf(&b, "  - leave pod %s alone: %s\n", l.Pod, l.Reason)
	}
	return b.String()
}
