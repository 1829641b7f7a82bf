package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// A fleet of bindings in a few namespaces, through real terraform processes
// and a proxy that counts the provider's requests: a plan reads each
// namespace once, whatever the number of bindings in it; an apply of new
// bindings with nothing to recycle makes two requests per binding plus the
// shared reads, plan included; and what the shared reads see is the truth
// (drift shows).
func TestAccFleet_readsAreSharedPerNamespace(t *testing.T) {
	requireEnv(t)
	const namespaces, perNamespace = 3, 4
	bindings := namespaces * perNamespace
	client, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := "fleet-" + rand.String(5)
	counter := newRequestCounter(t)
	var config strings.Builder
	fmt.Fprintf(&config, "provider \"irsa\" {\n  trust_check = \"off\"\n%s}\n", counter.kubernetes())
	for n := range namespaces {
		ns := fmt.Sprintf("%s-%d", prefix, n)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
		for i := range perNamespace {
			sa := fmt.Sprintf("app-%d", i)
			if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&config, "\nresource \"irsa_service_account_binding\" \"b%d_%d\" {\n  namespace       = %q\n  service_account = %q\n  role_arn        = %q\n}\n",
				n, i, ns, sa, fmt.Sprintf("arn:aws:iam::123456789012:role/fleet-%d-%d", n, i))
		}
	}
	tf := newTerraformCLI(t, config.String())
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false", "-no-color") })

	counter.take()
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	apply := counter.take()
	t.Logf("apply of %d new bindings: %d requests: %s", bindings, total(apply), formatCounts(apply))
	if got := apply["patch serviceaccounts"]; got != bindings {
		t.Errorf("%d ServiceAccount applies, want %d (one per binding)", got, bindings)
	}
	// Per binding: the apply and a fresh list of its pods; per namespace,
	// per walk (plan, then apply): the shared lists; and the issuer, once
	// per walk. At 500 bindings in 50 namespaces that is 2.4 per binding.
	for kind, most := range map[string]int{
		"patch serviceaccounts": bindings, "list pods": bindings + 2*namespaces,
		"list serviceaccounts": 2 * namespaces, "get serviceaccounts": 0,
	} {
		if got := apply[kind]; got > most {
			t.Errorf("apply: %s %d times, want at most %d", kind, got, most)
		}
	}
	if got, most := total(apply), 2*bindings+4*namespaces+2; got > most {
		t.Errorf("apply made %d requests, want at most %d", got, most)
	}

	// Pods that run as the ServiceAccounts now carry the credentials.
	for n := range namespaces {
		ns := fmt.Sprintf("%s-%d", prefix, n)
		for i := range perNamespace {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i)},
				Spec:       corev1.PodSpec{ServiceAccountName: fmt.Sprintf("app-%d", i), Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}
			if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, args := range [][]string{{"plan", "-refresh-only"}, {"plan"}} {
		counter.take()
		code, out := tf.run(append(args, "-input=false", "-no-color", "-detailed-exitcode")...)
		counts := counter.take()
		t.Logf("%s of %d bindings in %d namespaces: %d requests: %s", strings.Join(args, " "), bindings, namespaces, total(counts), formatCounts(counts))
		if code != 0 {
			t.Fatalf("%v exited %d, want 0 (no drift, every pod credentialed):\n%s", args, code, out)
		}
		for kind, want := range map[string]int{"list serviceaccounts": namespaces, "list pods": namespaces, "get serviceaccounts": 0} {
			if got := counts[kind]; got != want {
				t.Errorf("%v: %s %d times, want %d (once per namespace)", args, kind, got, want)
			}
		}
		if got := total(counts); got > 2*namespaces+2 {
			t.Errorf("%v made %d requests, want at most %d: two per namespace and the issuer discovery", args, got, 2*namespaces+2)
		}
	}

	// Drift in one namespace shows in the plan that shared its reads.
	ns := prefix + "-1"
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "app-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.Annotations[irsa.RoleARNAnnotation] = "arn:aws:iam::123456789012:role/changed-by-hand"
	if _, err := client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{FieldManager: "kubectl-annotate"}); err != nil {
		t.Fatal(err)
	}
	code, out := tf.run("plan", "-input=false", "-no-color", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "irsa_service_account_binding.b1_2 will be updated in-place") || strings.Contains(out, "b0_1 will be updated") {
		t.Fatalf("plan after changing one role by hand exited %d, want 2 with only b1_2 to update:\n%s", code, out)
	}
}

// The snapshot's copy of a ServiceAccount may be older than the
// ServiceAccount: the real API server refuses an apply conditional on it,
// and the binder reads again and applies (the fake clientset does not
// check resourceVersions, so this is tested here).
func TestAccBinder_outdatedSnapshotIsReadAgain(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	outdated, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	c.annotate("api", "team", "checkout") // the live object moves on

	cfg, err := restConfigForTests()
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/serviceaccounts/api") {
				gets.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := binding.Binder{
		Conn:   kube.Conn{Client: client, FieldManager: DefaultFieldManager},
		Lookup: func(context.Context, string, string) (*corev1.ServiceAccount, error) { return outdated.DeepCopy(), nil },
	}
	out, err := b.Apply(t.Context(), binding.Spec{
		Namespace: c.ns, ServiceAccount: "api", Binding: irsa.Binding{RoleARN: testRoleA},
		Restart: binding.Restart{Strategy: recycle.StrategyNone},
	}, binding.Ownership{ID: "test"})
	if err != nil || !out.Annotated {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
	if gets.Load() != 1 {
		t.Errorf("%d fresh reads, want 1: the outdated copy must be refused and read again", gets.Load())
	}
	sa, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	if sa.Annotations[irsa.RoleARNAnnotation] != testRoleA || sa.Annotations["team"] != "checkout" {
		t.Errorf("annotations %v: want the role applied and the newer team annotation kept", sa.Annotations)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
