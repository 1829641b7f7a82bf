# A binding is imported by NAMESPACE/SERVICE_ACCOUNT; the ServiceAccount must
# already carry the eks.amazonaws.com/role-arn annotation.
terraform import irsa_service_account_binding.api payments/api

# With mechanism = "pod_identity" (and the provider's cluster_name set), the
# same ID finds the ServiceAccount's EKS Pod Identity association.
