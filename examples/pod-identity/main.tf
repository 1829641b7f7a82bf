# The same workload as examples/quickstart, bound through EKS Pod Identity:
# an association of (cluster, namespace, ServiceAccount) instead of the
# ServiceAccount's role-arn annotation. The cluster runs the EKS Pod Identity
# Agent add-on; the role trusts pods.eks.amazonaws.com.

terraform {
  required_providers {
    irsa = {
      source = "irsa-dev/irsa"
    }
  }
}

variable "cluster_name" {
  description = "EKS name of the cluster the kubeconfig reaches."
  type        = string
}

variable "role_arn" {
  description = "Role whose trust policy admits pods.eks.amazonaws.com (sts:AssumeRole, sts:TagSession)."
  type        = string
}

provider "irsa" {
  # Checked at plan: the EKS cluster of this name must report the OIDC
  # issuer the Kubernetes connection reports.
  cluster_name = var.cluster_name
}

resource "irsa_service_account_binding" "api" {
  namespace       = "payments"
  service_account = "api"
  role_arn        = var.role_arn
  mechanism       = "pod_identity"

  pod_identity = {
    tags = { team = "payments" }
  }
}

output "association_id" {
  value = irsa_service_account_binding.api.association_id
}

output "stale_pods" {
  description = "Pods still without the association's credentials; empty once apply recycled them."
  value       = irsa_service_account_binding.api.stale_pods
}
