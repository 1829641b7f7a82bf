package provider

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// The core flows, each as a user bound to exactly the roles the Least
// Privilege guide gives for its mode, and nothing else.

// checkReleased asserts destroy removed the binding's annotations and left
// the ServiceAccount.
func (c *testCluster) checkReleased(name string) func(*terraform.State) error {
	return func(*terraform.State) error {
		sa, err := c.getSA(name)
		if err != nil {
			return fmt.Errorf("the ServiceAccount must survive destroy: %w", err)
		}
		for _, key := range irsa.BindingAnnotations {
			if v, ok := sa.Annotations[key]; ok {
				return fmt.Errorf("annotation %s=%q left after destroy", key, v)
			}
		}
		return nil
	}
}

// Rollout, with the plan-only identity for drift detection: create,
// import, drift seen by a plan as the plan-only user, apply, role change,
// destroy.
func TestAccLeastPrivilege_rollout(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	c.createDaemonSet("agent", "api")
	// Its controller never replaces pods after a restart: the rollout
	// strategy deletes them, one at a time, with the rollout part's delete.
	c.createStatefulSet("db", "api", 1, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
	before := map[string]map[string]corev1.Pod{"api": c.waitPods("api", 2), "agent": c.waitPods("agent", 1), "db": c.waitPods("db", 1)}

	applier := newRBACUser(t)
	c.grant(applier, loadRBAC(t, rbacPlan, rbacWorkloads, rbacAnnotate, rbacStrategyManifests[recycle.StrategyRollout], rbacReadinessCheck,
		rbacIssuerDiscovery, rbacWebhookDiagnosis))
	planner := newRBACUser(t)
	c.grant(planner, loadRBAC(t, rbacPlan, rbacWorkloads, rbacIssuerDiscovery))

	var afterCreate map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkReleased("api"),
		Steps: []resource.TestStep{
			{
				Config: applier.bindingConfig(c.ns, "api", testRoleA, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					// Read from the discovery document the ClusterRole grants.
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("oidc_issuer"), knownvalue.StringExact(os.Getenv("IRSA_TESTENV_OIDC_ISSUER"))),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					c.checkReplaced("api", before["api"], 2, testRoleA),
					c.checkReplaced("agent", before["agent"], 1, testRoleA),
					c.checkReplaced("db", before["db"], 1, testRoleA),
					checkStalePods(),
					func(*terraform.State) error { afterCreate = c.pods("api"); return nil },
				),
			},
			{
				Config:            applier.bindingConfig(c.ns, "api", testRoleA, ""),
				ResourceName:      resourceAddr,
				ImportState:       true,
				ImportStateId:     c.ns + "/api",
				ImportStateVerify: true,
			},
			{
				// Helm re-creates the ServiceAccount without the annotation;
				// the plan-only identity sees it.
				PreConfig: func() {
					sa, err := c.getSA("api")
					if err != nil {
						t.Fatal(err)
					}
					delete(sa.Annotations, irsa.RoleARNAnnotation)
					if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Update(context.Background(), sa, metav1.UpdateOptions{FieldManager: "helm"}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             planner.bindingConfig(c.ns, "api", testRoleA, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: applier.bindingConfig(c.ns, "api", testRoleA, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
			},
			{
				// Nothing changed since: the plan-only identity plans nothing.
				Config:   planner.bindingConfig(c.ns, "api", testRoleA, ""),
				PlanOnly: true,
			},
			{
				Config: applier.bindingConfig(c.ns, "api", testRoleB, ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
					func(s *terraform.State) error { return c.checkReplaced("api", afterCreate, 2, testRoleB)(s) },
					checkStalePods(),
				),
			},
		},
	})
}

// leastPrivilegeStrategy creates a binding with strategy and changes its
// role, as a user bound to files only, then destroys it.
func leastPrivilegeStrategy(t *testing.T, strategy string, files ...string) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	u := newRBACUser(t)
	c.grant(u, loadRBAC(t, files...))
	restart := `
  restart = {
    strategy = "` + strategy + `"
  }`
	var afterCreate map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkReleased("api"),
		Steps: []resource.TestStep{
			{
				Config: u.bindingConfig(c.ns, "api", testRoleA, restart),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					c.checkReplaced("api", before, 2, testRoleA),
					checkStalePods(),
					func(*terraform.State) error { afterCreate = c.pods("api"); return nil },
				),
			},
			{
				Config: u.bindingConfig(c.ns, "api", testRoleB, restart),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
					func(s *terraform.State) error { return c.checkReplaced("api", afterCreate, 2, testRoleB)(s) },
					checkStalePods(),
				),
			},
		},
	})
}

