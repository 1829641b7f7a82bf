package provider

import (
	"context"
	"fmt"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// restartCluster is the namespace of the recycling tests: a Deployment of 3
// and a DaemonSet using ServiceAccount api, a bare pod and a Job pod using
// it, and a Deployment using another ServiceAccount.
func restartCluster(t *testing.T) (*testCluster, map[string]map[string]corev1.Pod) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createSA("other")
	c.createDeployment("api", "api", 3)
	c.createDaemonSet("agent", "api")
	c.createBarePod("bare", "api")
	c.createPendingJob("batch", "api")
	c.createDeployment("other", "other", 2)
	before := map[string]map[string]corev1.Pod{
		"api":   c.waitPods("api", 3),
		"agent": c.waitPods("agent", 1),
		"bare":  c.waitPods("bare", 1),
		"other": c.waitPods("other", 2),
	}
	before["batch"] = c.pods("batch")
	if len(before["batch"]) != 1 {
		t.Fatalf("want 1 pending Job pod, have %d", len(before["batch"]))
	}
	return c, before
}

func restartConfig(ns, role, strategy string) string {
	return bindingConfig(ns, "api", role, `
  restart = {
    strategy = "`+strategy+`"
  }`)
}

func TestAccServiceAccountBinding_restartRollout(t *testing.T) {
	c, before := restartCluster(t)
	jobPod := onlyPod(before["batch"])
	var afterFirst map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: restartConfig(c.ns, testRoleA, "rollout"),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before["api"], 3, testRoleA),
					c.checkReplaced("agent", before["agent"], 1, testRoleA),
					c.checkUntouched("bare", before["bare"]),
					c.checkUntouched("batch", before["batch"]),
					c.checkUntouched("other", before["other"]),
					// Left alone, so still stale, and listed.
					checkStalePods("bare", jobPod),
					func(*terraform.State) error { afterFirst = c.pods("api"); return nil },
				),
			},
			{
				// Pods left alone are reported, not a perpetual diff.
				Config: restartConfig(c.ns, testRoleA, "rollout"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// A role change recycles again.
				Config: restartConfig(c.ns, testRoleB, "rollout"),
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkReplaced("api", afterFirst, 3, testRoleB)(s) },
					c.checkUntouched("other", before["other"]),
				),
			},
		},
	})
}

func TestAccServiceAccountBinding_restartEvict(t *testing.T) {
	c, before := restartCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: restartConfig(c.ns, testRoleA, "evict"),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkReplaced("api", before["api"], 3, testRoleA),
				c.checkReplaced("agent", before["agent"], 1, testRoleA),
				c.checkUntouched("bare", before["bare"]),
				c.checkUntouched("other", before["other"]),
				checkStalePods("bare"),
			),
		}},
	})
}

func TestAccServiceAccountBinding_restartDelete(t *testing.T) {
	c, before := restartCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: restartConfig(c.ns, testRoleA, "delete"),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkReplaced("api", before["api"], 3, testRoleA),
				c.checkReplaced("agent", before["agent"], 1, testRoleA),
				// The Job re-creates its pod after its backoff delay.
				c.checkGone("batch", before["batch"]),
				// Destructive for bare pods, as documented: gone for good.
				c.checkReplaced("bare", before["bare"], 0, testRoleA),
				c.checkUntouched("other", before["other"]),
				checkStalePods(),
			),
		}},
	})
}

