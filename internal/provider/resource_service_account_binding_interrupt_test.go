package provider

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

// Ctrl-C in the middle of recycling: terraform stops, the binding is saved
// untainted with the annotation in place, the next plan updates it in place,
// and the next apply finishes the job on the same ServiceAccount.
func TestAccServiceAccountBinding_interruptedApplyConverges(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			// One new pod at a time, each Ready 3 s before it counts: the
			// rollout takes long enough to be interrupted.
			MinReadySeconds: 3,
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
	sa, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	tf := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, ""))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	inFlight := tf.startApplyUntilRollout(ctx, c, "api")
	apply, out, exited := inFlight.cmd, inFlight.out, inFlight.exited
	if err := apply.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-exited
	t.Logf("interrupted apply:\n%s", out.String())

	// The binding is in state, untainted, and the annotation is in place.
	code, show := tf.run("show", "-json", "-no-color")
	if code != 0 {
		t.Fatalf("show exited %d:\n%s", code, show)
	}
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string `json:"address"`
					Tainted bool   `json:"tainted"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(show), &state); err != nil {
		t.Fatal(err)
	}
	if res := state.Values.RootModule.Resources; len(res) != 1 || res[0].Address != resourceAddr || res[0].Tainted {
		t.Fatalf("state after the interrupt: %+v, want %s saved and untainted", res, resourceAddr)
	}
	if err := c.checkAnnotations("api", map[string]string{irsa.RoleARNAnnotation: testRoleA})(nil); err != nil {
		t.Fatal(err)
	}

	// The next plan never replaces the binding.
	if actions := tf.plannedActions()[resourceAddr]; len(actions) > 1 || (len(actions) == 1 && actions[0] != "update" && actions[0] != "no-op") {
		t.Fatalf("the plan after the interrupt would %v the binding; want an in-place update", actions)
	}
	if code, out := tf.run("apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("apply after the interrupt exited %d:\n%s", code, out)
	}
	if err := c.checkReplaced("api", before, 3, testRoleA)(nil); err != nil {
		t.Fatal(err)
	}
	now, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	if now.UID != sa.UID {
		t.Errorf("the ServiceAccount was re-created")
	}
	if code, out := tf.run("plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("plan after converging exited %d, want 0:\n%s", code, out)
	}
}
