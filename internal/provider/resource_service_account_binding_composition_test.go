package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// Composition in one apply with the real hashicorp/kubernetes provider: the
// namespace, ServiceAccount and Deployment it creates, and the binding, all
// in one configuration, planned before any of them exists.

// kubernetesProviderOverrides builds the kubernetes provider once (cached)
// and points terraform and tofu at it.
func kubernetesProviderOverrides(t *testing.T) map[string]string {
	t.Helper()
	dir, err := testenv.EnsureKubernetesProvider(t.Context(), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"registry.terraform.io/hashicorp/kubernetes": dir,
		"registry.opentofu.org/hashicorp/kubernetes": dir,
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

const compositionVersions = `terraform {
  required_providers {
    irsa       = { source = "irsa-dev/irsa" }
    kubernetes = { source = "hashicorp/kubernetes" }
  }
}
`

// exampleFile reads a file of examples/composition, in the namespace ns.
func exampleFile(t *testing.T, name, ns string) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/composition/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(data), `name = "payments"`, fmt.Sprintf("name = %q", ns))
}

func TestAccServiceAccountBinding_composition(t *testing.T) {
	requireEnv(t)
	overrides := kubernetesProviderOverrides(t)
	tests := []struct {
		name  string
		files func(ns, role string) map[string]string
	}{
		{
			// examples/composition as documented, with a role created in
			// the IAM emulator standing in for iam.tf.
			name: "examples/composition: the binding references the ServiceAccount",
			files: func(ns, role string) map[string]string {
				return map[string]string{
					"versions.tf": compositionVersions,
					"cluster.tf":  exampleFile(t, "cluster.tf", ns),
					"standin.tf":  fmt.Sprintf("locals {\n  role_arn = %q\n}\n", role),
				}
			},
		},
		{
			// Literal names: at plan time the names are known and the
			// ServiceAccount does not exist; depends_on is the only link.
			name: "literal names ordered by depends_on",
			files: func(ns, role string) map[string]string {
				cluster := exampleFile(t, "cluster.tf", ns)
				i := strings.Index(cluster, `resource "irsa_service_account_binding"`)
				binding := fmt.Sprintf(`resource "irsa_service_account_binding" "api" {
  namespace       = %q
  service_account = "api"
  role_arn        = local.role_arn

  depends_on = [kubernetes_service_account_v1.api, kubernetes_deployment_v1.api]
}
`, ns)
				return map[string]string{
					"versions.tf": compositionVersions,
					"cluster.tf":  cluster[:i] + binding,
					"standin.tf":  fmt.Sprintf("locals {\n  role_arn = %q\n}\n", role),
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := "comp-" + rand.String(8)
			role := trustedRole(t, "system:serviceaccount:"+ns+":api")
			tf := newTerraformCLIWith(t, tt.files(ns, role), overrides)
			tf.env = append(tf.env, "KUBE_CONFIG_PATH="+os.Getenv("KUBECONFIG"))
			client, err := testenv.Clientset()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if code, out := tf.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
					t.Errorf("destroy exited %d:\n%s", code, out)
				}
				_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
			})

			// The first plan, with nothing of it in the cluster, succeeds.
			if code, out := tf.run("plan", "-input=false", "-no-color"); code != 0 {
				t.Fatalf("the first plan exited %d:\n%s", code, out)
			}
			if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
				t.Fatalf("apply exited %d:\n%s", code, out)
			}
			pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=api"})
			if err != nil {
				t.Fatal(err)
			}
			live := 0
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				live++
				if ok, reason := credentialedOracle(&p, oracleWant{Role: role}); !ok {
					t.Errorf("pod %s: %s", p.Name, reason)
				}
			}
			if live != 2 {
				t.Errorf("%d live pods, want 2", live)
			}
			// The whole configuration has no drift: neither the
			// ServiceAccount's annotation nor the restart's template
			// annotation shows up for the kubernetes provider.
			if code, out := tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
				t.Errorf("plan after apply exited %d, want 0:\n%s", code, out)
			}
			if code, out := tf.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
				t.Fatalf("destroy exited %d:\n%s", code, out)
			}
			err = wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
				_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			if err != nil {
				t.Errorf("namespace %s still there after destroy", ns)
			}
		})
	}
}
