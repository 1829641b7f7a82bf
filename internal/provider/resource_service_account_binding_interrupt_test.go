package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// providerBuild is the provider built from this checkout, once per test
// binary, for the tests that run terraform themselves.
var providerBuild struct {
	sync.Once
	dir string
	err error
}

// terraformCLI runs the real terraform (or tofu) against a provider binary
// built from this checkout, as a user's pipeline does: the interrupt tests
// need a terraform process to signal, which terraform-plugin-testing does
// not hand out.
type terraformCLI struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newTerraformCLI(t *testing.T, config string) *terraformCLI {
	t.Helper()
	config = "terraform {\n  required_providers {\n    irsa = { source = \"irsa-dev/irsa\" }\n  }\n}\n" + config
	return newTerraformCLIWith(t, map[string]string{"main.tf": config}, nil)
}

// newTerraformCLIWith writes files into a fresh working directory;
// overrides adds dev_overrides for other providers (address: directory).
func newTerraformCLIWith(t *testing.T, files map[string]string, overrides map[string]string) *terraformCLI {
	t.Helper()
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if bin == "" {
		bin = "terraform"
	}
	root, err := testenv.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	providerBuild.Do(func() {
		// In the environment's state directory, which testenv down removes.
		providerBuild.dir = filepath.Join(os.Getenv("IRSA_TESTENV_STATE"), "provider-under-test")
		build := exec.Command("go", "build", "-o", filepath.Join(providerBuild.dir, "terraform-provider-irsa"), ".")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			providerBuild.err = fmt.Errorf("build the provider: %w\n%s", err, out)
		}
	})
	if providerBuild.err != nil {
		t.Fatal(providerBuild.err)
	}
	providerDir := providerBuild.dir
	dir := t.TempDir()
	rc := filepath.Join(dir, "terraformrc")
	var lines strings.Builder
	for addr, d := range map[string]string{testenv.ProviderAddress: providerDir, "registry.opentofu.org/irsa-dev/irsa": providerDir} {
		fmt.Fprintf(&lines, "    %q = %q\n", addr, d)
	}
	for addr, d := range overrides {
		fmt.Fprintf(&lines, "    %q = %q\n", addr, d)
	}
	rcText := "disable_checkpoint = true\nprovider_installation {\n  dev_overrides {\n" + lines.String() + "  }\n  direct {}\n}\n"
	if err := os.WriteFile(rc, []byte(rcText), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	return &terraformCLI{t: t, bin: bin, dir: dir, env: env}
}

func (tf *terraformCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tf.bin, args...)
	cmd.Dir = tf.dir
	cmd.Env = tf.env
	return cmd
}

// run runs terraform to the end and returns its exit code and output.
func (tf *terraformCLI) run(args ...string) (int, string) {
	tf.t.Helper()
	// Not t.Context(): the cleanup's destroy runs after it is canceled.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := tf.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped
		return exit.ExitCode(), out.String()
	}
	if err != nil {
		tf.t.Fatalf("%s %v: %v", tf.bin, args, err)
	}
	return 0, out.String()
}

// plannedActions is what a saved plan would do to each resource.
func (tf *terraformCLI) plannedActions() map[string][]string {
	tf.t.Helper()
	if code, out := tf.run("plan", "-input=false", "-no-color", "-out=tfplan"); code != 0 {
		tf.t.Fatalf("plan exited %d:\n%s", code, out)
	}
	code, out := tf.run("show", "-json", "tfplan")
	if code != 0 {
		tf.t.Fatalf("show exited %d:\n%s", code, out)
	}
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		tf.t.Fatalf("decode plan: %v\n%s", err, out)
	}
	actions := map[string][]string{}
	for _, rc := range plan.ResourceChanges {
		actions[rc.Address] = rc.Change.Actions
	}
	return actions
}

// Ctrl-C in the middle of recycling: terraform stops, the binding is saved
// untainted with the annotation in place, the next plan updates it in place,
// and the next apply finishes the job on the same ServiceAccount.
func TestAccServiceAccountBinding_interruptedApplyConverges(t *testing.T) {
	testAccPreCheck(t)
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1")
	}
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
	var out bytes.Buffer
	apply := tf.command(ctx, "apply", "-auto-approve", "-input=false", "-no-color")
	apply.Stdout, apply.Stderr = &out, &out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = apply.Wait(); close(exited) }()
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("terraform exited before the rollout started")
		default:
		}
		d, err := c.client.AppsV1().Deployments(c.ns).Get(ctx, "api", metav1.GetOptions{})
		return err == nil && d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "", nil
	})
	if err != nil {
		t.Fatalf("the rollout never started:\n%s", out.String())
	}
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
	if err := c.checkAnnotations("api", map[string]string{kube.RoleARNAnnotation: testRoleA})(nil); err != nil {
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
