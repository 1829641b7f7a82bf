package provider

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

// One binding per ServiceAccount: a second one with other annotations fails
// and changes nothing; one with the same annotations shares it, and the last
// to go removes them.

// checkHolders counts, from managedFields as the API server wrote them,
// the bindings' own field managers (DefaultFieldManager/ID) that own the
// role annotation, and fails on the annotation earlier releases named
// holders with: nothing of the ownership may show among the annotations.
func (c *testCluster) checkHolders(name string, n int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		sa, err := c.getSA(name)
		if err != nil {
			return err
		}
		var holders []string
		for _, m := range managersOf(sa, "eks.amazonaws.com/role-arn") {
			if isBindingManager(m) {
				holders = append(holders, m)
			}
		}
		if len(holders) != n {
			return fmt.Errorf("field managers holding the role %v, want %d", holders, n)
		}
		for k := range sa.Annotations {
			if strings.HasPrefix(k, "irsa-dev/") {
				return fmt.Errorf("annotation %s: a binding writes only eks.amazonaws.com/ annotations", k)
			}
		}
		return nil
	}
}

func TestAccServiceAccountBinding_secondBindingInTheSameConfigurationFails(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	config := fmt.Sprintf(`
provider "irsa" {
  trust_check = "off"
}

resource "irsa_service_account_binding" "a" {
  namespace       = %[1]q
  service_account = "api"
  role_arn        = %[2]q
}

resource "irsa_service_account_binding" "b" {
  namespace       = %[1]q
  service_account = "api"
  role_arn        = %[3]q
}
`, c.ns, testRoleA, testRoleB)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkAnnotations("api", map[string]string{}),
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)Service Account Already Bound.*eks.amazonaws.com/role-arn is "arn:aws:iam::123456789012:role/.*state rm`),
		}},
	})
}

// A create_before_destroy replacement: the new instance shares the
// ServiceAccount with the old one, whose destroy leaves it the annotations.
func TestAccServiceAccountBinding_createBeforeDestroyKeepsTheAnnotation(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	config := bindingConfig(c.ns, "api", testRoleA, `
  lifecycle {
    create_before_destroy = true
  }`)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkAnnotations("api", map[string]string{}),
		Steps: []resource.TestStep{
			{Config: config, Check: c.checkHolders("api", 1)},
			{
				Config: config,
				Taint:  []string{resourceAddr},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					c.checkHolders("api", 1),
				),
			},
		},
	})
}

// The same with a ServiceAccount the binding created: the old instance's
// destroy must not delete it from under the new one. (It is left in place
// after the last destroy: no binding created it any more.)
func TestAccServiceAccountBinding_createBeforeDestroyKeepsACreatedServiceAccount(t *testing.T) {
	c := newTestCluster(t)
	config := bindingConfig(c.ns, "api", testRoleA, `
  create_service_account = true
  lifecycle {
    create_before_destroy = true
  }`)
	var created string
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					sa, err := c.getSA("api")
					if err != nil {
						return err
					}
					created = string(sa.UID)
					return nil
				},
			},
			{
				Config: config,
				Taint:  []string{resourceAddr},
				Check: func(*terraform.State) error {
					sa, err := c.getSA("api")
					if err != nil {
						return fmt.Errorf("the replacement's ServiceAccount was deleted: %w", err)
					}
					if string(sa.UID) != created || sa.Annotations[irsa.RoleARNAnnotation] != testRoleA {
						return fmt.Errorf("ServiceAccount %s with annotations %v, want %s annotated", sa.UID, sa.Annotations, created)
					}
					return nil
				},
			},
		},
	})
}

