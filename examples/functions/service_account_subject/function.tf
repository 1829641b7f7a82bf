# The sub claim of payments/api's tokens, for a hand-written trust policy.
output "api_subject" {
  value = provider::irsa::service_account_subject("payments", "api")
  # system:serviceaccount:payments:api
}
