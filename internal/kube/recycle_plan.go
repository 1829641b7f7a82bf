package kube

import (
	"fmt"
	"sort"
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

// Workload identifies a pod controller.
type Workload struct {
	Kind string // Deployment, StatefulSet, DaemonSet, ReplicaSet
	Name string
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// Owners is what the planner needs to know about pod owners beyond the pods
// themselves: which Deployment owns a ReplicaSet, and which Deployments are
// paused. The caller fetches it (one GET per distinct owner).
type Owners struct {
	ReplicaSetDeployment map[string]string // ReplicaSet name -> Deployment name ("" = none)
	PausedDeployments    map[string]bool
	// LivePods counts the live pods of each workload that use the
	// ServiceAccount, stale or not.
	LivePods map[Workload]int
}

// RecyclePlan is what a strategy will do with the stale pods.
type RecyclePlan struct {
	// Restart are workloads whose pod template gets a restartedAt
	// annotation (strategy rollout).
	Restart []Workload
	// RestartPods maps each workload to restart to its stale pods.
	RestartPods map[Workload][]string
	// Replace are pods deleted or evicted one by one, their controller
	// creating the replacement.
	Replace []*corev1.Pod
	// LeftAlone are stale pods the strategy will not touch, with why.
	LeftAlone []LeftAlone
}

// LeftAlone is a stale pod the strategy does not recycle.
type LeftAlone struct {
	Pod    string
	Reason string
}

// Empty reports whether the plan changes nothing.
func (p RecyclePlan) Empty() bool { return len(p.Restart) == 0 && len(p.Replace) == 0 }

// PlanRecycle groups stale pods by owner and decides, per strategy, what is
// restarted, what is replaced pod by pod, and what is left alone (and why).
// It is pure: owners carries everything it needs from the cluster.
func PlanRecycle(stale []StalePod, strategy Strategy, owners Owners) RecyclePlan {
	plan := RecyclePlan{RestartPods: map[Workload][]string{}}
	seen := map[Workload]bool{}
	for _, s := range stale {
		name := s.Pod.Name
		if !s.Recyclable {
			plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, s.Reason + "; recycling cannot fix it"})
			continue
		}
		owner := metav1.GetControllerOf(s.Pod)
		switch strategy {
		case StrategyNone:
			plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, "restart.strategy is none"})
			continue
		case StrategyDelete:
			plan.Replace = append(plan.Replace, s.Pod)
			continue
		case StrategyEvict:
			if owner == nil {
				plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, "bare pod: nothing would re-create it after eviction"})
				continue
			}
			plan.Replace = append(plan.Replace, s.Pod)
			continue
		}

		// rollout
		switch {
		case owner == nil:
			plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, "bare pod: nothing would re-create it; delete it yourself or use restart.strategy = \"delete\""})
		case owner.Kind == "Job":
			plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, "pod of Job " + owner.Name + ": restarting it would re-run or lose work"})
		case owner.Kind == "ReplicaSet":
			dep := owners.ReplicaSetDeployment[owner.Name]
			if dep == "" {
				// The ReplicaSet replaces what is deleted, one at a time.
				plan.Replace = append(plan.Replace, s.Pod)
				continue
			}
			if owners.PausedDeployments[dep] {
				plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, "Deployment " + dep + " is paused; resume it and apply again"})
				continue
			}
			plan.addRestart(Workload{"Deployment", dep}, name, seen)
		case owner.Kind == "StatefulSet" || owner.Kind == "DaemonSet":
			plan.addRestart(Workload{owner.Kind, owner.Name}, name, seen)
		default:
			plan.LeftAlone = append(plan.LeftAlone, LeftAlone{name, fmt.Sprintf("owned by %s %s, which the provider does not know how to restart", owner.Kind, owner.Name)})
		}
	}
	// Only what is stale is touched: a workload with some credentialed pods
	// gets just its stale pods replaced, one at a time, not a restart.
	restart := plan.Restart[:0]
	for _, w := range plan.Restart {
		if n := owners.LivePods[w]; n > len(plan.RestartPods[w]) {
			for _, s := range stale {
				if wl, ok := owners.workloadOf(s.Pod); ok && wl == w && s.Recyclable {
					plan.Replace = append(plan.Replace, s.Pod)
				}
			}
			delete(plan.RestartPods, w)
			continue
		}
		restart = append(restart, w)
	}
	plan.Restart = restart
	sort.Slice(plan.Restart, func(i, j int) bool { return plan.Restart[i].String() < plan.Restart[j].String() })
	sort.Slice(plan.Replace, func(i, j int) bool { return plan.Replace[i].Name < plan.Replace[j].Name })
	sort.Slice(plan.LeftAlone, func(i, j int) bool { return plan.LeftAlone[i].Pod < plan.LeftAlone[j].Pod })
	return plan
}

// workloadOf names the Deployment, StatefulSet, DaemonSet or bare
// ReplicaSet that controls pod.
func (o Owners) workloadOf(pod *corev1.Pod) (Workload, bool) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return Workload{}, false
	}
	switch owner.Kind {
	case "ReplicaSet":
		if dep := o.ReplicaSetDeployment[owner.Name]; dep != "" {
			return Workload{"Deployment", dep}, true
		}
		return Workload{"ReplicaSet", owner.Name}, true
	case "StatefulSet", "DaemonSet":
		return Workload{owner.Kind, owner.Name}, true
	}
	return Workload{}, false
}

func (p *RecyclePlan) addRestart(w Workload, pod string, seen map[Workload]bool) {
	if !seen[w] {
		seen[w] = true
		p.Restart = append(p.Restart, w)
	}
	p.RestartPods[w] = append(p.RestartPods[w], pod)
}

// Summary describes the plan for a warning: what will be restarted and what
// will be left alone.
func (p RecyclePlan) Summary() string {
	var b strings.Builder
	for _, w := range p.Restart {
		fmt.Fprintf(&b, "  - restart %s (stale pods: %s)\n", w, strings.Join(p.RestartPods[w], ", "))
	}
	for _, pod := range p.Replace {
		fmt.Fprintf(&b, "  - replace pod %s\n", pod.Name)
	}
	for _, l := range p.LeftAlone {
		fmt.Fprintf(&b, "  - leave pod %s alone: %s\n", l.Pod, l.Reason)
	}
	return b.String()
}