// Two configurations (two states): the second with another role fails and
// changes nothing; with the same role it shares the ServiceAccount, and
// destroying it leaves the first one's annotation.
func TestAccServiceAccountBinding_twoStates(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	first := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, ""))
	t.Cleanup(func() { first.run("destroy", "-auto-approve", "-input=false", "-no-color") })
	if code, out := first.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("first apply exited %d:\n%s", code, out)
	}

	other := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleB, ""))
	code, out := other.run("apply", "-auto-approve", "-input=false", "-no-color")
	if code == 0 || !strings.Contains(out, "Service Account Already Bound") {
		t.Fatalf("a second binding with another role: exit %d, want the conflict:\n%s", code, out)
	}
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA})(nil); err != nil {
		t.Fatal(err)
	}

	same := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, ""))
	if code, out := same.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("a second binding with the same role exited %d:\n%s", code, out)
	}
	if err := c.checkHolders("api", 2)(nil); err != nil {
		t.Fatal(err)
	}
	if code, out := same.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy of the second binding exited %d:\n%s", code, out)
	}
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA})(nil); err != nil {
		t.Fatalf("destroying the second binding stripped the first one's: %v", err)
	}
	if code, out := first.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Errorf("the first configuration's plan exited %d, want 0:\n%s", code, out)
	}
	if code, out := first.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy of the first binding exited %d:\n%s", code, out)
	}
	if err := c.checkAnnotations("api", map[string]string{})(nil); err != nil {
		t.Errorf("the last binding's destroy left: %v", err)
	}
}

// managersOf reads, from managedFields as the API server wrote them, the
// field managers that own annotation key.
func managersOf(sa *corev1.ServiceAccount, key string) []string {
	var managers []string
	for _, mf := range sa.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Metadata struct {
				Annotations map[string]any `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		if _, ok := fields.Metadata.Annotations["f:"+key]; ok {
			managers = append(managers, mf.Manager)
		}
	}
	return managers
}

// isBindingManager tells a binding's own field manager: the provider's, a
// slash, and the binding's ID (16 hex digits).
func isBindingManager(m string) bool {
	id, ok := strings.CutPrefix(m, DefaultFieldManager+"/")
	return ok && regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id)
}

// makeLegacy rewrites the ServiceAccount into what earlier releases left:
// the role applied by the shared field manager, with the binding's ID in
// irsa-dev/binding-id, and nothing owned by the binding's own manager.
func (c *testCluster) makeLegacy(name string) {
	c.t.Helper()
	sa, err := c.getSA(name)
	if err != nil {
		c.t.Fatal(err)
	}
	var own string
	for _, m := range managersOf(sa, irsa.RoleARNAnnotation) {
		if isBindingManager(m) {
			own = m
		}
	}
	if own == "" {
		c.t.Fatalf("no binding manager owns the role: %v", managersOf(sa, irsa.RoleARNAnnotation))
	}
	id := strings.TrimPrefix(own, DefaultFieldManager+"/")
	apply := func(manager string, annotations map[string]string) {
		ac := corev1ac.ServiceAccount(name, c.ns)
		if annotations != nil {
			ac.WithAnnotations(annotations)
		}
		if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Apply(c.t.Context(), ac, metav1.ApplyOptions{FieldManager: manager}); err != nil {
			c.t.Fatalf("apply as %s: %v", manager, err)
		}
	}
	apply(DefaultFieldManager, map[string]string{irsa.RoleARNAnnotation: sa.Annotations[irsa.RoleARNAnnotation], "irsa-dev/binding-id": id})
	apply(own, nil)
	sa, err = c.getSA(name)
	if err != nil {
		c.t.Fatal(err)
	}
	if got := managersOf(sa, irsa.RoleARNAnnotation); !slices.Equal(got, []string{DefaultFieldManager}) || sa.Annotations["irsa-dev/binding-id"] != id {
		c.t.Fatalf("not in the legacy shape: role owned by %v, annotations %v", got, sa.Annotations)
	}
}

// A binding that holds its ServiceAccount the way earlier releases did moves
// onto its own field manager on its next apply, which the plan asks for on
// its own: the old annotation goes, no value changes, no pod is touched,
// and the plan after it is empty.
func TestAccServiceAccountBinding_legacyHolderMovesOnItsNextApply(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	config := bindingConfig(c.ns, "api", testRoleA, "")
	var before map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkAnnotations("api", map[string]string{}),
		Steps: []resource.TestStep{
			{Config: config, Check: c.checkHolders("api", 1)},
			{
				PreConfig: func() {
					before = c.waitPods("api", 2)
					c.makeLegacy("api")
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkHolders("api", 1),
					c.checkSoleOwner("api", irsa.RoleARNAnnotation),
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
					func(s *terraform.State) error { return c.checkUntouched("api", before)(s) },
				),
			},
			{Config: config, PlanOnly: true},
		},
	})
}