// rbacStrategyManifests is the guide's manifest of each restart strategy;
// none needs none. TestLeastPrivilege_everyStrategy keeps it complete.
var rbacStrategyManifests = map[recycle.Strategy]string{
	recycle.StrategyRollout: rbacRollout,
	recycle.StrategyEvict:   rbacEvict,
	recycle.StrategyDelete:  rbacDelete,
	recycle.StrategyNone:    "",
}

// TestLeastPrivilege_everyStrategy fails when a strategy of the schema has
// no manifest here, so a new strategy cannot go untested.
func TestLeastPrivilege_everyStrategy(t *testing.T) {
	t.Parallel()
	for _, s := range recycle.Strategies {
		if _, ok := rbacStrategyManifests[s]; !ok {
			t.Errorf("restart strategy %q has no least-privilege manifest in rbacStrategyManifests", s)
		}
	}
	if len(rbacStrategyManifests) != len(recycle.Strategies) {
		t.Errorf("rbacStrategyManifests has %d strategies, the schema %d", len(rbacStrategyManifests), len(recycle.Strategies))
	}
}

// TestAccLeastPrivilege_strategies runs every recycling strategy of the
// schema but rollout (TestAccLeastPrivilege_rollout also splits planner and
// applier) and none (TestAccLeastPrivilege_none needs no workload access).
func TestAccLeastPrivilege_strategies(t *testing.T) {
	for _, s := range recycle.Strategies {
		if s == recycle.StrategyRollout || s == recycle.StrategyNone {
			continue
		}
		t.Run(string(s), func(t *testing.T) {
			manifest, ok := rbacStrategyManifests[s]
			if !ok || manifest == "" {
				t.Fatalf("restart strategy %q has no least-privilege manifest", s)
			}
			leastPrivilegeStrategy(t, string(s), rbacPlan, rbacWorkloads, rbacAnnotate, manifest, rbacReadinessCheck, rbacIssuerDiscovery)
		})
	}
}

// Strategy none needs no workload, pod or cluster-wide permission, and with
// oidc_issuer set in the provider, no issuer discovery either.
func TestAccLeastPrivilege_none(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	u := newRBACUser(t)
	c.grant(u, loadRBAC(t, rbacPlan, rbacAnnotate))
	issuer := os.Getenv("IRSA_TESTENV_OIDC_ISSUER")
	config := func(role string) string {
		return u.providerConfig(fmt.Sprintf("  oidc_issuer = %q", issuer)) + fmt.Sprintf(`
resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = "api"
  role_arn        = %q
  restart = {
    strategy = "none"
  }
}
`, c.ns, role)
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkReleased("api"),
		Steps: []resource.TestStep{
			{
				Config: config(testRoleA),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("oidc_issuer"), knownvalue.StringExact(issuer)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					c.checkUntouched("api", before),
					checkStalePods(names(before)...),
				),
			},
			{
				Config: config(testRoleB),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
					c.checkUntouched("api", before),
				),
			},
		},
	})
}

func TestAccLeastPrivilege_createServiceAccount(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	u := newRBACUser(t)
	c.grant(u, loadRBAC(t, rbacPlan, rbacAnnotate, rbacCreateSA, rbacIssuerDiscovery))
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := c.getSA("made-by-terraform"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("the ServiceAccount the binding created must be deleted on destroy, got %w", err)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: u.bindingConfig(c.ns, "made-by-terraform", testRoleA, "  create_service_account = true"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("service_account_created"), knownvalue.Bool(true)),
			},
			Check: func(*terraform.State) error {
				sa, err := c.getSA("made-by-terraform")
				if err != nil {
					return err
				}
				if sa.Annotations[irsa.RoleARNAnnotation] != testRoleA {
					return fmt.Errorf("annotations = %v", sa.Annotations)
				}
				return nil
			},
		}},
	})
}

// An import takes the annotations over from the tool that set them at the
// first apply (a JSON patch of managedFields): annotate's patch covers it.
func TestAccLeastPrivilege_importThenApply(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.annotate("api", irsa.RoleARNAnnotation, testRoleA)
	u := newRBACUser(t)
	c.grant(u, loadRBAC(t, rbacPlan, rbacAnnotate, rbacIssuerDiscovery))
	none := `
  restart = {
    strategy = "none"
  }`
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkReleased("api"),
		Steps: []resource.TestStep{
			{
				Config:             u.bindingConfig(c.ns, "api", testRoleA, none),
				ResourceName:       resourceAddr,
				ImportState:        true,
				ImportStateId:      c.ns + "/api",
				ImportStatePersist: true,
			},
			{
				Config: u.bindingConfig(c.ns, "api", testRoleB, none),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
					c.checkSoleOwner("api", irsa.RoleARNAnnotation),
				),
			},
		},
	})
}
