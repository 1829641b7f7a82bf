# Composing the trust-policy data source with an IAM role and the binding.
#
# This example cannot be applied in the local environment: the AWS provider
# is not installable offline. It is formatted and validated like every
# example, and shows the shape of a real module.
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    irsa = {
      source = "irsa-dev/irsa"
    }
  }
}

provider "irsa" {}

data "irsa_trust_policy" "api" {
  service_accounts = ["payments/api"]
}

resource "aws_iam_role" "api" {
  name               = "payments-api"
  assume_role_policy = data.irsa_trust_policy.api.json
}

resource "irsa_service_account_binding" "api" {
  namespace       = "payments"
  service_account = "api"
  role_arn        = aws_iam_role.api.arn
}
