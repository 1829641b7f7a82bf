# The trust policy that lets payments/api assume a role, rendered at plan
# time with no API call: give the account (and partition, default aws).
locals {
  api_trust_policy = provider::irsa::trust_policy({
    service_accounts = ["payments/api"]
    oidc_issuer      = "https://oidc.eks.eu-west-1.amazonaws.com/id/5C3F0A1B2D4E6F708192A3B4C5D6E7F8"
    account_id       = "123456789012"
  })
}

# Pass it to the role, for example:
#   resource "aws_iam_role" "api" {
#     name               = "payments-api"
#     assume_role_policy = local.api_trust_policy
#   }
output "api_trust_policy" {
  value = local.api_trust_policy
}
