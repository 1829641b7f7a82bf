package provider

import (
	"context"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

const testIssuer = "https://oidc.eks.us-east-1.amazonaws.com/id/5C3F0A1B2D4E6F708192A3B4C5D6E7F8"

// The functions through Terraform: the same policy as the data source, for
// the same inputs, with no API call.
func TestAccFunctions(t *testing.T) {
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Bad input fails the plan; these come first, as the last step's
			// configuration is the one the test destroys with.
			{
				Config: `
output "bad" {
  value = provider::irsa::trust_policy({
    service_accounts = ["payments/api"]
    oidc_issuer      = "` + testIssuer + `"
    account_id       = "12345"
  })
}
`,
				ExpectError: regexp.MustCompile(`account_id\s+must\s+be\s+a\s+12-digit\s+account\s+ID`),
			},
			{
				Config:      `output "bad" { value = provider::irsa::service_account_subject("Payments", "api") }`,
				ExpectError: regexp.MustCompile(`is\s+not\s+a\s+ServiceAccount`),
			},
			{
				Config: `
provider "irsa" {
  trust_check = "off"
}

locals {
  grant = {
    service_accounts = ["payments/api", "payments/worker-*"]
    oidc_issuer      = "` + testIssuer + `"
    account_id       = "123456789012"
  }
}

data "irsa_trust_policy" "api" {
  service_accounts = local.grant.service_accounts
  oidc_issuer      = local.grant.oidc_issuer
  account_id       = local.grant.account_id
}

output "subject" {
  value = provider::irsa::service_account_subject("payments", "api")
}

output "same_as_the_data_source" {
  value = provider::irsa::trust_policy(local.grant) == data.irsa_trust_policy.api.json
}

output "govcloud_provider" {
  value = jsondecode(provider::irsa::trust_policy({
    service_accounts = ["payments/api"]
    oidc_issuer      = "https://oidc.eks.us-gov-west-1.amazonaws.com/id/ABC"
    account_id       = "123456789012"
    partition        = "aws-us-gov"
  })).Statement[0].Principal.Federated
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("subject", knownvalue.StringExact("system:serviceaccount:payments:api")),
					statecheck.ExpectKnownOutputValue("same_as_the_data_source", knownvalue.Bool(true)),
					statecheck.ExpectKnownOutputValue("govcloud_provider",
						knownvalue.StringExact("arn:aws-us-gov:iam::123456789012:oidc-provider/oidc.eks.us-gov-west-1.amazonaws.com/id/ABC")),
				},
			},
		},
	})
}

// The rendered policy passes the provider's own trust check for every
// ServiceAccount it names, and for no other.
func TestTrustPolicyFunction_roundTripsThroughTheTrustCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	grant := types.ObjectValueMust(
		map[string]attr.Type{"service_accounts": types.ListType{ElemType: types.StringType}, "oidc_issuer": types.StringType, "account_id": types.StringType},
		map[string]attr.Value{
			"service_accounts": types.ListValueMust(types.StringType, []attr.Value{types.StringValue("payments/api"), types.StringValue("batch/worker-*")}),
			"oidc_issuer":      types.StringValue(testIssuer),
			"account_id":       types.StringValue("123456789012"),
		})
	resp := &function.RunResponse{Result: function.NewResultData(types.StringUnknown())}
	NewTrustPolicyFunction().Run(ctx, function.RunRequest{Arguments: function.NewArgumentsData([]attr.Value{types.DynamicValue(grant)})}, resp)
	if resp.Error != nil {
		t.Fatal(resp.Error)
	}
	rendered, ok := resp.Result.Value().(types.String)
	if !ok {
		t.Fatalf("result is %T", resp.Result.Value())
	}
	policy, err := trust.Parse(rendered.ValueString())
	if err != nil {
		t.Fatal(err)
	}
	providerARN := trust.ProviderARN("aws", "123456789012", testIssuer)
	for subject, want := range map[string]trust.Outcome{
		"system:serviceaccount:payments:api":   trust.Allowed,
		"system:serviceaccount:batch:worker-7": trust.Allowed,
		"system:serviceaccount:payments:other": trust.NotAllowed,
		"system:serviceaccount:other-ns:api":   trust.NotAllowed,
	} {
		v := trust.Check(policy, trust.Request{ProviderARN: providerARN, Issuer: testIssuer, Subject: subject, Audience: trust.DefaultAudience})
		if v.Outcome != want {
			t.Errorf("%s: outcome %v, want %v (%v)", subject, v.Outcome, want, v.Reasons)
		}
	}
}
