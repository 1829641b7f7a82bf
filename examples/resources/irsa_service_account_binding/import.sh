# A binding is imported by NAMESPACE/SERVICE_ACCOUNT; the ServiceAccount must
# already carry the eks.amazonaws.com/role-arn annotation.
terraform import irsa_service_account_binding.api payments/api