func TestAccServiceAccountBinding_restartNone(t *testing.T) {
	c, before := restartCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: restartConfig(c.ns, testRoleA, "none"),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkUntouched("api", before["api"]),
					c.checkUntouched("agent", before["agent"]),
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					checkStalePods(append(names(before["api"]), onlyPod(before["agent"]), "bare", onlyPod(before["batch"]))...),
				),
			},
			{
				Config: restartConfig(c.ns, testRoleA, "none"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// Pods created while the webhook is away come up without credentials: the
// next plan shows them, apply recycles exactly those, the plan after is empty.
func TestAccServiceAccountBinding_podDrift(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	c.waitPods("api", 2)
	var credentialed, drifted map[string]corev1.Pod
	config := bindingConfig(c.ns, "api", testRoleA, "")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					credentialed = c.pods("api")
					return nil
				},
			},
			{
				PreConfig: func() {
					ctx := context.Background()
					if err := testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", true); err != nil {
						t.Fatal(err)
					}
					scale, err := c.client.AppsV1().Deployments(c.ns).GetScale(ctx, "api", metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					scale.Spec.Replicas = 4
					if _, err := c.client.AppsV1().Deployments(c.ns).UpdateScale(ctx, "api", scale, metav1.UpdateOptions{}); err != nil {
						t.Fatal(err)
					}
					all := c.waitPods("api", 4)
					drifted = map[string]corev1.Pod{}
					for name, p := range all {
						if _, old := credentialed[name]; !old {
							drifted[name] = p
						}
					}
					if err := testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", false); err != nil {
						t.Fatal(err)
					}
				},
				RefreshState:       true,
				ExpectNonEmptyPlan: true,
				Check: func(s *terraform.State) error {
					return checkStalePods(names(drifted)...)(s)
				},
			},
			{
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error {
						// Exactly the drifted pods were replaced.
						now := c.pods("api")
						for name := range credentialed {
							if _, ok := now[name]; !ok {
								t.Errorf("credentialed pod %s was replaced", name)
							}
						}
						for name := range drifted {
							if _, ok := now[name]; ok {
								t.Errorf("drifted pod %s was not replaced", name)
							}
						}
						return nil
					},
					checkStalePods(),
				),
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

// The webhook's cache lags the annotation. The readiness gate waits until a
// dry-run pod shows the new role, so no replacement comes up without
// credentials (the fast tier covers what the gate cannot see).
func TestAccServiceAccountBinding_webhookRace(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 3)
	before := c.waitPods("api", 3)
	ctx := t.Context()
	if err := testenv.SetWebhookCacheDelay(ctx, c.ns, 2*time.Second); err != nil {
		t.Skip(err) // upstream webhook: no knob
	}
	t.Cleanup(func() { _ = testenv.SetWebhookCacheDelay(context.Background(), c.ns, 0) })

	// Count pods admitted without credentials after the annotation: the
	// race the gate is there to prevent.
	var uncredentialed atomic.Int32
	var annotated atomic.Bool
	w, err := c.client.CoreV1().Pods(c.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ok && ev.Type == watch.Added && annotated.Load() {
				if good, _ := credentialedOracle(p, oracleWant{Role: testRoleA}); !good {
					uncredentialed.Add(1)
				}
			}
		}
	}()

	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() { annotated.Store(true) },
			Config:    bindingConfig(c.ns, "api", testRoleA, ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkReplaced("api", before, 3, testRoleA),
				checkStalePods(),
				func(*terraform.State) error {
					if n := uncredentialed.Load(); n != 0 {
						t.Errorf("%d pods came up without credentials: the gate let the race through", n)
					}
					return nil
				},
			),
		}},
	})
}

// Importing a binding adopts the annotation kubectl set: changing the role
// needs no force_conflicts, takes the annotation from kubectl, and recycles
// the pods.
func TestAccServiceAccountBinding_importThenRoleChangeRecycles(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.annotate("api", irsa.RoleARNAnnotation, testRoleA)
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	for _, p := range before {
		if ok, reason := credentialedOracle(&p, oracleWant{Role: testRoleA}); !ok {
			t.Fatalf("pod %s created after the annotation is not credentialed: %s", p.Name, reason)
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:             bindingConfig(c.ns, "api", testRoleA, ""),
				ResourceName:       resourceAddr,
				ImportState:        true,
				ImportStateId:      c.ns + "/api",
				ImportStatePersist: true,
			},
			{
				Config: bindingConfig(c.ns, "api", testRoleB, ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before, 2, testRoleB),
					c.checkSoleOwner("api", irsa.RoleARNAnnotation),
				),
			},
		},
	})
}

func names(pods map[string]corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for n := range pods {
		out = append(out, n)
	}
	return out
}

