package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// Recycling that touches only what its plan names, and converges in place.

func (c *testCluster) createStatefulSet(name, sa string, replicas int32, strategy appsv1.StatefulSetUpdateStrategy) {
	c.t.Helper()
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:       ptr.To(replicas),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template:       podTemplate(name, sa),
			UpdateStrategy: strategy,
		},
	}
	if _, err := c.client.AppsV1().StatefulSets(c.ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// deletions records, in order, the pods of the namespace that are deleted,
// each as it was last seen.
func (c *testCluster) deletions() func() []corev1.Pod {
	c.t.Helper()
	w, err := c.client.CoreV1().Pods(c.ns).Watch(c.t.Context(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(w.Stop)
	var mu sync.Mutex
	var order []corev1.Pod
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Deleted {
				mu.Lock()
				order = append(order, *p)
				mu.Unlock()
			}
		}
	}()
	return func() []corev1.Pod {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
}

// checkPacedDeletions asserts that the pods of original were deleted one
// at a time in the order want names, and that any other deletion was a
// replacement the webhook missed (no credentials for role, by the oracle),
// replaced again before the next of want. The engine does that by design;
// on a loaded machine the webhook does time out now and then.
func checkPacedDeletions(deleted []corev1.Pod, original map[string]corev1.Pod, want []string, role string) error {
	originalUIDs := uids(original)
	var order []string
	for _, p := range deleted {
		if originalUIDs[string(p.UID)] {
			order = append(order, p.Name)
			continue
		}
		if len(order) == 0 || order[len(order)-1] != p.Name {
			return fmt.Errorf("pod %s (a replacement) was deleted out of turn: originals deleted so far %v", p.Name, order)
		}
		if ok, _ := credentialedOracle(&p, oracleWant{Role: role}); ok {
			return fmt.Errorf("replacement pod %s was deleted although it carried the credentials", p.Name)
		}
	}
	if !slices.Equal(order, want) {
		return fmt.Errorf("pods deleted in order %v, want %v", order, want)
	}
	return nil
}

// An OnDelete StatefulSet (a database's usual setting) never replaces pods
// after a template change: the binding replaces them one at a time from the
// highest ordinal, each Ready and credentialed before the next.
func TestAccServiceAccountBinding_onDeleteStatefulSet(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createStatefulSet("db", "api", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
	before := c.waitPods("db", 3)
	deleted := c.deletions()
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "api", testRoleA, ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkReplaced("db", before, 3, testRoleA),
				checkStalePods(),
				func(*terraform.State) error {
					return checkPacedDeletions(deleted(), before, []string{"db-2", "db-1", "db-0"}, testRoleA)
				},
			),
		}},
	})
}

// A StatefulSet with some credentialed pods gets only its stale pods
// replaced, one by one; the credentialed ones stay.
func TestAccServiceAccountBinding_partlyStaleStatefulSet(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createStatefulSet("db", "api", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType})
	c.waitPods("db", 3)
	config := bindingConfig(c.ns, "api", testRoleA, "")
	var credentialed map[string]corev1.Pod
	var deleted func() []corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config, Check: checkStalePods()},
			{
				// db-1 and db-2 come back without credentials while the
				// webhook is away.
				PreConfig: func() {
					ctx := context.Background()
					if err := testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", true); err != nil {
						t.Fatal(err)
					}
					for _, name := range []string{"db-1", "db-2"} {
						if err := c.client.CoreV1().Pods(c.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
							t.Fatal(err)
						}
					}
					err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
						pods := c.pods("db")
						fresh := 0
						for _, p := range pods {
							if ok, _ := credentialedOracle(&p, oracleWant{Role: testRoleA}); !ok && isReady(p) {
								fresh++
							}
						}
						return fresh == 2, nil
					})
					if err != nil {
						t.Fatal("db-1 and db-2 did not come back without credentials")
					}
					if err := testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", false); err != nil {
						t.Fatal(err)
					}
					credentialed = c.pods("db")
					deleted = c.deletions()
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkStalePods(),
					func(*terraform.State) error {
						stale := map[string]corev1.Pod{"db-1": credentialed["db-1"], "db-2": credentialed["db-2"]}
						if err := checkPacedDeletions(deleted(), stale, []string{"db-2", "db-1"}, testRoleA); err != nil {
							return err
						}
						now := c.pods("db")
						if now["db-0"].UID != credentialed["db-0"].UID {
							return fmt.Errorf("the credentialed pod db-0 was replaced")
						}
						return c.checkReplaced("db", stale, 3, testRoleA)(nil)
					},
				),
			},
		},
	})
}

