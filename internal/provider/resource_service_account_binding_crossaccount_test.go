package provider

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	k8srand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// The IAM emulator keeps one IAM per account: credentials from STS
// AssumeRole into arn:aws:iam::ACCOUNT:role/NAME act in ACCOUNT, as they
// do on AWS. That is the "credentials for the role's account" the provider
// gets through aws.assume_role.

// otherAccount is a fresh account ID, so parallel tests never share one.
func otherAccount() string { return fmt.Sprintf("2%011d", rand.Int64N(1e11)) }

// checkerRole is the role the provider assumes in account.
func checkerRole(account string) string { return "arn:aws:iam::" + account + ":role/irsa-checker" }

// iamClientIn is an IAM client acting in account, through AssumeRole.
func iamClientIn(t *testing.T, account string) *iam.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), checkerRole(account)))
	return iam.NewFromConfig(cfg)
}

// createRoleIn creates a role in account (through client) whose trust
// policy allows subject through account's OIDC provider for the cluster.
func createRoleIn(t *testing.T, client *iam.Client, account, name, subject string) string {
	t.Helper()
	policy, err := trust.Render(trust.Grant{ProviderARN: trust.ProviderARN("aws", account, clusterIssuer()), Issuer: clusterIssuer(), Subjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(policy)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Role.Arn)
}

func assumeRoleBlock(account string) string {
	return fmt.Sprintf("  aws = {\n    assume_role = {\n      role_arn = %q\n    }\n  }", checkerRole(account))
}

func TestAccServiceAccountBinding_trustRoleInAnotherAccount(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	withProvider, withoutProvider := otherAccount(), otherAccount()
	name := "irsa-acc-" + k8srand.String(8)

	// The role's account has the cluster's OIDC provider, the role that
	// trusts the ServiceAccount, and one that trusts another.
	other := iamClientIn(t, withProvider)
	if _, err := other.CreateOpenIDConnectProvider(context.Background(), &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(clusterIssuer()), ClientIDList: []string{trust.DefaultAudience}, ThumbprintList: []string{strings.Repeat("9", 40)},
	}); err != nil {
		t.Fatal(err)
	}
	role := createRoleIn(t, other, withProvider, name, trust.Subject(c.ns, "api"))
	wrongSubject := createRoleIn(t, other, withProvider, name+"-wrong", trust.Subject(c.ns, "someone-else"))
	// The caller's own account has a role of the same name that does not
	// trust the ServiceAccount: checking it instead would fail the plan.
	createNamedRole(t, name, mustRender(t, trust.Subject(c.ns, "someone-else")))
	// An account with the role but without the cluster's OIDC provider.
	noProvider := createRoleIn(t, iamClientIn(t, withoutProvider), withoutProvider, name, trust.Subject(c.ns, "api"))

	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// With the provider's credentials in the role's account, the
				// real role is checked: it does not allow the ServiceAccount.
				Config:      trustConfig(assumeRoleBlock(withProvider), c.ns, "api", wrongSubject),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Trust Policy Does Not Allow the Service Account.*someone-else`),
			},
			{
				// The OIDC provider is looked for in the role's account.
				Config:      trustConfig(assumeRoleBlock(withoutProvider), c.ns, "api", noProvider),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)OIDC Provider Does Not Exist.*in\s+account\s+` + withoutProvider),
			},
			{
				// Without credentials for the role's account: skipped with a
				// warning, never checked against the same-named role of the
				// caller's account (which would fail).
				Config:             trustConfig("", c.ns, "api", role),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// With them, the binding passes the check and applies.
				Config: trustConfig(assumeRoleBlock(withProvider), c.ns, "api", role),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("role_arn"), knownvalue.StringExact(role)),
				},
			},
		},
	})
}

// mustRender is a trust policy of the caller's account for subject.
func mustRender(t *testing.T, subject string) string {
	t.Helper()
	policy, err := trust.Render(trust.Grant{ProviderARN: clusterProviderARN(), Issuer: clusterIssuer(), Subjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	return policy
}
