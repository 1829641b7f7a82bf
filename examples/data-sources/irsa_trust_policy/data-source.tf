# The trust policy for two ServiceAccounts of the cluster the provider
# points at; the issuer is read from the API server, the account from STS.
data "irsa_trust_policy" "payments" {
  service_accounts = ["payments/api", "payments/worker-*"]
}
