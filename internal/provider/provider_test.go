package provider

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/irsa-dev/terraform-provider-irsa/internal/rpcscope"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// TestMain runs the acceptance tests against the local environment: the one
// `make testenv-up` started, or one started for this test binary.
func TestMain(m *testing.M) { testenv.Main(m) }

// testAccProtoV6ProviderFactories serves the provider in process to the real
// terraform CLI.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	// As main serves it.
	"irsa": func() (tfprotov6.ProviderServer, error) {
		s, err := providerserver.NewProtocol6WithError(New("test", "acc")())()
		return rpcscope.Server(s), err
	},
}

// requireEnv skips a test that needs the local environment (the cluster,
// moto, the CLIs) unless TF_ACC is set, as resource.Test does: `make test`
// sets it after `make testenv-up`; `go test ./...` alone runs the rest.
func requireEnv(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("needs the local environment: set TF_ACC=1 (make test does)")
	}
	testAccPreCheck(t)
}

func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("KUBECONFIG") == "" {
		t.Fatal("KUBECONFIG must be set: acceptance tests run against the local environment (make test)")
	}
}

const (
	testRoleA = "arn:aws:iam::123456789012:role/payments-api"
	testRoleB = "arn:aws:iam::123456789012:role/path/to/payments-api-v2"
	testRoleC = "arn:aws:iam::123456789012:role/from-kubectl"
)

// testCluster is an admin client plus a fresh namespace, deleted at the end.
type testCluster struct {
	t      *testing.T
	client kubernetes.Interface
	ns     string
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	requireEnv(t)
	client, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "acc-" + rand.String(8)
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return &testCluster{t: t, client: client, ns: ns}
}

// createSA creates a ServiceAccount the way kubectl does, with an unrelated
// annotation and label the binding must never touch.
func (c *testCluster) createSA(name string) {
	c.t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: c.ns,
		Annotations: map[string]string{"team": "payments"},
		Labels:      map[string]string{"app.kubernetes.io/name": name},
	}}
	if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Create(context.Background(), sa, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCluster) getSA(name string) (*corev1.ServiceAccount, error) {
	return c.client.CoreV1().ServiceAccounts(c.ns).Get(context.Background(), name, metav1.GetOptions{})
}

// annotate changes an annotation as `kubectl annotate --overwrite` does: an
// Update under kubectl's field manager, which takes ownership of the field.
func (c *testCluster) annotate(name, key, value string) {
	c.t.Helper()
	sa, err := c.getSA(name)
	if err != nil {
		c.t.Fatal(err)
	}
	if sa.Annotations == nil {
		sa.Annotations = map[string]string{}
	}
	sa.Annotations[key] = value
	if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Update(context.Background(), sa, metav1.UpdateOptions{FieldManager: "kubectl-annotate"}); err != nil {
		c.t.Fatal(err)
	}
}

// bindingConfig is a binding for the cluster-side tests, which use roles that
// do not exist in IAM: the trust check is off here and tested on its own.
func bindingConfig(ns, sa, role, extra string) string {
	return fmt.Sprintf(`
provider "irsa" {
  trust_check = "off"
}

resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
%s
}
`, ns, sa, role, extra)
}

func restConfigForTests() (*rest.Config, error) { return testenv.RESTConfig() }
