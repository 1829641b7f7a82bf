package recycle

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube/kubetest"
)

// The plans a shared snapshot informs are made from trimmed pods
// (kube.TrimPod). Over the worlds of the engine's tests (every workload
// kind, bare and Job pods, credentialed and stale pods, another
// mechanism's, a rollout under way, a partition) and the planner's own
// fixtures, under every strategy, the plan and the stale pods' verdicts from
// trimmed pods are those from whole pods, as written and fattened with what
// real pods carry besides.

// trimWorlds set up a fake cluster the way the engine's tests do.
var trimWorlds = map[string]func(c *fakeCluster){
	"every kind of workload": func(c *fakeCluster) {
		c.deployment("api", 2)
		c.statefulSet("db", 2, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
		c.statefulSet("cache", 2, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType})
		c.mustCreate(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: testNS, Generation: 1},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}})
		c.stalePods(KindDaemonSet, "agent", "agent-x")
		c.mustCreate(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "solo", Namespace: testNS}})
		c.stalePods(KindReplicaSet, "solo", "solo-x")
		c.stalePods("", "", "bare")
		c.stalePods(KindJob, "batch", "batch-x")
	},
	"some pods credentialed": func(c *fakeCluster) {
		c.deployment("api", 3)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.webhookRole = roleA
		if err := c.addPod("api-1-z", KindReplicaSet, "api-1"); err != nil {
			c.t.Fatal(err)
		}
		c.webhookRole = roleB
		if err := c.addPod("api-1-y", KindReplicaSet, "api-1"); err != nil {
			c.t.Fatal(err)
		}
		c.webhookOther = true
		if err := c.addPod("api-1-o", KindReplicaSet, "api-1"); err != nil {
			c.t.Fatal(err)
		}
	},
	"rollout under way": func(c *fakeCluster) {
		c.deployment("api", 2, func(d *appsv1.Deployment) {
			d.Status.UpdatedReplicas = 1
			d.Annotations = map[string]string{revisionAnnotation: "2"}
		})
		obj, err := c.client.Tracker().Get(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, testNS, "api-1")
		if err != nil {
			c.t.Fatal(err)
		}
		rs, ok := obj.(*appsv1.ReplicaSet)
		if !ok {
			c.t.Fatalf("tracker returned %T", obj)
		}
		rs.Annotations = map[string]string{revisionAnnotation: "1"}
		if err := c.client.Tracker().Update(rsGVR, rs, testNS); err != nil {
			c.t.Fatal(err)
		}
	},
	"partitioned StatefulSet": func(c *fakeCluster) {
		c.statefulSet("db", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](1)}})
	},
	"paused Deployment": func(c *fakeCluster) {
		c.deployment("frozen", 1, func(d *appsv1.Deployment) { d.Spec.Paused = true })
	},
}

// describePlan writes out everything a plan says, pods by name.
func describePlan(p RecyclePlan) string {
	var b strings.Builder
	for _, r := range p.Restart {
		fmt.Fprintf(&b, "restart %s %v in progress %v\n", r.Workload, r.Pods, r.InProgress)
	}
	for _, g := range p.Replace {
		fmt.Fprintf(&b, "replace %s paced %v:", g.Workload, g.Paced)
		for _, pod := range g.Pods {
			b.WriteString(" " + pod.Name)
		}
		b.WriteString("\n")
	}
	for _, l := range p.LeftAlone {
		fmt.Fprintf(&b, "leave %s: %s\n", l.Pod, l.Reason)
	}
	return b.String()
}

func describeStale(stale []StalePod) string {
	var b strings.Builder
	for _, s := range stale {
		fmt.Fprintf(&b, "%s: %s (recyclable %v)\n", s.Pod.Name, s.Reason, s.Recyclable)
	}
	return b.String()
}

func TestPlan_trimmedPodsPlanAlike(t *testing.T) {
	t.Parallel()
	creds := roleCredentials{role: roleA}
	for world, setup := range trimWorlds {
		for _, strategy := range Strategies {
			t.Run(world+"/"+string(strategy), func(t *testing.T) {
				t.Parallel()
				c := newFakeCluster(t)
				setup(c)
				whole := c.livePods()
				if len(whole) == 0 {
					t.Fatal("no pods: the comparison compares nothing")
				}
				for variant, fat := range map[string]bool{"as written": false, "fattened": true} {
					var pods, trimmed []corev1.Pod
					for _, p := range whole {
						if fat {
							p = kubetest.Fatten(p)
						}
						pods = append(pods, *p)
						trimmed = append(trimmed, kube.TrimPod(p))
					}
					plan := func(pods []corev1.Pod) RecyclePlan {
						o := c.options(strategy)
						o.ListPods = func(context.Context) ([]corev1.Pod, error) { return pods, nil }
						p, err := c.pods().Plan(t.Context(), o)
						if err != nil {
							t.Fatal(err)
						}
						return p
					}
					wholePlan, trimmedPlan := plan(pods), plan(trimmed)
					if got, want := describePlan(trimmedPlan), describePlan(wholePlan); got != want {
						t.Errorf("%s: plan from trimmed pods:\n%s\nfrom whole pods:\n%s", variant, got, want)
					}
					if wholePlan.Empty() && len(wholePlan.LeftAlone) == 0 {
						t.Errorf("%s: an empty plan: the comparison compares nothing", variant)
					}
					if got, want := describeStale(Stale(trimmed, creds)), describeStale(Stale(pods, creds)); got != want {
						t.Errorf("%s: stale from trimmed pods:\n%s\nfrom whole pods:\n%s", variant, got, want)
					}
				}
			})
		}
	}
}

// The planner's own fixtures (plan_test.go), trimmed.
func TestPlanRecycle_trimmedFixturesPlanAlike(t *testing.T) {
	t.Parallel()
	trim := func(stale []StalePod, fat bool) []StalePod {
		out := make([]StalePod, len(stale))
		for i, s := range stale {
			p := s.Pod
			if fat {
				p = kubetest.Fatten(p)
			}
			trimmed := kube.TrimPod(p)
			out[i] = StalePod{Pod: &trimmed, Reason: s.Reason, Recyclable: s.Recyclable}
		}
		return out
	}
	for _, strategy := range Strategies {
		for _, fat := range []bool{false, true} {
			want := describePlan(PlanRecycle(mixedPods(), strategy, mixedOwners()))
			if got := describePlan(PlanRecycle(trim(mixedPods(), fat), strategy, mixedOwners())); got != want {
				t.Errorf("%s (fattened %v): plan from trimmed pods:\n%s\nfrom whole pods:\n%s", strategy, fat, got, want)
			}
		}
	}
}
