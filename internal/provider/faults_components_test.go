package provider

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// Faults of the environment's own components: the API server killed in the
// middle of an apply, the pod identity webhook down.

// savedBinding is the binding as `terraform show -json` has it in state.
type savedBinding struct {
	Tainted   bool
	RoleARN   string
	StalePods []string
}

func (tf *terraformCLI) savedBinding() savedBinding {
	tf.t.Helper()
	code, out := tf.run("show", "-json", "-no-color")
	if code != 0 {
		tf.t.Fatalf("show exited %d:\n%s", code, out)
	}
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string `json:"address"`
					Tainted bool   `json:"tainted"`
					Values  struct {
						RoleARN   string `json:"role_arn"`
						StalePods []struct {
							Name string `json:"name"`
						} `json:"stale_pods"`
					} `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(out), &state); err != nil {
		tf.t.Fatalf("decode state: %v\n%s", err, out)
	}
	for _, r := range state.Values.RootModule.Resources {
		if r.Address == resourceAddr {
			b := savedBinding{Tainted: r.Tainted, RoleARN: r.Values.RoleARN}
			for _, p := range r.Values.StalePods {
				b.StalePods = append(b.StalePods, p.Name)
			}
			sort.Strings(b.StalePods)
			return b
		}
	}
	tf.t.Fatalf("%s is not in state:\n%s", resourceAddr, out)
	return savedBinding{}
}

// mustMatch fails unless out matches pattern; Terraform wraps diagnostics,
// so patterns use \s+ between words.
func mustMatch(t *testing.T, what, pattern, out string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(out) {
		t.Fatalf("%s: output does not match %s:\n%s", what, pattern, out)
	}
}

// killUntilCleanup kills a component and makes sure it runs again when the
// test ends, however it ends: later tests need the environment whole.
func killUntilCleanup(t *testing.T, name string) {
	t.Helper()
	if err := testenv.KillComponent(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testenv.RestartComponent(context.Background(), name); err != nil {
			t.Errorf("restart %s: %v", name, err)
		}
	})
}

// The API server killed (SIGKILL, as a crash) while an apply waits for the
// rollout it started, and kept down past the binding's timeout: the apply
// fails and says why, state keeps the new role with the pods it could not
// check, and once the API server is back the next apply waits for the same
// rollout instead of starting another. The ServiceAccount is the same one,
// and nothing is left over: one ReplicaSet per revision, as many pods as
// replicas.
func TestFaultAPIServer_killedMidApplyConverges(t *testing.T) {
	faultTest(t)
	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	c := newTestCluster(t)
	c.createSA("api")
	const timeouts = `
  timeouts = {
    update = "10s"
  }`
	tf := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, timeouts))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	if err := testenv.WaitWebhookMutates(t.Context(), c.client, c.ns, "api", true); err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			// One new pod at a time, each Ready 2 s before it counts: the
			// rollout is still under way when the API server goes.
			MinReadySeconds: 2,
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			}},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: podTemplate("api", "api"),
		},
	}
	if _, err := c.client.AppsV1().Deployments(c.ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := c.waitPods("api", 3)
	phase("deployment ready")
	sa, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}

	tf.configure(bindingConfig(c.ns, "api", testRoleB, timeouts))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	inFlight := tf.startApplyUntilRollout(ctx, c, "api")
	apply, out, exited := inFlight.cmd, inFlight.out, inFlight.exited
	killUntilCleanup(t, testenv.ComponentAPIServer)
	phase("rollout started, API server killed")
	<-exited
	phase("apply exited")
	if apply.ProcessState.ExitCode() == 0 {
		t.Fatalf("apply succeeded with the API server down:\n%s", out.String())
	}
	t.Logf("apply with the API server killed:\n%s", out.String())
	mustMatch(t, "the failed apply", `(?s)Error: Unable to Recycle Pods: Kubernetes API Server Unreachable.*connection\s+refused`, out.String())

	// State, read with the API server still down: the new role, not
	// tainted, and every pod it could not check counted as stale.
	saved := tf.savedBinding()
	if saved.Tainted || saved.RoleARN != testRoleB || len(saved.StalePods) == 0 {
		t.Fatalf("state after the failed apply: %+v; want role %s, untainted, with stale pods", saved, testRoleB)
	}

	if err := testenv.RestartComponent(t.Context(), testenv.ComponentAPIServer); err != nil {
		t.Fatal(err)
	}
	// The controller-manager's work queues back off per object while the
	// API server is away (5 s, 10 s, 20 s, 40 s, ...): restarted, it
	// resumes the rollout at once instead of up to a minute later. What
	// the provider sees is the same, a rollout under way.
	if err := testenv.KillComponent(testenv.ComponentControllerManager); err != nil {
		t.Fatal(err)
	}
	if err := testenv.RestartComponent(t.Context(), testenv.ComponentControllerManager); err != nil {
		t.Fatal(err)
	}
	phase("API server ready again, controller-manager restarted")
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleB})(nil); err != nil {
		t.Fatal(err)
	}
	if actions := tf.plannedActions()[resourceAddr]; len(actions) > 1 || (len(actions) == 1 && actions[0] != "update" && actions[0] != "no-op") {
		t.Fatalf("the plan after the failed apply would %v the binding; want an in-place update", actions)
	}
	tf.configure(bindingConfig(c.ns, "api", testRoleB, `
  timeouts = {
    update = "2m"
  }`))
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply after the API server came back exited %d:\n%s", code, out)
	}
	phase("converged")
	if err := c.checkReplaced("api", before, 3, testRoleB)(nil); err != nil {
		t.Fatal(err)
	}
	now, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	if now.UID != sa.UID {
		t.Errorf("the ServiceAccount was re-created")
	}
	// The first revision and the restart for role B; a third would be a
	// second rollout started for the same change.
	rss, err := c.client.AppsV1().ReplicaSets(c.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil {
		t.Fatal(err)
	}
	var revisions []string
	for _, rs := range rss.Items {
		revisions = append(revisions, rs.Annotations["deployment.kubernetes.io/revision"])
	}
	slices.Sort(revisions)
	if !slices.Equal(revisions, []string{"1", "2"}) {
		t.Errorf("ReplicaSet revisions %v, want [1 2]", revisions)
	}
	pods, err := c.client.CoreV1().Pods(c.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Errorf("%d pods in the namespace, want the deployment's 3", len(pods.Items))
	}
	if code, out := tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Errorf("plan after converging exited %d, want 0:\n%s", code, out)
	}
}

// The pod identity webhook down, registered with failurePolicy Ignore as
// AWS ships it: the API server admits pods without credentials. Creating a
// binding then stops at the readiness gate before any pod is touched, and
// says why; pods that start meanwhile without credentials show as drift;
// applying again while the webhook is down fails; with the webhook back,
// apply converges.
func TestFaultWebhook_downWithFailurePolicyIgnore(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	killUntilCleanup(t, testenv.ComponentWebhook)

	tf := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, ""))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })
	code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color")
	// A warning on create, not an error: an error would taint the binding.
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	mustMatch(t, "create with the webhook down", `(?s)Warning: Unable to Recycle Pods: Pod Identity Webhook Not Ready.*`+
		`failurePolicy\s+Ignore.*No\s+pod\s+was\s+restarted`, out)
	if err := c.checkUntouched("api", before)(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA})(nil); err != nil {
		t.Fatal(err)
	}
	if saved := tf.savedBinding(); saved.Tainted || !slices.Equal(saved.StalePods, sorted(names(before))) {
		t.Fatalf("state after create: %+v; want untainted, with stale pods %v", saved, sorted(names(before)))
	}
	if code, out := tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 2 {
		t.Fatalf("plan exited %d, want 2 (changes: the stale pods):\n%s", code, out)
	}

	// A pod that starts now is admitted without credentials.
	scale, err := c.client.AppsV1().Deployments(c.ns).GetScale(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 3
	if _, err := c.client.AppsV1().Deployments(c.ns).UpdateScale(t.Context(), "api", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	all := c.waitPods("api", 3)
	for name, p := range all {
		if ok, _ := credentialedOracle(&p, oracleWant{Role: testRoleA}); ok {
			t.Fatalf("pod %s got credentials with the webhook down", name)
		}
	}
	if code, out := tf.run("apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("refresh exited %d:\n%s", code, out)
	}
	if saved := tf.savedBinding(); !slices.Equal(saved.StalePods, sorted(names(all))) {
		t.Fatalf("stale_pods after the scale-up: %v, want %v", saved.StalePods, sorted(names(all)))
	}

	// Applying again is an update, and an update that cannot recycle fails.
	code, out = tf.run("apply", "-auto-approve", "-input=false", "-no-color")
	if code == 0 {
		t.Fatalf("apply with the webhook down succeeded:\n%s", out)
	}
	mustMatch(t, "update with the webhook down", `(?s)Error: Unable to Recycle Pods: Pod Identity Webhook Not Ready`, out)
	if err := c.checkUntouched("api", all)(nil); err != nil {
		t.Fatal(err)
	}

	if err := testenv.RestartComponent(t.Context(), testenv.ComponentWebhook); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitWebhookMutates(t.Context(), c.client, c.ns, "api", true); err != nil {
		t.Fatal(err)
	}
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply with the webhook back exited %d:\n%s", code, out)
	}
	if err := c.checkReplaced("api", all, 3, testRoleA)(nil); err != nil {
		t.Fatal(err)
	}
	if code, out := tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Errorf("plan after converging exited %d, want 0:\n%s", code, out)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
