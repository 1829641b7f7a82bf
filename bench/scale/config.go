package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The two tools' configurations differ only in the resource: the same
// ServiceAccounts, the same role, for_each over the same map.

// binding is one ServiceAccount and the role it should carry.
type binding struct {
	sa
	role string
}

func bindingsOf(sas []sa, role string) []binding {
	out := make([]binding, len(sas))
	for i, s := range sas {
		out[i] = binding{s, role}
	}
	return out
}

const oursConfig = `terraform {
  required_providers {
    irsa = { source = "irsa-dev/irsa" }
  }
}

# IAM is not what is measured: no trust check.
provider "irsa" {
  trust_check = "off"
}

resource "irsa_service_account_binding" "b" {
  for_each = local.bindings

  namespace       = each.value.namespace
  service_account = each.value.name
  role_arn        = each.value.role
}
`

const peerConfig = `terraform {
  required_providers {
    kubernetes = { source = "hashicorp/kubernetes" }
  }
}

# KUBE_CONFIG_PATH points at the benchmark's cluster.
provider "kubernetes" {}

resource "kubernetes_annotations" "b" {
  for_each = local.bindings

  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = each.value.name
    namespace = each.value.namespace
  }
  annotations = {
    "eks.amazonaws.com/role-arn" = each.value.role
  }
  field_manager = "bench-kubernetes-annotations"
}
`

// aloneConfig is the plans' floor: Terraform's own work on as many
// resource instances, with no provider plugin (terraform_data is built in).
const aloneConfig = `resource "terraform_data" "b" {
  for_each = local.bindings

  input = each.value
}
`

// writeConfig writes dir/main.tf (the tool's resource) and dir/bindings.tf
// (the map it iterates), creating dir.
func writeConfig(dir, main string, bindings []binding) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o644); err != nil {
		return err
	}
	return writeBindings(dir, bindings)
}

// writeBindings rewrites dir/bindings.tf: how a role change is made.
func writeBindings(dir string, bindings []binding) error {
	var b strings.Builder
	b.WriteString("locals {\n  bindings = {\n")
	for _, x := range bindings {
		fmt.Fprintf(&b, "    %q = { namespace = %q, name = %q, role = %q }\n", x.namespace+"/"+x.name, x.namespace, x.name, x.role)
	}
	b.WriteString("  }\n}\n")
	return os.WriteFile(filepath.Join(dir, "bindings.tf"), []byte(b.String()), 0o644)
}
