package provider

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// TestAccFleetPodIdentity_requests counts what a fleet of pod_identity
// bindings costs EKS, from the emulator's own request counts (so it runs
// alone, not in parallel: every client of the emulator counts). A plan of
// new bindings lists the cluster's associations once, 100 to a page, and
// describes the cluster once; a refresh describes each binding's
// association (List has no role, so drift needs Describe) and lists
// nothing. IRSA_FLEET_PI_BINDINGS sets the size of the plan of new
// bindings (default 210; the closing numbers of the issue used 500).
func TestAccFleetPodIdentity_requests(t *testing.T) {
	requireEnv(t)
	planned := 210
	if v, err := strconv.Atoi(os.Getenv("IRSA_FLEET_PI_BINDINGS")); err == nil && v > 0 {
		planned = v
	}
	const applied = 12
	client, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "pi-fleet-" + rand.String(5)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	for i := range planned {
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	role := podIdentityRole(t, "pi-fleet")
	config := func(n int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "provider \"irsa\" {\n  trust_check  = \"off\"\n  cluster_name = %q\n}\n", testenv.ClusterName)
		for i := range n {
			fmt.Fprintf(&b, "\nresource \"irsa_service_account_binding\" \"b%d\" {\n  namespace       = %q\n  service_account = \"app-%d\"\n  role_arn        = %q\n  mechanism       = \"pod_identity\"\n}\n", i, ns, i, role)
		}
		return b.String()
	}
	counts := func() map[string]int {
		c, err := testenv.EKSRequestCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	delta := func(before, after map[string]int) map[string]int {
		d := map[string]int{}
		for op, n := range after {
			if n != before[op] {
				d[op] = n - before[op]
			}
		}
		return d
	}

	tf := newTerraformCLI(t, config(applied))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false", "-no-color") })
	before := counts()
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	apply := delta(before, counts())
	t.Logf("apply of %d pod_identity bindings: EKS requests %v", applied, apply)
	if apply["CreatePodIdentityAssociation"] != applied {
		t.Errorf("apply created %d associations, want %d", apply["CreatePodIdentityAssociation"], applied)
	}

	before = counts()
	if code, out := tf.run("plan", "-refresh-only", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("refresh-only plan exited %d, want 0 (no drift):\n%s", code, out)
	}
	refresh := delta(before, counts())
	t.Logf("refresh of %d pod_identity bindings: EKS requests %v", applied, refresh)
	if refresh["DescribePodIdentityAssociation"] != applied || refresh["ListPodIdentityAssociations"] != 0 || refresh["DescribeCluster"] > 1 {
		t.Errorf("refresh of %d bindings made %v; want one Describe per binding, no List, at most one DescribeCluster", applied, refresh)
	}

	tf.configure(config(planned))
	before = counts()
	if code, out := tf.run("plan", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan of %d bindings exited %d:\n%s", planned, code, out)
	}
	plan := delta(before, counts())
	t.Logf("plan of %d pod_identity bindings (%d of them new): EKS requests %v", planned, planned-applied, plan)
	total := 0
	for _, n := range plan {
		total += n
	}
	// One listing of the cluster, whatever the number of new bindings: a
	// page per 100 associations in the cluster (the fleet's and those other
	// tests left), plus a Describe per existing binding.
	if plan["ListPodIdentityAssociations"] > 1+(applied+planned)/100+1 || plan["DescribePodIdentityAssociation"] > applied || plan["DescribeCluster"] > 1 {
		t.Errorf("plan of %d bindings made %v: the listing is not shared", planned, plan)
	}
	if total > applied+10 {
		t.Errorf("plan of %d bindings made %d EKS requests; want the shared listing plus one Describe per existing binding", planned, total)
	}
}
