package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-dev/terraform-provider-irsa/internal/pluginlog"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// TestAccPluginLogs_writtenOnlyWhenTheCLIShowsThem runs the provider binary
// behind a wrapper that keeps its stderr, where a plugin's logs go. Without
// TF_LOG the CLI discards provider logs, and the plugin writes none (see
// internal/pluginlog); with TF_LOG_PROVIDER the framework's and the
// provider's logs are all there.
func TestAccPluginLogs_writtenOnlyWhenTheCLIShowsThem(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	tf := newTerraformCLI(t, bindingConfig(c.ns, "api", testRoleA, ""))
	stderr := tf.keepProviderStderr()
	var quiet []string
	for _, kv := range tf.env {
		if !pluginlog.Heard([]string{kv}) {
			quiet = append(quiet, kv)
		}
	}
	tf.env = quiet

	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	if code, out := tf.run("plan", "-refresh-only", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan -refresh-only exited %d:\n%s", code, out)
	}
	written := readFile(t, stderr)
	if n := strings.Count(written, `"@module":"sdk`) + strings.Count(written, `"@module":"provider`); n != 0 {
		t.Errorf("with no TF_LOG the plugin wrote %d SDK or provider log lines (%d bytes of stderr), which the CLI drops:\n%.2000s", n, len(written), written)
	}

	if err := os.Truncate(stderr, 0); err != nil {
		t.Fatal(err)
	}
	tf.env = append(quiet, "TF_LOG_PROVIDER=TRACE")
	if code, out := tf.run("plan", "-refresh-only", "-detailed-exitcode", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan -refresh-only with TF_LOG_PROVIDER exited %d:\n%s", code, out)
	}
	written = readFile(t, stderr)
	for _, want := range []string{`"@module":"sdk.proto"`, `"@module":"sdk.framework"`, "Calling provider defined Resource Read"} {
		if !strings.Contains(written, want) {
			t.Errorf("with TF_LOG_PROVIDER=TRACE the plugin's stderr (%d bytes) has no %s", len(written), want)
		}
	}
}

// keepProviderStderr points the CLI at a wrapper of the provider binary
// that appends the plugin's stderr to the returned file (the CLI then sees
// none of it).
func (tf *terraformCLI) keepProviderStderr() string {
	tf.t.Helper()
	dir := tf.t.TempDir()
	log := filepath.Join(dir, "stderr.log")
	binary := filepath.Join(providerBuild.dir, "terraform-provider-irsa")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q \"$@\" 2>>%q\n", binary, log)
	if err := os.WriteFile(filepath.Join(dir, "terraform-provider-irsa"), []byte(wrapper), 0o755); err != nil { //nolint:gosec // an executable, for the CLI to start
		tf.t.Fatal(err)
	}
	rc := filepath.Join(dir, "terraformrc")
	rcText := fmt.Sprintf("disable_checkpoint = true\nprovider_installation {\n  dev_overrides {\n    %q = %q\n    %q = %q\n  }\n  direct {}\n}\n",
		testenv.ProviderAddress, dir, "registry.opentofu.org/irsa-dev/irsa", dir)
	if err := os.WriteFile(rc, []byte(rcText), 0o600); err != nil {
		tf.t.Fatal(err)
	}
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		tf.t.Fatal(err)
	}
	// The last TF_CLI_CONFIG_FILE wins (os/exec keeps the last of a name).
	tf.env = append(tf.env, "TF_CLI_CONFIG_FILE="+rc)
	return log
}
