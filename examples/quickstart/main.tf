# The quick start: bind an IAM role to the ServiceAccount of a running
# workload. `make demo` applies it against the local EKS-like environment;
# point the provider at your cluster to apply it on EKS.
terraform {
  required_providers {
    irsa = {
      source = "irsa-dev/irsa"
    }
  }
}

variable "role_arn" {
  description = "The IAM role the demo-app pods assume; its trust policy must allow system:serviceaccount:demo:demo-app."
  type        = string
}

variable "mechanism" {
  description = "How the role reaches the pods: irsa (the ServiceAccount's annotation) or pod_identity (an EKS Pod Identity association). Changing it migrates in place."
  type        = string
  default     = "irsa"
}

variable "cluster_name" {
  description = "EKS name of the cluster, needed by mechanism = \"pod_identity\"."
  type        = string
  default     = null
}

provider "irsa" {
  cluster_name = var.cluster_name
}

resource "irsa_service_account_binding" "demo" {
  namespace       = "demo"
  service_account = "demo-app"
  role_arn        = var.role_arn
  mechanism       = var.mechanism

  # The defaults, spelled out: restart the Deployment the way
  # `kubectl rollout restart` does, and wait until its new pods carry the
  # credentials.
  restart = {
    strategy = "rollout"
    wait     = true
  }
}

output "stale_pods" {
  description = "Pods still running without the role's credentials (empty once apply is done)."
  value       = irsa_service_account_binding.demo.stale_pods
}
