package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// The data source renders the partition it is asked for, and otherwise
// the one of the provider's region; none of these needs an AWS call.
func TestAccTrustPolicyDataSource_partitions(t *testing.T) {
	const issuer = "https://oidc.eks.us-gov-west-1.amazonaws.com/id/PARTITIONS"
	const host = "oidc.eks.us-gov-west-1.amazonaws.com/id/PARTITIONS"
	config := fmt.Sprintf(`
provider "irsa" {
  oidc_issuer = %q
  aws = {
    region = "cn-north-1"
  }
}

data "irsa_trust_policy" "gov" {
  service_accounts = ["payments/api"]
  account_id       = "210987654321"
  partition        = "aws-us-gov"
}

data "irsa_trust_policy" "commercial" {
  service_accounts = ["payments/api"]
  account_id       = "210987654321"
  partition        = "aws"
}

data "irsa_trust_policy" "from_region" {
  service_accounts = ["payments/api"]
  account_id       = "210987654321"
}

data "irsa_trust_policy" "from_arn" {
  service_accounts  = ["payments/api"]
  oidc_provider_arn = "arn:aws-iso-b:iam::210987654321:oidc-provider/%s"
}
`, issuer, host)
	check := func(name, partition string) []statecheck.StateCheck {
		arn := "arn:" + partition + ":iam::210987654321:oidc-provider/" + host
		addr := "data.irsa_trust_policy." + name
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("partition"), knownvalue.StringExact(partition)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("oidc_provider_arn"), knownvalue.StringExact(arn)),
			statecheck.ExpectKnownValue(addr, tfjsonpath.New("json"), knownvalue.StringRegexp(
				regexp.MustCompile(regexp.QuoteMeta(`"Federated": "`+arn+`"`)))),
		}
	}
	var checks []statecheck.StateCheck
	checks = append(checks, check("gov", "aws-us-gov")...)
	checks = append(checks, check("commercial", "aws")...)
	checks = append(checks, check("from_region", "aws-cn")...)
	checks = append(checks, check("from_arn", "aws-iso-b")...)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    []resource.TestStep{{Config: config, ConfigStateChecks: checks}},
	})
}
