terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    irsa = {
      source = "irsa-dev/irsa"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
  }
}
