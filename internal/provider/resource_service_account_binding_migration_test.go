package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// migrationConfig is a binding of mechanism, nothing else set.
func migrationConfig(ns, sa, role, mechanism string) string {
	return mechanismConfig(ns, sa, role, mechanism, "")
}

// checkSDKIdentity asserts the SDK's credential chain run as a live pod of
// app answers with a session of role, through the provider the mechanism
// implies: web identity for IRSA, the container credentials endpoint for
// Pod Identity.
func (c *testCluster) checkSDKIdentity(app, role string, podIdentity bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		pods := c.pods(app)
		if len(pods) == 0 {
			return fmt.Errorf("app=%s has no live pod", app)
		}
		for _, p := range pods {
			id, err := testenv.IdentityOf(context.Background(), &p, p.Spec.Containers[0].Name)
			if err != nil {
				return fmt.Errorf("the SDK's credential chain as pod %s: %w", p.Name, err)
			}
			if want := assumedRole(role); !strings.HasPrefix(id.ARN, want) {
				return fmt.Errorf("pod %s is %s, want a session of %s", p.Name, id.ARN, want)
			}
			if web := strings.Contains(id.Source, "WebIdentity"); web == podIdentity {
				return fmt.Errorf("pod %s got its credentials from %s, not from %s", p.Name, id.Source, map[bool]string{true: "the container credentials endpoint", false: "web identity"}[podIdentity])
			}
		}
		return nil
	}
}

// TestAccMigration_bothWays: one in-place update moves a binding from IRSA
// to EKS Pod Identity (association, gate, recycle, the annotations removed
// last), and another moves it back (annotations, association deleted,
// gate, recycle). After each, every pod is new, Ready, and the SDK's chain
// in it gets the role through the mechanism's own path.
func TestAccMigration_bothWays(t *testing.T) {
	c := newTestCluster(t)
	irsaRole := trustedRole(t, "system:serviceaccount:"+c.ns+":api")
	piRole := podIdentityRole(t, "pi-migrate")
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	first := c.waitPods("api", 2)
	var onIRSA, onPodIdentity map[string]corev1.Pod
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: migrationConfig(c.ns, "api", irsaRole, "irsa"),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", first, 2, irsaRole),
					c.checkSDKIdentity("api", irsaRole, false),
				),
			},
			{
				PreConfig: func() { onIRSA = c.pods("api") },
				Config:    migrationConfig(c.ns, "api", piRole, "pod_identity"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("mechanism"), knownvalue.StringExact("pod_identity")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_id"), knownvalue.StringRegexp(regexp.MustCompile(`^a-`))),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("stale_pods"), knownvalue.ListExact(nil)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkPodIdentityPods("api", onIRSA, 2, piRole)(s) },
					c.checkSDKIdentity("api", piRole, true),
					c.checkAssociation("api", piRole),
					// Removed last, and only what the binding set.
					c.checkAnnotations("api", map[string]string{}),
				),
			},
			{
				PreConfig: func() { onPodIdentity = c.pods("api") },
				Config:    migrationConfig(c.ns, "api", irsaRole, "irsa"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("mechanism"), knownvalue.StringExact("irsa")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_id"), knownvalue.Null()),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("stale_pods"), knownvalue.ListExact(nil)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error { return c.checkReplaced("api", onPodIdentity, 2, irsaRole)(s) },
					c.checkSDKIdentity("api", irsaRole, false),
					c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: irsaRole}),
					func(*terraform.State) error {
						if a, err := c.association("api"); err != nil || a != nil {
							return fmt.Errorf("the association must be gone after the move back (%v): %w", a, err)
						}
						return nil
					},
				),
			},
		},
	})
}

