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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

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
	return newTerraformCLIWith(t, map[string]string{"main.tf": requiredProviders + config}, nil)
}

const requiredProviders = "terraform {\n  required_providers {\n    irsa = { source = \"irsa-dev/irsa\" }\n  }\n}\n"

// configure replaces the configuration of a directory newTerraformCLI made.
func (tf *terraformCLI) configure(config string) {
	tf.t.Helper()
	if err := os.WriteFile(filepath.Join(tf.dir, "main.tf"), []byte(requiredProviders+config), 0o600); err != nil {
		tf.t.Fatal(err)
	}
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

// applyInFlight is a terraform apply started in the background.
type applyInFlight struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

// startApplyUntilRollout starts terraform apply and returns once the
// Deployment name in c's namespace has been restarted, so a test can
// interrupt or break the apply in the middle of its rollout.
func (tf *terraformCLI) startApplyUntilRollout(ctx context.Context, c *testCluster, name string) *applyInFlight {
	tf.t.Helper()
	a := &applyInFlight{cmd: tf.command(ctx, "apply", "-auto-approve", "-input=false", "-no-color"), out: &bytes.Buffer{}, exited: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		tf.t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-a.exited:
			return false, fmt.Errorf("terraform exited before the rollout started")
		default:
		}
		d, err := c.client.AppsV1().Deployments(c.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "", nil
	})
	if err != nil {
		tf.t.Fatalf("the rollout never started: %v\n%s", err, a.out.String())
	}
	return a
}
