package recycle

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
)

// Every request the engine makes is one that the Least Privilege guide's
// manifests (examples/least-privilege, which the guide embeds) grant the
// restart strategy's mode. A call added to the engine without a manifest to
// match fails here, in the fast tier; the acceptance tests check the same
// manifests against the real API server's RBAC. The one request beyond them
// is watch, which the engine's wait asks for once per thing it waits for and
// does without when refused (as the guide's roles refuse it here): it then
// reads every round, and never asks again.

// guideRules reads the rules of the guide's manifests.
func guideRules(t *testing.T, files ...string) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "least-privilege", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch o := obj.(type) {
			case *rbacv1.Role:
				rules = append(rules, o.Rules...)
			case *rbacv1.ClusterRole:
				rules = append(rules, o.Rules...)
			}
		}
	}
	return rules
}

// grants reports whether rules allow the request a.
func grants(rules []rbacv1.PolicyRule, a k8stesting.Action) bool {
	res := a.GetResource()
	resource := res.Resource
	if a.GetSubresource() != "" {
		resource += "/" + a.GetSubresource()
	}
	for _, r := range rules {
		if slices.Contains(r.Verbs, a.GetVerb()) && slices.Contains(r.APIGroups, res.Group) && slices.Contains(r.Resources, resource) {
			return true
		}
	}
	return false
}

func TestRecycle_requestsStayWithinTheGuidesRoles(t *testing.T) {
	t.Parallel()
	// The parts of the guide each strategy's apply needs (its table).
	modes := map[Strategy][]string{
		StrategyRollout: {"plan.yaml", "workloads.yaml", "rollout.yaml", "readiness-check.yaml", "webhook-diagnosis.yaml"},
		StrategyEvict:   {"plan.yaml", "workloads.yaml", "evict.yaml", "readiness-check.yaml", "webhook-diagnosis.yaml"},
		StrategyDelete:  {"plan.yaml", "workloads.yaml", "delete.yaml", "readiness-check.yaml", "webhook-diagnosis.yaml"},
		StrategyNone:    {"plan.yaml"},
	}
	scenarios := []struct {
		name  string
		setup func(c *fakeCluster)
		// timeout ends a recycle that never finishes by design.
		timeout time.Duration
	}{
		{name: "every kind of workload", setup: func(c *fakeCluster) {
			c.deployment("api", 2)
			c.statefulSet("db", 2, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
			c.statefulSet("cache", 2, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType})
			c.mustCreate(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: testNS, Generation: 1},
				Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}})
			c.stalePods(KindDaemonSet, "agent", "agent-x")
			c.mustCreate(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "solo", Namespace: testNS}})
			c.stalePods(KindReplicaSet, "solo", "solo-x")
			c.stalePods("", "", "bare")
			c.webhookRole = roleA
		}},
		{name: "the webhook is down", setup: func(c *fakeCluster) {
			c.deployment("api", 1)
			c.registerWebhook(nil)
		}},
		{name: "a budget blocks every eviction", timeout: 2 * time.Second, setup: func(c *fakeCluster) {
			c.deployment("api", 1)
			c.webhookRole = roleA
			c.evictionBlocked = true
		}},
		{name: "replacements come up without credentials", setup: func(c *fakeCluster) {
			c.deployment("api", 2)
			c.webhookRole = roleA
			c.missNext = 2
		}},
	}
	for strategy, files := range modes {
		rules := guideRules(t, files...)
		for _, sc := range scenarios {
			t.Run(string(strategy)+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				c := newFakeCluster(t)
				c.refuseWatch = true // the guide grants no watch
				sc.setup(c)
				c.client.ClearActions()
				ctx := bounded(t)
				if sc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, sc.timeout)
					defer cancel()
				}
				// Errors are the scenarios' point; the requests are the test's.
				_, _ = c.pods().Recycle(ctx, c.options(strategy))
				if len(c.client.Actions()) == 0 {
					t.Fatal("no request recorded: the test tests nothing")
				}
				watches := map[string]int{}
				for _, a := range c.client.Actions() {
					if a.GetVerb() == "watch" && !grants(rules, a) {
						watches[a.GetResource().Resource]++
						continue
					}
					if !grants(rules, a) {
						t.Errorf("%s %s/%s (%s) is not granted by %v", a.GetVerb(), a.GetResource().Resource, a.GetSubresource(), a.GetResource().Group, files)
					}
				}
				for resource, n := range watches {
					// One per recycle for the pods, one per restarted
					// workload: never asked again after the refusal.
					if most := map[string]int{"pods": 1}[resource]; most > 0 && n > most || most == 0 && n > 3 {
						t.Errorf("watch %s asked %d times though refused", resource, n)
					}
				}
			})
		}
	}
}
