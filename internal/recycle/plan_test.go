package recycle

import (
	"reflect"
	"sort"
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

func replaced(plan RecyclePlan) []string {
	var out []string
	for _, g := range plan.Replace {
		for _, p := range g.Pods {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func restarted(plan RecyclePlan) []Workload {
	var out []Workload
	for _, r := range plan.Restart {
		out = append(out, r.Workload)
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

// mixedOwners knows every workload of mixed, each with exactly the pods
// mixed lists: all stale.
func mixedOwners() Owners {
	return Owners{
		ReplicaSetDeployment: map[string]string{"api-7f9c": "api", "orphan-rs": "", "frozen-6d": "frozen"},
		Workloads: map[Workload]*WorkloadInfo{
			{KindDeployment, "api"}:       {Replicas: 2, Pods: []string{"api-7f9c-a", "api-7f9c-b"}},
			{KindDeployment, "frozen"}:    {Replicas: 1, Paused: true, Pods: []string{"frozen-6d-z"}},
			{KindReplicaSet, "orphan-rs"}: {Replicas: 1, Pods: []string{"orphan-rs-q"}},
			{KindDaemonSet, "agent"}:      {Replicas: 1, Pods: []string{"agent-x"}},
			{KindStatefulSet, "db"}:       {Replicas: 1, Pods: []string{"db-0"}},
		},
	}
}

func mixedPods() []StalePod {
	return stale(
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
}

func TestPlanRecycle(t *testing.T) {
	t.Parallel()
	mixed := mixedPods()
	preset := StalePod{Pod: ownedPod("preset-1", "ReplicaSet", "api-7f9c"), Reason: "container app presets AWS_ROLE_ARN itself"}
	podIdentity := StalePod{Pod: ownedPod("pi-1", "ReplicaSet", "api-7f9c"), Reason: "credentialed by EKS Pod Identity"}

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
			name: "unfixable pods are never recycled", stale: []StalePod{preset, podIdentity}, strategy: StrategyDelete,
			leftAlone: []string{"pi-1", "preset-1"},
		},
		{name: "nothing stale", strategy: StrategyRollout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := PlanRecycle(tt.stale, tt.strategy, mixedOwners())
			if got := restarted(p); !reflect.DeepEqual(got, tt.restart) {
				t.Errorf("Restart = %v, want %v", got, tt.restart)
			}
			if got := replaced(p); !reflect.DeepEqual(got, tt.replace) {
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
}

func TestPlanRecycle_pacedReplacement(t *testing.T) {
	t.Parallel()
	sts := func(names ...string) []StalePod {
		var pods []*corev1.Pod
		for _, n := range names {
			pods = append(pods, ownedPod(n, "StatefulSet", "db"))
		}
		return stale(pods...)
	}
	tests := []struct {
		name      string
		info      WorkloadInfo
		stale     []StalePod
		restart   bool
		paced     []string // in order
		leftAlone []string
	}{
		{
			name: "all stale: restart", info: WorkloadInfo{Replicas: 3, Pods: []string{"db-0", "db-1", "db-2"}},
			stale: sts("db-0", "db-1", "db-2"), restart: true,
		},
		{
			name: "OnDelete: one at a time from the highest ordinal", info: WorkloadInfo{Replicas: 11, OnDelete: true, Pods: []string{"db-0", "db-2", "db-10"}},
			stale: sts("db-2", "db-0", "db-10"), paced: []string{"db-10", "db-2", "db-0"},
		},
		{
			name: "partly stale: only the stale pods, highest first", info: WorkloadInfo{Replicas: 3, Pods: []string{"db-0", "db-1", "db-2"}},
			stale: sts("db-0", "db-2"), paced: []string{"db-2", "db-0"},
		},
		{
			name: "selector shows fewer pods than the workload has", info: WorkloadInfo{Replicas: 4, Pods: []string{"db-0", "db-1"}},
			stale: sts("db-0", "db-1"), paced: []string{"db-1", "db-0"},
		},
		{
			name: "partition: pods below it are left alone, the rest restarted", info: WorkloadInfo{Replicas: 3, Partition: 1, Pods: []string{"db-0", "db-1", "db-2"}},
			stale: sts("db-0", "db-1", "db-2"), restart: true, leftAlone: []string{"db-0"},
		},
		{
			name: "partition with a credentialed pod above it: paced", info: WorkloadInfo{Replicas: 4, Partition: 1, Pods: []string{"db-0", "db-1", "db-2", "db-3"}},
			stale: sts("db-0", "db-1", "db-3"), paced: []string{"db-3", "db-1"}, leftAlone: []string{"db-0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info := tt.info
			owners := Owners{Workloads: map[Workload]*WorkloadInfo{{KindStatefulSet, "db"}: &info}}
			p := PlanRecycle(tt.stale, StrategyRollout, owners)
			if got := len(p.Restart) == 1; got != tt.restart {
				t.Errorf("restart = %v, want %v (plan %+v)", got, tt.restart, p)
			}
			var paced []string
			for _, g := range p.Replace {
				if !g.Paced {
					t.Errorf("replacement of %s is not paced", g.Workload)
				}
				for _, pod := range g.Pods {
					paced = append(paced, pod.Name)
				}
			}
			if !reflect.DeepEqual(paced, tt.paced) {
				t.Errorf("paced = %v, want %v", paced, tt.paced)
			}
			if got := leftAloneNames(p.LeftAlone); !reflect.DeepEqual(got, tt.leftAlone) {
				t.Errorf("LeftAlone = %v, want %v", got, tt.leftAlone)
			}
		})
	}
	t.Run("an OnDelete DaemonSet is paced too", func(t *testing.T) {
		t.Parallel()
		owners := Owners{Workloads: map[Workload]*WorkloadInfo{{KindDaemonSet, "agent"}: {Replicas: 2, OnDelete: true, Pods: []string{"agent-a", "agent-b"}}}}
		p := PlanRecycle(stale(ownedPod("agent-a", "DaemonSet", "agent"), ownedPod("agent-b", "DaemonSet", "agent")), StrategyRollout, owners)
		if len(p.Restart) != 0 || len(p.Replace) != 1 || !p.Replace[0].Paced || len(p.Replace[0].Pods) != 2 {
			t.Errorf("plan = %+v, want both pods paced", p)
		}
	})
}

func TestRecyclePlan_Summary(t *testing.T) {
	t.Parallel()
	got := PlanRecycle(mixedPods(), StrategyRollout, mixedOwners()).Summary()
	for _, want := range []string{
		"restart Deployment/api, as kubectl rollout restart does (stale pods: api-7f9c-a, api-7f9c-b)",
		"restart DaemonSet/agent", "delete pods of ReplicaSet/orphan-rs one at a time",
		"leave pod bare alone: bare pod", "leave pod batch-k alone: pod of Job batch",
		"leave pod frozen-6d-z alone: Deployment frozen is paused",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	evict := PlanRecycle(mixedPods(), StrategyEvict, mixedOwners()).Summary()
	if !strings.Contains(evict, "evict pods of Deployment/api: api-7f9c-a, api-7f9c-b") {
		t.Errorf("evict summary:\n%s", evict)
	}
	del := PlanRecycle(mixedPods(), StrategyDelete, mixedOwners()).Summary()
	if !strings.Contains(del, "delete pods bare, batch-k, custom (bare pods are gone for good") {
		t.Errorf("delete summary:\n%s", del)
	}
}

func TestOrdinal(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]int{"db-0": 0, "db-12": 12, "my-db-3": 3, "db": -1, "db-x": -1} {
		if got := ordinal(name); got != want {
			t.Errorf("ordinal(%q) = %d, want %d", name, got, want)
		}
	}
}