// pod_selector narrows what the binding looks at and recycles.
func TestAccServiceAccountBinding_restartPodSelector(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	c.createDeployment("cron", "api", 1)
	before := map[string]map[string]corev1.Pod{"api": c.waitPods("api", 2), "cron": c.waitPods("cron", 1)}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "api", testRoleA, `
  restart = {
    pod_selector = "app=api"
  }`),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkReplaced("api", before["api"], 2, testRoleA),
				c.checkUntouched("cron", before["cron"]),
				// Outside the selector: not the binding's concern.
				checkStalePods(),
			),
		}},
	})
}

// on_destroy recycles the pods after the annotation is gone, so none keeps
// the role.
func TestAccServiceAccountBinding_restartOnDestroy(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	c.waitPods("api", 2)
	var bound map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			now := c.pods("api")
			if len(now) != 2 {
				return fmt.Errorf("%d pods after destroy, want 2", len(now))
			}
			for name, p := range now {
				if _, old := bound[name]; old {
					return fmt.Errorf("pod %s with the role was not recycled on destroy", name)
				}
				if ok, reason := uncredentialedOracle(&p); !ok {
					return fmt.Errorf("pod %s after destroy: %s", name, reason)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "api", testRoleA, `
  restart = {
    on_destroy = true
  }`),
			Check: func(*terraform.State) error {
				bound = c.pods("api")
				return nil
			},
		}},
	})
}

// wait = false returns once the restart is requested.
func TestAccServiceAccountBinding_restartWithoutWait(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "api", testRoleA, `
  restart = {
    wait = false
  }`),
			Check: func(*terraform.State) error {
				// The rollout was requested; kwok then completes it.
				d, err := c.client.AppsV1().Deployments(c.ns).Get(context.Background(), "api", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
					return fmt.Errorf("no restart was requested")
				}
				var last error
				err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
					last = c.checkReplaced("api", before, 2, testRoleA)(nil)
					return last == nil, nil
				})
				if err != nil {
					return fmt.Errorf("the rollout did not complete: %w", last)
				}
				return nil
			},
		}},
	})
}

// A rollout that cannot finish (its pods can never be scheduled) ends at the
// timeout with an error naming the workload and why.
func TestAccServiceAccountBinding_rolloutTimeoutNamesTheWorkload(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	d := podTemplate("stuck", "api")
	d.Spec.NodeSelector = map[string]string{"no-such-node": "true"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "stuck"}},
			Template: d,
		},
	}
	if _, err := c.client.AppsV1().Deployments(c.ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return len(c.pods("stuck")) == 1, nil
	})
	if err != nil {
		t.Fatal("the Deployment's pod was never created")
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: bindingConfig(c.ns, "api", testRoleA, `
  restart = {
    strategy = "none"
  }`),
			},
			{
				// An update reports it as an error (a create, as a warning).
				Config: bindingConfig(c.ns, "api", testRoleA, `
  timeouts = {
    update = "6s"
  }`),
				ExpectError: regexp.MustCompile(`(?s)Not Done Before the Timeout.*Deployment/stuck`),
			},
		},
	})
}

// A custom audience reaches the pods' token volume, and pods with the old
// audience are recycled when it changes.
func TestAccServiceAccountBinding_audienceChangeRecycles(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	var first map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: bindingConfig(c.ns, "api", testRoleA, ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before, 2, testRoleA),
					func(*terraform.State) error { first = c.pods("api"); return nil },
				),
			},
			{
				Config: bindingConfig(c.ns, "api", testRoleA, `  audience = "custom.example.com"`),
				Check: func(*terraform.State) error {
					now := c.pods("api")
					for name, p := range now {
						if _, old := first[name]; old {
							return fmt.Errorf("pod %s with the old audience was not recycled", name)
						}
						if ok, reason := credentialedOracle(&p, oracleWant{Role: testRoleA, Audience: "custom.example.com"}); !ok {
							return fmt.Errorf("pod %s: %s", name, reason)
						}
					}
					return nil
				},
			},
		},
	})
}
