# The IAM side: a role whose trust policy the irsa_trust_policy data source
# renders for the ServiceAccount. (The composition test stands in for this
# file with a role created in the IAM emulator: the AWS provider is not
# installable offline.)

data "irsa_trust_policy" "api" {
  service_accounts = ["payments/api"]
}

resource "aws_iam_role" "api" {
  name               = "payments-api"
  assume_role_policy = data.irsa_trust_policy.api.json
}

locals {
  role_arn = aws_iam_role.api.arn
}
