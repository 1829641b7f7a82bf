package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

const resourceAddr = "irsa_service_account_binding.test"

// checkAnnotations asserts the ServiceAccount's binding annotations are
// exactly want (absent keys must be absent), that the unrelated annotation
// and label survived, and that a binding's own field manager owns what it set.
func (c *testCluster) checkAnnotations(name string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		sa, err := c.getSA(name)
		if err != nil {
			return err
		}
		for _, key := range irsa.BindingAnnotations {
			got, ok := sa.Annotations[key]
			w, wantOK := want[key]
			if ok != wantOK || got != w {
				return fmt.Errorf("annotation %s = %q (present %v), want %q (present %v)", key, got, ok, w, wantOK)
			}
		}
		if sa.Annotations["team"] != "payments" || sa.Labels["app.kubernetes.io/name"] != name {
			return fmt.Errorf("unrelated metadata changed: annotations %v labels %v", sa.Annotations, sa.Labels)
		}
		for key := range want {
			if owners := managersOf(sa, key); !slices.ContainsFunc(owners, isBindingManager) {
				return fmt.Errorf("%s is not owned by a binding's field manager %s/ID (owners %v)", key, DefaultFieldManager, owners)
			}
		}
		return nil
	}
}

func TestAccServiceAccountBinding_lifecycle(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	optional := `
  audience               = "sts.amazonaws.com"
  sts_regional_endpoints = true
  token_expiration       = 3600
`
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			sa, err := c.getSA("api")
			if err != nil {
				return fmt.Errorf("the ServiceAccount must survive destroy: %w", err)
			}
			for _, key := range irsa.BindingAnnotations {
				if v, ok := sa.Annotations[key]; ok {
					return fmt.Errorf("annotation %s=%q left after destroy", key, v)
				}
			}
			if sa.Annotations["team"] != "payments" || sa.Labels["app.kubernetes.io/name"] != "api" {
				return fmt.Errorf("unrelated metadata changed by destroy: %v %v", sa.Annotations, sa.Labels)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: bindingConfig(c.ns, "api", testRoleA, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("id"), knownvalue.StringExact(c.ns+"/api")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("role_arn"), knownvalue.StringExact(testRoleA)),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("service_account_created"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("audience"), knownvalue.Null()),
				},
				Check: c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
			},
			{
				ResourceName:      resourceAddr,
				ImportState:       true,
				ImportStateId:     c.ns + "/api",
				ImportStateVerify: true,
			},
			{
				// The role changes in place.
				Config: bindingConfig(c.ns, "api", testRoleB, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
			},
			{
				// Someone runs kubectl annotate --overwrite: the next plan shows it.
				PreConfig:          func() { c.annotate("api", irsa.RoleARNAnnotation, testRoleC) },
				Config:             bindingConfig(c.ns, "api", testRoleB, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// kubectl now owns the annotation with another value: the
				// plan fails naming it, and nothing changes.
				Config:      bindingConfig(c.ns, "api", testRoleB, ""),
				ExpectError: regexp.MustCompile(`(?s)Owned by Another Manager.*kubectl-annotate.*force_conflicts\s+=\s+true`),
			},
			{
				PreConfig: func() {
					sa, err := c.getSA("api")
					if err != nil || sa.Annotations[irsa.RoleARNAnnotation] != testRoleC {
						t.Fatalf("a failed conflict changed the annotation: %v %v", sa.Annotations, err)
					}
				},
				Config: bindingConfig(c.ns, "api", testRoleB, "  force_conflicts = true"),
				Check:  c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
			},
			{
				Config: bindingConfig(c.ns, "api", testRoleB, optional),
				Check: c.checkAnnotations("api", map[string]string{
					irsa.RoleARNAnnotation:              testRoleB,
					irsa.AudienceAnnotation:             "sts.amazonaws.com",
					irsa.STSRegionalEndpointsAnnotation: "true",
					irsa.TokenExpirationAnnotation:      "3600",
				}),
			},
			{
				// Someone removes an optional annotation: drift.
				PreConfig: func() {
					sa, _ := c.getSA("api")
					delete(sa.Annotations, irsa.TokenExpirationAnnotation)
					if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Update(context.Background(), sa, metav1.UpdateOptions{FieldManager: "kubectl-annotate"}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             bindingConfig(c.ns, "api", testRoleB, optional),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// Apply restores it; removing the optional settings from the
				// configuration then removes their annotations.
				Config: bindingConfig(c.ns, "api", testRoleB, optional),
			},
			{
				Config: bindingConfig(c.ns, "api", testRoleB, ""),
				Check:  c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB}),
			},
			{
				// An unrelated annotation changing is not drift.
				PreConfig: func() { c.annotate("api", "team", "payments") },
				Config:    bindingConfig(c.ns, "api", testRoleB, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

func TestAccServiceAccountBinding_importBlock(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("worker")
	c.annotate("worker", irsa.RoleARNAnnotation, testRoleA)
	c.annotate("worker", irsa.TokenExpirationAnnotation, "7200")
	config := bindingConfig(c.ns, "worker", testRoleA, "  token_expiration = 7200")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Importing an annotation set by kubectl, with a matching
				// configuration, plans nothing.
				Config:          config,
				ResourceName:    resourceAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   c.ns + "/worker",
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionNoop),
				}},
			},
			{
				ResourceName:  resourceAddr,
				Config:        config,
				ImportState:   true,
				ImportStateId: "not-a-valid-id",
				ExpectError:   regexp.MustCompile(`Invalid Import ID`),
			},
		},
	})
}

