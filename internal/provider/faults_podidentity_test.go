package provider

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// Faults of the EKS side, set on the environment's one EKS API emulator:
// they apply to every request, so these run in the fault suite, alone.

// TestFaultEKSThrottlingAnd5xx: throttling and server errors on every EKS
// operation are retried; the binding is made once, and the pods proven.
func TestFaultEKSThrottlingAnd5xx(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	role := podIdentityRole(t, "pi-throttle")
	c.createSA("api")
	c.createDeployment("api", "api", 1)
	before := c.waitPods("api", 1)
	counts, err := testenv.EKSRequestCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.SetEKSFaults(context.Background(), eksapi.Faults{Throttle: 3, ServerErrors: 2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testenv.SetEKSFaults(context.Background(), eksapi.Faults{}) })
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: podIdentityConfig(c.ns, "api", role, ""),
			Check: resource.ComposeAggregateTestCheckFunc(
				c.checkAssociation("api", role),
				c.checkPodIdentityPods("api", before, 1, role),
			),
		}},
	})
	after, err := testenv.EKSRequestCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for op, n := range after {
		sent += n - counts[op]
	}
	// The five faulted requests were answered by the emulator and sent
	// again by the SDK: more requests than the operations needed.
	if sent < 5+3 {
		t.Errorf("%d EKS requests during the test; the faults were not hit", sent)
	}
}

// TestFaultEKSPropagationSlowerThanGate: EKS takes longer to propagate the
// association than the gate waits. Apply creates the association, stops at
// the gate without touching a pod, saves the binding (a warning on create,
// so it is not tainted) with the pods in stale_pods; once propagation
// catches up, the next apply recycles them in place.
func TestFaultEKSPropagationSlowerThanGate(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	role := podIdentityRole(t, "pi-slow")
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	if err := testenv.SetEKSPropagationDelay(context.Background(), 45*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testenv.SetEKSPropagationDelay(context.Background(), testenv.DefaultEKSPropagationDelay) })
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:             podIdentityConfig(c.ns, "api", role, ""),
				ExpectNonEmptyPlan: true, // stale_pods: the next apply recycles
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAssociation("api", role),
					c.checkUntouched("api", before),
					checkStalePods(onlyPods(before)...),
				),
			},
			{
				PreConfig: func() {
					if err := testenv.SetEKSPropagationDelay(context.Background(), testenv.DefaultEKSPropagationDelay); err != nil {
						t.Fatal(err)
					}
					waitPropagated(t)
				},
				Config: podIdentityConfig(c.ns, "api", role, ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkPodIdentityPods("api", before, 2, role),
					checkStalePods(),
				),
			},
		},
	})
}

// TestFaultEKSCreateRace: another tool creates the ServiceAccount's
// association between plan and apply (a saved plan applied later). Apply
// fails naming it, saves nothing, and leaves that association and every
// pod alone.
func TestFaultEKSCreateRace(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	role := podIdentityRole(t, "pi-race")
	c.createSA("api")
	c.createDeployment("api", "api", 1)
	before := c.waitPods("api", 1)
	tf := newTerraformCLI(t, podIdentityConfig(c.ns, "api", role, ""))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })
	if code, out := tf.run("plan", "-out=race.tfplan", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan exited %d:\n%s", code, out)
	}
	out, err := eksClient(t).CreatePodIdentityAssociation(context.Background(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(c.ns), ServiceAccount: aws.String("api"), RoleArn: aws.String(role),
	})
	if err != nil {
		t.Fatal(err)
	}
	theirs := aws.ToString(out.Association.AssociationId)
	code, applied := tf.run("apply", "-input=false", "-no-color", "race.tfplan")
	if code == 0 || !regexp.MustCompile(`(?s)Pod Identity Association Already Exists.*`+theirs).MatchString(applied) {
		t.Fatalf("apply after the race exited %d, want an error naming %s:\n%s", code, theirs, applied)
	}
	if code, state := tf.run("state", "list"); code != 0 || regexp.MustCompile(`irsa_service_account_binding`).MatchString(state) {
		t.Errorf("state after the failed apply: %s", state)
	}
	a, err := c.association("api")
	if err != nil || a == nil || aws.ToString(a.Association.AssociationId) != theirs || aws.ToString(a.Association.RoleArn) != role {
		t.Errorf("the other creator's association changed: %v %v", a, err)
	}
	if err := c.checkUntouched("api", before)(nil); err != nil {
		t.Error(err)
	}
}

func onlyPods(pods map[string]corev1.Pod) []string {
	var names []string
	for name := range pods {
		names = append(names, name)
	}
	return names
}

// waitPropagated waits until the emulator has no change on its way to the
// data plane.
func waitPropagated(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		p, err := testenv.EKSPropagation(context.Background())
		if err == nil && p.Pending == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("the EKS emulator did not propagate its changes")
}
