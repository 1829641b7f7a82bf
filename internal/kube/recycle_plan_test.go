package kube

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func ownedPod(name, kind, owner string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if kind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, Controller: ptr.To(true)}}
	}
	return p
}

func stale(pods ...*corev1.Pod) []StalePod {
	out := make([]StalePod, len(pods))
	for i, p := range pods {
		out[i] = StalePod{Pod: p, Reason: "created before the role annotation", Recyclable: true}
	}
	return out
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func leftAloneNames(l []LeftAlone) []string {
	var out []string
	for _, x := range l {
		out = append(out, x.Pod)
	}
	return out
}

func TestPlanRecycle(t *testing.T) {
	t.Parallel()
	owners := Owners{
		ReplicaSetDeployment: map[string]string{"api-7f9c": "api", "orphan-rs": "", "frozen-6d": "frozen"},
		PausedDeployments:    map[string]bool{"api": false, "frozen": true},
	}
	mixed := stale(
		ownedPod("api-7f9c-a", "ReplicaSet", "api-7f9c"),
		ownedPod("api-7f9c-b", "ReplicaSet", "api-7f9c"),
		ownedPod("agent-x", "DaemonSet", "agent"),
		ownedPod("db-0", "StatefulSet", "db"),
		ownedPod("orphan-rs-q", "ReplicaSet", "orphan-rs"),
		ownedPod("frozen-6d-z", "ReplicaSet", "frozen-6d"),
		ownedPod("batch-k", "Job", "batch"),
		ownedPod("bare", "", ""),
		ownedPod("custom", "Widget", "w"),
	)
	preset := StalePod{Pod: ownedPod("preset-1", "ReplicaSet", "api-7f9c"), Reason: "container app presets AWS_ROLE_ARN itself"}

	tests := []struct {
		name      string
		stale     []StalePod
		strategy  Strategy
		restart   []Workload
		replace   []string
		leftAlone []string
	}{
		{
			name: "rollout groups by owner", stale: mixed, strategy: StrategyRollout,
			restart:   []Workload{{"DaemonSet", "agent"}, {"Deployment", "api"}, {"StatefulSet", "db"}},
			replace:   []string{"orphan-rs-q"},
			leftAlone: []string{"bare", "batch-k", "custom", "frozen-6d-z"},
		},
		{
			name: "evict skips bare pods", stale: mixed, strategy: StrategyEvict,
			replace:   []string{"agent-x", "api-7f9c-a", "api-7f9c-b", "batch-k", "custom", "db-0", "frozen-6d-z", "orphan-rs-q"},
			leftAlone: []string{"bare"},
		},
		{
			name: "delete takes everything, bare pods included", stale: mixed, strategy: StrategyDelete,
			replace: []string{"agent-x", "api-7f9c-a", "api-7f9c-b", "bare", "batch-k", "custom", "db-0", "frozen-6d-z", "orphan-rs-q"},
		},
		{
			name: "none touches nothing", stale: mixed, strategy: StrategyNone,
			leftAlone: []string{"agent-x", "api-7f9c-a", "api-7f9c-b", "bare", "batch-k", "custom", "db-0", "frozen-6d-z", "orphan-rs-q"},
		},
		{
			name: "unfixable pods are never recycled", stale: []StalePod{preset}, strategy: StrategyDelete,
			leftAlone: []string{"preset-1"},
		},
		{name: "nothing stale", strategy: StrategyRollout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := PlanRecycle(tt.stale, tt.strategy, owners)
			if !reflect.DeepEqual(p.Restart, tt.restart) {
				t.Errorf("Restart = %v, want %v", p.Restart, tt.restart)
			}
			if got := names(p.Replace); !reflect.DeepEqual(got, tt.replace) {
				t.Errorf("Replace = %v, want %v", got, tt.replace)
			}
			if got := leftAloneNames(p.LeftAlone); !reflect.DeepEqual(got, tt.leftAlone) {
				t.Errorf("LeftAlone = %v, want %v", got, tt.leftAlone)
			}
			if p.Empty() != (len(tt.restart) == 0 && len(tt.replace) == 0) {
				t.Errorf("Empty() = %v", p.Empty())
			}
		})
	}
	t.Run("a partly stale workload gets only its stale pods replaced", func(t *testing.T) {
		t.Parallel()
		partial := owners
		partial.LivePods = map[Workload]int{{"Deployment", "api"}: 3, {"DaemonSet", "agent"}: 1}
		p := PlanRecycle(mixed, StrategyRollout, partial)
		if got := names(p.Replace); !reflect.DeepEqual(got, []string{"api-7f9c-a", "api-7f9c-b", "orphan-rs-q"}) {
			t.Errorf("Replace = %v", got)
		}
		if want := []Workload{{"DaemonSet", "agent"}, {"StatefulSet", "db"}}; !reflect.DeepEqual(p.Restart, want) {
			t.Errorf("Restart = %v, want %v", p.Restart, want)
		}
	})
	t.Run("summary names what is restarted, replaced and left alone", func(t *testing.T) {
		t.Parallel()
		got := PlanRecycle(mixed, StrategyRollout, owners).Summary()
		for _, want := range []string{
			"restart Deployment/api (stale pods: api-7f9c-a, api-7f9c-b)",
			"restart DaemonSet/agent", "replace pod orphan-rs-q",
			"leave pod bare alone: bare pod", "leave pod batch-k alone: pod of Job batch",
			"leave pod frozen-6d-z alone: Deployment frozen is paused",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("summary lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("restart lists the stale pods per workload", func(t *testing.T) {
		t.Parallel()
		p := PlanRecycle(mixed, StrategyRollout, owners)
		if got := p.RestartPods[Workload{"Deployment", "api"}]; !reflect.DeepEqual(got, []string{"api-7f9c-a", "api-7f9c-b"}) {
			t.Errorf("RestartPods[Deployment/api] = %v", got)
		}
	})
}