func TestAccServiceAccountBinding_importWithoutRole(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("plain")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:        bindingConfig(c.ns, "plain", testRoleA, ""),
			ResourceName:  resourceAddr,
			ImportState:   true,
			ImportStateId: c.ns + "/plain",
			ExpectError:   regexp.MustCompile(`Nothing to Import`),
		}},
	})
}

func TestAccServiceAccountBinding_createServiceAccount(t *testing.T) {
	c := newTestCluster(t)
	config := bindingConfig(c.ns, "made-by-terraform", testRoleA, "  create_service_account = true")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := c.getSA("made-by-terraform"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("the ServiceAccount the binding created must be deleted on destroy, got %w", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: config,
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
			},
			{
				// Deleted out of band: removed from state, the plan creates it again.
				PreConfig: func() {
					if err := c.client.CoreV1().ServiceAccounts(c.ns).Delete(context.Background(), "made-by-terraform", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionCreate),
				}},
			},
		},
	})
}

func TestAccServiceAccountBinding_existingServiceAccountIsNeverDeleted(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("preexisting")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			_, err := c.getSA("preexisting")
			return err
		},
		Steps: []resource.TestStep{{
			Config: bindingConfig(c.ns, "preexisting", testRoleA, "  create_service_account = true"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("service_account_created"), knownvalue.Bool(false)),
			},
		}},
	})
}

// A ServiceAccount still missing at apply (plan only warns: it may be
// created earlier in the same apply) fails the apply and creates nothing.
func TestAccServiceAccountBinding_missingServiceAccountFailsApply(t *testing.T) {
	c := newTestCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := c.getSA("ghost"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("ServiceAccount ghost: %w, want none", err)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config:      bindingConfig(c.ns, "ghost", testRoleA, ""),
			ExpectError: regexp.MustCompile(`(?s)Service Account Not Found.*` + c.ns + `/ghost.*create_service_account\s+=\s+true`),
		}},
	})
}

