# The cluster side, applied in one go with what creates the ServiceAccount
# and its workload. Both providers read KUBE_CONFIG_PATH (or their
# kubernetes settings).

provider "kubernetes" {
  # The binding owns the eks.amazonaws.com/ annotations of the
  # ServiceAccount (and writes no other); without this, every plan would
  # remove them again.
  ignore_annotations = ["^eks\\.amazonaws\\.com\\/.*"]
}

provider "irsa" {}

resource "kubernetes_namespace_v1" "payments" {
  metadata {
    name = "payments"
  }
}

resource "kubernetes_service_account_v1" "api" {
  metadata {
    name      = "api"
    namespace = kubernetes_namespace_v1.payments.metadata[0].name
  }
}

resource "kubernetes_deployment_v1" "api" {
  metadata {
    name      = "api"
    namespace = kubernetes_namespace_v1.payments.metadata[0].name
  }
  spec {
    replicas = 2
    selector {
      match_labels = { app = "api" }
    }
    template {
      metadata {
        labels = { app = "api" }
      }
      spec {
        service_account_name = kubernetes_service_account_v1.api.metadata[0].name
        container {
          name  = "api"
          image = "registry.example.com/payments/api:1.4.2"
        }
      }
    }
  }

  lifecycle {
    # A rollout restart by the binding sets this pod-template annotation,
    # as kubectl rollout restart does; it is not drift of this resource.
    ignore_changes = [spec[0].template[0].metadata[0].annotations["kubectl.kubernetes.io/restartedAt"]]
  }
}

# Referencing the ServiceAccount orders the binding after it: the first plan
# does not need it to exist yet.
resource "irsa_service_account_binding" "api" {
  namespace       = kubernetes_service_account_v1.api.metadata[0].namespace
  service_account = kubernetes_service_account_v1.api.metadata[0].name
  role_arn        = local.role_arn

  # Recycle the pods the Deployment started before the annotation.
  depends_on = [kubernetes_deployment_v1.api]
}
