package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// The tools' configurations differ only in the resource: the same
// ServiceAccounts, the same role, in the same shape.

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

// shape is how a configuration spells its bindings: the same resource
// instances, which cost Terraform itself different amounts.
type shape int

const (
	// forEach iterates a map of locals, what a module does.
	forEach shape = iota
	// blockEach writes one resource block per binding, as generated HCL does.
	blockEach
)

func (s shape) String() string {
	if s == blockEach {
		return "one block each"
	}
	return "for_each"
}

// tool is a Terraform configuration measured: its terraform and provider
// blocks, and one resource per binding.
type tool struct {
	name     string // as the report names it
	prefix   string // of its working directories and command labels
	header   string // terraform and provider blocks
	resource string // the resource type
	// body is the resource's arguments, given HCL expressions for the
	// binding's namespace, ServiceAccount name and role.
	body func(namespace, name, role string) string
}

var (
	oursTool = tool{
		name:   toolOurs,
		prefix: "ours",
		header: `terraform {
  required_providers {
    irsa = { source = "irsa-dev/irsa" }
  }
}

# IAM is not what is measured: no trust check.
provider "irsa" {
  trust_check = "off"
}
`,
		resource: "irsa_service_account_binding",
		body: func(namespace, name, role string) string {
			return fmt.Sprintf("  namespace       = %s\n  service_account = %s\n  role_arn        = %s\n", namespace, name, role)
		},
	}
	// oursPodIdentityTool is ours with mechanism = "pod_identity": the same
	// resource, bound through EKS Pod Identity associations.
	oursPodIdentityTool = tool{
		name:   toolOursPodIdentity,
		prefix: "ourspi",
		header: fmt.Sprintf(`terraform {
  required_providers {
    irsa = { source = "irsa-dev/irsa" }
  }
}

# IAM is not what is measured: no trust check. AWS_ENDPOINT_URL_EKS points
# at the environment's EKS API emulator.
provider "irsa" {
  trust_check  = "off"
  cluster_name = %q
}
`, testenv.ClusterName),
		resource: "irsa_service_account_binding",
		body: func(namespace, name, role string) string {
			return fmt.Sprintf("  namespace       = %s\n  service_account = %s\n  role_arn        = %s\n  mechanism       = \"pod_identity\"\n", namespace, name, role)
		},
	}
	peerTool = tool{
		name:   toolAnnotations,
		prefix: "peer",
		header: `terraform {
  required_providers {
    kubernetes = { source = "hashicorp/kubernetes" }
  }
}

# KUBE_CONFIG_PATH points at the benchmark's cluster.
provider "kubernetes" {}
`,
		resource: "kubernetes_annotations",
		body: func(namespace, name, role string) string {
			return fmt.Sprintf(`  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = %s
    namespace = %s
  }
  annotations = {
    "eks.amazonaws.com/role-arn" = %s
  }
  field_manager = "bench-kubernetes-annotations"
`, name, namespace, role)
		},
	}
	// noopTool is the plans' floor for a provider: a terraform-plugin-framework
	// provider whose resource does no I/O (time_static reads nothing back),
	// holding the same three strings per instance.
	noopTool = tool{
		name:   toolNoop,
		prefix: "noop",
		header: `terraform {
  required_providers {
    time = { source = "hashicorp/time" }
  }
}
`,
		resource: "time_static",
		body: func(namespace, name, role string) string {
			return fmt.Sprintf("  triggers = {\n    namespace = %s\n    name      = %s\n    role      = %s\n  }\n", namespace, name, role)
		},
	}
	// floorTool is the plans' floor for ours: bench/schemafloor, a plugin
	// with this provider's schemas whose resource does nothing, over the
	// same configuration as ours (the local name irsa, another address).
	floorTool = tool{
		name:   toolFloor,
		prefix: "floor",
		header: `terraform {
  required_providers {
    irsa = { source = "irsa-dev/irsa-floor" }
  }
}

provider "irsa" {
  trust_check = "off"
}
`,
		resource: "irsa_service_account_binding",
		body:     oursTool.body,
	}
	// aloneTool is Terraform's own work on as many resource instances, with no
	// provider plugin (terraform_data is built in).
	aloneTool = tool{
		name:     toolAlone,
		prefix:   "alone",
		resource: "terraform_data",
		body: func(namespace, name, role string) string {
			return fmt.Sprintf("  input = {\n    namespace = %s\n    name      = %s\n    role      = %s\n  }\n", namespace, name, role)
		},
	}
)

// mainTF is t's main.tf in shape s: for forEach, one resource iterating
// local.bindings (written by writeBindings); for blockEach, one resource
// block per binding, named after its position.
func (t tool) mainTF(s shape, bindings []binding) string {
	var b strings.Builder
	if t.header != "" {
		b.WriteString(t.header + "\n")
	}
	if s == forEach {
		fmt.Fprintf(&b, "resource %q \"b\" {\n  for_each = local.bindings\n\n%s}\n", t.resource,
			t.body("each.value.namespace", "each.value.name", "each.value.role"))
		return b.String()
	}
	for i, x := range bindings {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "resource %q \"b_%d\" {\n%s}\n", t.resource, i,
			t.body(strconv.Quote(x.namespace), strconv.Quote(x.name), strconv.Quote(x.role)))
	}
	return b.String()
}

// writeConfig writes dir/main.tf (t's resources in shape s) and, for
// forEach, dir/bindings.tf (the map it iterates), creating dir.
func writeConfig(dir string, t tool, s shape, bindings []binding) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(t.mainTF(s, bindings)), 0o644); err != nil {
		return err
	}
	if s != forEach {
		return nil
	}
	return writeBindings(dir, bindings)
}

// writeBindings rewrites dir/bindings.tf of a forEach configuration: how a
// role change is made.
func writeBindings(dir string, bindings []binding) error {
	var b strings.Builder
	b.WriteString("locals {\n  bindings = {\n")
	for _, x := range bindings {
		fmt.Fprintf(&b, "    %q = { namespace = %q, name = %q, role = %q }\n", x.namespace+"/"+x.name, x.namespace, x.name, x.role)
	}
	b.WriteString("  }\n}\n")
	return os.WriteFile(filepath.Join(dir, "bindings.tf"), []byte(b.String()), 0o644)
}
