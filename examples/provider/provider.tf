# Every setting is optional. An empty block uses an exported KUBECONFIG (or
# KUBE_* variables), else the in-cluster configuration inside a pod, and the
# AWS default credential chain. It never falls back to ~/.kube/config on its own.
provider "irsa" {}

# An EKS cluster, with credentials from the AWS CLI.
provider "irsa" {
  alias = "eks"

  kubernetes = {
    host                   = "https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com"
    cluster_ca_certificate = file("${path.module}/cluster-ca.pem")
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", "payments"]
    }
  }
}
