package provider

import (
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// iamClient talks to the environment's IAM emulator, as the test's AWS
// administrator would.
func iamClient(t *testing.T) *iam.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return iam.NewFromConfig(cfg)
}

// createRole creates a role with policy as its trust policy and returns its ARN.
func createRole(t *testing.T, policy string) string {
	t.Helper()
	return createNamedRole(t, "irsa-acc-"+rand.String(8), policy)
}

func createNamedRole(t *testing.T, name, policy string) string {
	t.Helper()
	out, err := iamClient(t).CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(policy)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Role.Arn)
}

func clusterIssuer() string { return os.Getenv("IRSA_TESTENV_OIDC_ISSUER") }

func clusterProviderARN() string {
	return trust.ProviderARN("aws", os.Getenv("IRSA_TESTENV_ACCOUNT_ID"), clusterIssuer())
}

// trustedRole creates a role whose trust policy allows the given subjects of
// the environment's cluster.
func trustedRole(t *testing.T, subjects ...string) string {
	t.Helper()
	policy, err := trust.Render(trust.Grant{ProviderARN: clusterProviderARN(), Issuer: clusterIssuer(), Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	return createRole(t, policy)
}

func trustConfig(providerBody, ns, sa, role string) string {
	return fmt.Sprintf(`
provider "irsa" {
%s
}

resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
}
`, providerBody, ns, sa, role)
}

func TestAccServiceAccountBinding_trustCorrectPolicyApplies(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	role := trustedRole(t, trust.Subject(c.ns, "api"))
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: trustConfig("", c.ns, "api", role),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("oidc_issuer"), knownvalue.StringExact(clusterIssuer())),
				statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("role_arn"), knownvalue.StringExact(role)),
			},
		}},
	})
}

func TestAccServiceAccountBinding_trustFailures(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	wrongSubject := trustedRole(t, trust.Subject(c.ns, "api-v2"))
	otherIssuer := "https://oidc.eks.us-east-1.amazonaws.com/id/" + rand.String(32)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      trustConfig("", c.ns, "api", "arn:aws:iam::123456789012:role/irsa-acc-missing-"+rand.String(6)),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)IAM Role Does Not Exist.*does not exist in account\s+123456789012`),
			},
			{
				// The issuer has no OIDC provider in the account.
				Config:      trustConfig(fmt.Sprintf("  oidc_issuer = %q", otherIssuer), c.ns, "api", wrongSubject),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)OIDC Provider Does Not Exist.*No\s+OpenIDConnect\s+provider`),
			},
			{
				// The policy allows another ServiceAccount: the message
				// names it and shows the statement to add.
				Config:   trustConfig("", c.ns, "api", wrongSubject),
				PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Trust Policy Does Not Allow the Service Account.*` +
					`system:serviceaccount:` + c.ns + `:api-v2.*Add this statement.*"system:serviceaccount:` + c.ns + `:api"`),
			},
			{
				// warn: the same problem is a warning, the plan goes on.
				Config:             trustConfig(`  trust_check = "warn"`, c.ns, "api", wrongSubject),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

func TestAccServiceAccountBinding_trustOffMakesNoIAMCall(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	// IAM is unreachable: any call would fail the plan.
	unreachable := `  aws = {
    iam_endpoint = "http://127.0.0.1:1"
    sts_endpoint = "http://127.0.0.1:1"
  }`
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      trustConfig(unreachable, c.ns, "api", testRoleA),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Unable to Check the Role's Trust Policy`),
			},
			{
				Config:             trustConfig(unreachable+"\n  trust_check = \"off\"", c.ns, "api", testRoleA),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// Not parallel: it takes the credentials out of the environment, which the
// parallel tests need; Go runs it before any of them resumes.
func TestAccServiceAccountBinding_trustWithoutCredentialsWarns(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			// The role does not exist, but without credentials the check
			// is skipped with a warning, and the plan goes on.
			Config:             trustConfig("", c.ns, "api", "arn:aws:iam::123456789012:role/irsa-acc-missing"),
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
}

func TestAccTrustPolicyDataSource_rendersAPolicyThatBinds(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.createSA("worker-7")
	dataConfig := fmt.Sprintf(`
provider "irsa" {}

data "irsa_trust_policy" "test" {
  service_accounts = ["%[1]s/api", "%[1]s/worker-*"]
}
`, c.ns)
	roleName := "irsa-acc-" + rand.String(8)
	role := "arn:aws:iam::" + os.Getenv("IRSA_TESTENV_ACCOUNT_ID") + ":role/" + roleName
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: dataConfig,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.irsa_trust_policy.test", tfjsonpath.New("oidc_provider_arn"), knownvalue.StringExact(clusterProviderARN())),
				},
				Check: func(s *terraform.State) error {
					policy := s.RootModule().Resources["data.irsa_trust_policy.test"].Primary.Attributes["json"]
					if got := createNamedRole(t, roleName, policy); got != role {
						return fmt.Errorf("created %s, want %s", got, role)
					}
					return nil
				},
			},
			{
				// Stable: nothing to do on a second plan.
				Config: dataConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// The role created from it passes the trust check for both
				// ServiceAccounts, the wildcard one included.
				Config: dataConfig + fmt.Sprintf(`
resource "irsa_service_account_binding" "api" {
  namespace       = %[1]q
  service_account = "api"
  role_arn        = %[2]q
}

resource "irsa_service_account_binding" "worker" {
  namespace       = %[1]q
  service_account = "worker-7"
  role_arn        = %[2]q
}
`, c.ns, role),
			},
		},
	})
}

// A role ARN unknown during plan (created in the same apply) is checked when
// Terraform plans again during apply, before the annotation is written.
func TestAccServiceAccountBinding_trustCheckedAtApplyWhenRoleUnknownAtPlan(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	wrongSubject := trustedRole(t, trust.Subject(c.ns, "someone-else"))
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			sa, err := c.getSA("api")
			if err != nil {
				return err
			}
			if v, ok := sa.Annotations["eks.amazonaws.com/role-arn"]; ok {
				return fmt.Errorf("the failed check still annotated the ServiceAccount with %s", v)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`
provider "irsa" {}

resource "terraform_data" "role" {
  input = %q
}

resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = "api"
  role_arn        = terraform_data.role.output
}
`, wrongSubject, c.ns),
			ExpectError: regexp.MustCompile(`Trust Policy Does Not Allow the Service Account`),
		}},
	})
}