func TestAccServiceAccountBinding_rbacDenied(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createSA("nobody")
	tok, err := c.client.CoreV1().ServiceAccounts(c.ns).CreateToken(t.Context(), "nobody",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(os.Getenv("IRSA_TESTENV_CA_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientConfigHost()
	if err != nil {
		t.Fatal(err)
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "irsa" {
  trust_check = "off"
  kubernetes = {
    host                   = %q
    token                  = %q
    cluster_ca_certificate = %q
  }
}
resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = "api"
  role_arn        = %q
}`, cfg, tok.Status.Token, string(ca), c.ns, testRoleA),
			PlanOnly: true,
			ExpectError: regexp.MustCompile(`(?s)refused\s+a\s+request\s+for\s+ServiceAccount\s+` + c.ns + `/api.*lacks\s+` +
				"`(get|list)`" + `\s+on\s+` + "`serviceaccounts`" + `.*Role\s+in\s+namespace\s+` + c.ns),
		}},
	})
}

func TestAccServiceAccountBinding_unknownClusterDoesNotFailPlan(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			// The host comes from a resource not created yet, as when the
			// cluster is created in the same apply.
			Config: `
resource "terraform_data" "cluster" {
  input = "https://127.0.0.1:1"
}
provider "irsa" {
  trust_check = "off"
  kubernetes = {
    host  = terraform_data.cluster.output
    token = "x"
  }
}
resource "irsa_service_account_binding" "test" {
  namespace       = "payments"
  service_account = "api"
  role_arn        = "` + testRoleA + `"
}`,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
			// terraform_data alone makes the plan non-empty: the binding
			// itself must be planned for creation.
			ConfigPlanChecks: plannedForCreation("irsa_service_account_binding.test"),
		}},
	})
}

// A kubernetes block whose whole value is unknown at plan (an object output
// of a resource created in the same apply, as a module's output would be)
// plans like a partly unknown one: the cluster checks wait for apply.
func TestAccServiceAccountBinding_whollyUnknownKubernetesBlockPlans(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
resource "terraform_data" "cluster" {
  input = {
    host  = "https://127.0.0.1:1"
    token = "x"
  }
}
provider "irsa" {
  trust_check = "off"
  kubernetes  = terraform_data.cluster.output
}
resource "irsa_service_account_binding" "test" {
  namespace       = "payments"
  service_account = "api"
  role_arn        = "` + testRoleA + `"
}`,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
			ConfigPlanChecks:   plannedForCreation("irsa_service_account_binding.test"),
		}},
	})
}

// plannedForCreation checks a plan-only step's plans, before and after
// refresh, for the creation of the resource at address.
func plannedForCreation(address string) resource.ConfigPlanChecks {
	create := []plancheck.PlanCheck{plancheck.ExpectResourceAction(address, plancheck.ResourceActionCreate)}
	return resource.ConfigPlanChecks{PostApplyPreRefresh: create, PostApplyPostRefresh: create}
}

func clientConfigHost() (string, error) {
	cfg, err := restConfigForTests()
	if err != nil {
		return "", err
	}
	if cfg.Host == "" {
		return "", errors.New("no API server host in KUBECONFIG")
	}
	return cfg.Host, nil
}

func TestAccServiceAccountBinding_roleAnnotationRemovedOutOfBand(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	config := bindingConfig(c.ns, "api", testRoleA, "")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				// Helm re-creates the ServiceAccount without the annotation.
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
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("role_arn"), knownvalue.StringExact(testRoleA)),
				}},
				Check: c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA}),
			},
		},
	})
}

func TestAccServiceAccountBinding_fieldManager(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "irsa" {
  trust_check   = "off"
  field_manager = "platform-team"
}
resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = "api"
  role_arn        = %q
}`, c.ns, testRoleA),
			Check: func(*terraform.State) error {
				sa, err := c.getSA("api")
				if err != nil {
					return err
				}
				if owners := managersOf(sa, irsa.RoleARNAnnotation); len(owners) != 1 || !regexp.MustCompile(`^platform-team/[0-9a-f]{16}$`).MatchString(owners[0]) {
					return fmt.Errorf("role-arn owners = %v, want [platform-team/ID]", owners)
				}
				return nil
			},
		}},
	})
}
