package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// migrationConfig is a binding of mechanism with the provider set up for
// both (cluster_name, trust check off: each mechanism's trust check has
// its own tests).
func migrationConfig(ns, sa, role, mechanism string) string {
	return fmt.Sprintf(`
provider "irsa" {
  trust_check  = "off"
  cluster_name = %q
}

resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
  mechanism       = %q
}
`, testenv.ClusterName, ns, sa, role, mechanism)
}

// checkSDKIdentity asserts the SDK's credential chain run as a live pod of
// app answers with a session of role, through the provider the mechanism
// implies: web identity for IRSA, the container credentials endpoint for
// Pod Identity.
func (c *testCluster) checkSDKIdentity(app, role string, podIdentity bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		pods := c.pods(app)
		if len(pods) == 0 {
			return fmt.Errorf("app=%s has no live pod", app)
		}
		for _, p := range pods {
			id, err := testenv.IdentityOf(context.Background(), &p, p.Spec.Containers[0].Name)
			if err != nil {
				return fmt.Errorf("the SDK's credential chain as pod %s: %w", p.Name, err)
			}
			if want := assumedRole(role); !strings.HasPrefix(id.ARN, want) {
				return fmt.Errorf("pod %s is %s, want a session of %s", p.Name, id.ARN, want)
			}
			if web := strings.Contains(id.Source, "WebIdentity"); web == podIdentity {
				return fmt.Errorf("pod %s got its credentials from %s, not from %s", p.Name, id.Source, map[bool]string{true: "the container credentials endpoint", false: "web identity"}[podIdentity])
			}
		}
		return nil
	}
}

// checkIRSAPods asserts app has n live Ready pods, none of before, each
// carrying IRSA credentials of role (the IRSA oracle).
func (c *testCluster) checkIRSAPods(app string, before map[string]corev1.Pod, n int, role string) resource.TestCheckFunc {
	return c.checkReplaced(app, before, n, role)
}

// TestAccMigration_bothWays: one in-place update moves a binding from IRSA
// to EKS Pod Identity (association, gate, recycle, the annotations removed
// last), and another moves it back (annotations, association deleted,
// gate, recycle). After each, every pod is new, Ready, and the SDK's chain
// in it gets the role through the mechanism's own path.
func TestAccMigration_bothWays(t *testing.T) {
	c := newTestCluster(t)
	irsaRole := trustedRole(t, "system:serviceaccount:"+c.ns+":api")
	piRole := podIdentityRole(t, "pi-migrate")
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	first := c.waitPods("api", 2)
	var onIRSA, onPodIdentity map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: migrationConfig(c.ns, "api", irsaRole, "irsa"),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkIRSAPods("api", first, 2, irsaRole),
					c.checkSDKIdentity("api", irsaRole, false),
				),
			},
			{
				PreConfig: func() { onIRSA = c.pods("api") },
				Config:    migrationConfig(c.ns, "api", piRole, "pod_identity"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("mechanism"), knownvalue.StringExact("pod_identity")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_id"), knownvalue.StringRegexp(regexp.MustCompile(`^a-`))),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("stale_pods"), knownvalue.ListExact(nil)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkPodIdentityPods("api", onIRSA, 2, piRole)(s) },
					c.checkSDKIdentity("api", piRole, true),
					c.checkAssociation("api", piRole),
					// Removed last, and only what the binding set.
					c.checkAnnotations("api", map[string]string{}),
				),
			},
			{
				PreConfig: func() { onPodIdentity = c.pods("api") },
				Config:    migrationConfig(c.ns, "api", irsaRole, "irsa"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("mechanism"), knownvalue.StringExact("irsa")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_id"), knownvalue.Null()),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("stale_pods"), knownvalue.ListExact(nil)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkIRSAPods("api", onPodIdentity, 2, irsaRole)(s) },
					c.checkSDKIdentity("api", irsaRole, false),
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: irsaRole}),
					func(*terraform.State) error {
						if a, err := c.association("api"); err != nil || a != nil {
							return fmt.Errorf("the association must be gone after the move back (%v): %w", a, err)
						}
						return nil
					},
				),
			},
		},
	})
}