// TestAccMigration_interruptedResumes: Ctrl-C in the middle of the move to
// Pod Identity leaves every pod with working credentials (old pods IRSA,
// new pods Pod Identity, each proven by the SDK's chain), the binding
// saved untainted with its IRSA annotations still in place, and the next
// apply finishes the move in place.
func TestAccMigration_interruptedResumes(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	irsaRole := trustedRole(t, "system:serviceaccount:"+c.ns+":api")
	piRole := podIdentityRole(t, "pi-interrupt")
	c.createSA("api")
	c.createSlowDeployment("api", 3)
	c.waitPods("api", 3)
	tf := newTerraformCLI(t, migrationConfig(c.ns, "api", irsaRole, "irsa"))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })
	if code, out := tf.run("apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("apply of the IRSA binding exited %d:\n%s", code, out)
	}
	onIRSA := c.waitPods("api", 3)
	if err := c.checkSDKIdentity("api", irsaRole, false)(nil); err != nil {
		t.Fatal(err)
	}

	tf.configure(migrationConfig(c.ns, "api", piRole, "pod_identity"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	inFlight := tf.startApplyUntilRollout(ctx, c, "api")
	// Interrupted once the first replacement runs on Pod Identity and
	// before the last old pod is gone.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		for _, p := range c.pods("api") {
			if ok, _ := podIdentityOracle(&p); ok && isReady(p) {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("no pod moved to Pod Identity: %v\n%s", err, inFlight.out.String())
	}
	if err := inFlight.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-inFlight.exited
	t.Logf("interrupted apply:\n%s", inFlight.out.String())

	// Every live pod works, on one mechanism or the other.
	irsaPods, piPods := 0, 0
	for _, p := range c.pods("api") {
		id, err := testenv.IdentityOf(context.Background(), &p, p.Spec.Containers[0].Name)
		if err != nil {
			t.Fatalf("pod %s has no working credentials after the interrupt: %v", p.Name, err)
		}
		if ok, _ := podIdentityOracle(&p); ok {
			piPods++
			if !strings.HasPrefix(id.ARN, assumedRole(piRole)) {
				t.Errorf("pod %s on Pod Identity is %s, want %s", p.Name, id.ARN, piRole)
			}
		} else if ok, reason := credentialedOracle(&p, oracleWant{Role: irsaRole}); ok {
			irsaPods++
			if !strings.HasPrefix(id.ARN, assumedRole(irsaRole)) {
				t.Errorf("pod %s on IRSA is %s, want %s", p.Name, id.ARN, irsaRole)
			}
		} else {
			t.Errorf("pod %s carries neither mechanism's credentials: %s", p.Name, reason)
		}
	}
	t.Logf("after the interrupt: %d pods on IRSA, %d on Pod Identity", irsaPods, piPods)
	if irsaPods == 0 || piPods == 0 {
		t.Errorf("the interrupt did not come mid-recycle (%d pods on IRSA, %d on Pod Identity)", irsaPods, piPods)
	}
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: irsaRole})(nil); err != nil {
		t.Fatalf("the IRSA annotations must stay until the move is verified: %v", err)
	}

	if actions := tf.plannedActions()[resourceAddr]; len(actions) != 1 || actions[0] != "update" {
		t.Fatalf("the plan after the interrupt would %v the binding; want an in-place update", actions)
	}
	if code, out := tf.run("apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("apply after the interrupt exited %d:\n%s", code, out)
	}
	if err := c.checkPodIdentityPods("api", onIRSA, 3, piRole)(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.checkAnnotations("api", map[string]string{})(nil); err != nil {
		t.Fatal(err)
	}
	if code, out := tf.run("plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("plan after the move finished exited %d, want 0:\n%s", code, out)
	}
}

// createSlowDeployment is a Deployment whose rollout replaces one pod at a
// time, each Ready 3 s before it counts: long enough to interrupt.
func (c *testCluster) createSlowDeployment(name string, replicas int32) {
	c.t.Helper()
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas:        ptr.To(replicas),
			MinReadySeconds: 3,
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			}},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, name),
		},
	}
	if _, err := c.client.AppsV1().Deployments(c.ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}
