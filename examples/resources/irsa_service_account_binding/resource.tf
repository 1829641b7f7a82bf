# Bind a role to an existing ServiceAccount.
resource "irsa_service_account_binding" "api" {
  namespace       = "payments"
  service_account = "api"
  role_arn        = "arn:aws:iam::123456789012:role/payments-api"
}

# Create the ServiceAccount too, and tune the projected token.
resource "irsa_service_account_binding" "worker" {
  namespace              = "payments"
  service_account        = "worker"
  role_arn               = "arn:aws:iam::123456789012:role/payments/worker"
  create_service_account = true
  sts_regional_endpoints = true
  token_expiration       = 3600

  timeouts = {
    create = "15m"
  }
}