// A bare pod that starts during the wait, while the webhook is away, is not
// the binding's to touch: it survives, and stale_pods names it.
func TestAccServiceAccountBinding_barePodCreatedDuringWaitSurvives(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	d := podTemplate("api", "api")
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			// Each new pod must stay Ready 2 s: the rollout takes a while.
			MinReadySeconds: 2,
			Selector:        &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template:        d,
		},
	}
	if _, err := c.client.AppsV1().Deployments(c.ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := c.waitPods("api", 2)

	var bareUID types.UID
	started := make(chan struct{})
	go func() {
		defer close(started)
		ctx := context.Background()
		// Once the rollout has begun, the webhook goes away, a bare pod
		// starts, and the webhook comes back.
		_ = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, false, func(context.Context) (bool, error) {
			d, err := c.client.AppsV1().Deployments(c.ns).Get(ctx, "api", metav1.GetOptions{})
			return err == nil && d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "", nil
		})
		if err := testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", true); err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = testenv.SetWebhookOutage(ctx, c.client, c.ns, "api", false) }()
		tpl := podTemplate("bare", "api")
		p, err := c.client.CoreV1().Pods(c.ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Labels: tpl.Labels}, Spec: tpl.Spec}, metav1.CreateOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		bareUID = p.UID
	}()
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "api", testRoleA, ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				func(*terraform.State) error {
					<-started
					p, err := c.client.CoreV1().Pods(c.ns).Get(context.Background(), "bare", metav1.GetOptions{})
					if err != nil || p.UID != bareUID || p.DeletionTimestamp != nil {
						return fmt.Errorf("the bare pod created during the wait did not survive: %w", err)
					}
					return nil
				},
				c.checkReplaced("api", before, 2, testRoleA),
				checkStalePods("bare"),
			),
		}},
	})
}

// A PodDisruptionBudget blocks the eviction: the create ends with the
// annotation in place and the pods in stale_pods (a warning, so the binding
// is not tainted); the next plan is an in-place update, never a replacement;
// once the budget is gone, apply converges on the same ServiceAccount.
func TestAccServiceAccountBinding_blockedRecycleConvergesInPlace(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	c.createPDB("api-budget", "api", 2)
	sa, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	config := bindingConfig(c.ns, "api", testRoleA, `
  restart = {
    strategy = "evict"
  }
  timeouts = {
    create = "6s"
    update = "2m"
  }`)
	sameServiceAccount := func(*terraform.State) error {
		now, err := c.getSA("api")
		if err != nil {
			return err
		}
		if now.UID != sa.UID {
			return fmt.Errorf("the ServiceAccount was re-created: UID %s, was %s", now.UID, sa.UID)
		}
		return nil
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:             config,
				ExpectNonEmptyPlan: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkUntouched("api", before),
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					checkStalePods(names(before)...),
				),
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				PreConfig: func() {
					if err := c.client.PolicyV1().PodDisruptionBudgets(c.ns).Delete(context.Background(), "api-budget", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before, 2, testRoleA),
					checkStalePods(),
					sameServiceAccount,
				),
			},
		},
	})
}

// With the webhook not registered for the namespace, the readiness gate
// stops apply before any pod is touched, and says so; with it back, apply
// converges.
func TestAccServiceAccountBinding_gateStopsWithoutWebhook(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	rollout := func(role string) string {
		return bindingConfig(c.ns, "api", role, `
  timeouts = {
    update = "2m"
  }`)
	}
	var bound map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: rollout(testRoleA),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before, 2, testRoleA),
					func(*terraform.State) error { bound = c.pods("api"); return nil },
				),
			},
			{
				PreConfig: func() {
					if err := testenv.SetWebhookOutage(context.Background(), c.client, c.ns, "api", true); err != nil {
						t.Fatal(err)
					}
				},
				Config:      rollout(testRoleB),
				ExpectError: regexp.MustCompile(`(?s)Pod Identity Webhook Not Ready.*namespaceSelector\s+leaves\s+out\s+namespace.*selectors\s+leave\s+this\s+namespace.*No\s+pod\s+was\s+restarted`),
			},
			{
				RefreshState:       true,
				ExpectNonEmptyPlan: true,
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkUntouched("api", bound)(s) },
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
					func(s *terraform.State) error { return checkStalePods(names(bound)...)(s) },
				),
			},
			{
				PreConfig: func() {
					if err := testenv.SetWebhookOutage(context.Background(), c.client, c.ns, "api", false); err != nil {
						t.Fatal(err)
					}
				},
				Config: rollout(testRoleB),
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkReplaced("api", bound, 2, testRoleB)(s) },
					checkStalePods(),
				),
			},
		},
	})
}

// A token_expiration change is something the webhook would now inject
// differently: pods are recycled onto the new lifetime.
func TestAccServiceAccountBinding_tokenExpirationChangeRecycles(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	c.waitPods("api", 2)
	var first map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: bindingConfig(c.ns, "api", testRoleA, ""),
				Check:  func(*terraform.State) error { first = c.pods("api"); return nil },
			},
			{
				Config: bindingConfig(c.ns, "api", testRoleA, "  token_expiration = 3600"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue(resourceAddr, tfjsonpath.New("stale_pods")),
				}},
				Check: func(*terraform.State) error {
					now := c.pods("api")
					if len(now) != 2 {
						return fmt.Errorf("%d pods, want 2", len(now))
					}
					for name, p := range now {
						if _, old := first[name]; old {
							return fmt.Errorf("pod %s with the old token lifetime was not recycled", name)
						}
						if ok, reason := credentialedOracle(&p, oracleWant{Role: testRoleA, Expiration: ptr.To[int64](3600)}); !ok {
							return fmt.Errorf("pod %s: %s", name, reason)
						}
					}
					return nil
				},
			},
		},
	})
}
