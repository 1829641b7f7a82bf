package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

// One binding per ServiceAccount: a second one with other annotations fails
// and changes nothing; one with the same annotations shares it, and the last
// to go removes them.

func (c *testCluster) checkHolders(name string, n int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		sa, err := c.getSA(name)
		if err != nil {
			return err
		}
		if got := irsa.Holders(sa); len(got) != n {
			return fmt.Errorf("holders %v, want %d", got, n)
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
	cliAcceptance(t)
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
