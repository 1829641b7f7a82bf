package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// bench is the environment the benchmark runs in: its own local cluster,
// the CLIs it drives, and a working directory of terraform configurations.
type bench struct {
	env           *testenv.Env
	client        kubernetes.Interface
	terraformPath string
	timeVersion   string // of the no-op provider
	kubectl       string
	seq           int // commands run, numbering their logs
	loadStart     string
	commit        string // of the checkout the provider was built from
	runs          int
	parallelism   int
	idle          idleRate // the idle cluster's requests per second
	work          string   // configurations, states and logs; under bench/.work
	cliConfig     string   // terraform CLI configuration with both dev_overrides
	vars          []string
}

// up starts a fresh environment in stateDir (any previous one there is
// stopped and wiped: a fresh cluster is faster than deleting 5,000 pods) and
// finds or builds the peers. The provider measured is built from the
// checkout into stateDir by testenv.Up.
func up(ctx context.Context, o options, root string) (*bench, error) {
	if err := testenv.DownDir(o.stateDir); err != nil {
		return nil, fmt.Errorf("stop the previous benchmark environment in %s: %w", o.stateDir, err)
	}
	k8sProvider, err := testenv.EnsureKubernetesProvider(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	timeProvider, err := ensureTimeProvider(ctx, root, os.Stderr)
	if err != nil {
		return nil, err
	}
	kubectl, err := testenv.PinnedKubectl(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	built := commit(ctx)
	// Owned: were this process killed, the kernel stops the environment too;
	// not with -keep, whose point is an environment that outlives the run.
	env, err := testenv.Up(ctx, testenv.Options{StateDir: o.stateDir, Root: root, Owned: !o.keep, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	b := &bench{env: env, terraformPath: o.terraform, runs: o.runs, loadStart: loadavg(), commit: built, parallelism: o.parallelism, kubectl: kubectl, timeVersion: timeProviderVersion(root), work: filepath.Join(root, "bench", ".work")}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		return b, err
	}
	// The fixture creates thousands of objects; the environment is ours alone.
	cfg.QPS, cfg.Burst = 500, 1000
	if b.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return b, err
	}
	if err := os.RemoveAll(b.work); err != nil {
		return b, err
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return b, err
	}
	floorDir, err := buildSchemaFloor(ctx, root, filepath.Join(b.work, "schemafloor"))
	if err != nil {
		return b, err
	}
	b.cliConfig = filepath.Join(b.work, "terraformrc")
	irsaDir := filepath.Dir(env.Provider)
	rc := fmt.Sprintf(`disable_checkpoint = true
provider_installation {
  dev_overrides {
    "registry.terraform.io/irsa-dev/irsa"        = %q
    "registry.opentofu.org/irsa-dev/irsa"        = %q
    "registry.terraform.io/irsa-dev/irsa-floor"  = %q
    "registry.opentofu.org/irsa-dev/irsa-floor"  = %q
    "registry.terraform.io/hashicorp/kubernetes" = %q
    "registry.opentofu.org/hashicorp/kubernetes" = %q
    "registry.terraform.io/hashicorp/time"       = %q
    "registry.opentofu.org/hashicorp/time"       = %q
  }
  direct {}
}
`, irsaDir, irsaDir, floorDir, floorDir, k8sProvider, k8sProvider, timeProvider, timeProvider)
	if err := os.WriteFile(b.cliConfig, []byte(rc), 0o644); err != nil {
		return b, err
	}
	for k, v := range env.Vars() {
		b.vars = append(b.vars, k+"="+v)
	}
	b.vars = append(b.vars,
		"TF_CLI_CONFIG_FILE="+b.cliConfig,
		"KUBE_CONFIG_PATH="+env.Kubeconfig,
		"KUBECACHEDIR="+filepath.Join(b.work, "kubecache"),
		"TF_IN_AUTOMATION=1",
	)
	b.vars = append(b.vars, quietPlugins...)
	return b, nil
}

// quietPlugins turn every provider plugin's logs off, so that no tool pays
// for encoding lines the CLI throws away and the comparison is fair:
// terraform-plugin-log starts each logger at TRACE unless its variable says
// otherwise. The SDK's loggers (terraform-plugin-go, the framework, SDKv2's
// helpers and mux, which hashicorp/kubernetes uses) and each provider's own.
// Ours would turn its own off (internal/pluginlog) but, seeing TF_LOG_SDK*
// set, leaves the environment as it is: its own logger is named here too.
var quietPlugins = []string{
	"TF_LOG_SDK=OFF",
	"TF_LOG_SDK_PROTO=OFF",
	"TF_LOG_SDK_FRAMEWORK=OFF",
	"TF_LOG_SDK_HELPER_SCHEMA=OFF",
	"TF_LOG_SDK_HELPER_RESOURCE=OFF",
	"TF_LOG_SDK_MUX=OFF",
	"TF_LOG_PROVIDER_IRSA=OFF",
	"TF_LOG_PROVIDER_KUBERNETES=OFF",
	"TF_LOG_PROVIDER_TIME=OFF",
}

// down stops the environment, unless keep.
func (b *bench) down(keep bool) error {
	if b == nil || b.env == nil {
		return nil
	}
	if keep {
		fmt.Fprintf(os.Stderr, "leaving the environment in %s running (-keep): stop it with: go run ./internal/testenv/cmd/testenv -state %s down\n", b.env.StateDir, b.env.StateDir)
		return nil
	}
	return b.env.Down()
}

// environ is the environment of every command the benchmark runs.
func (b *bench) environ() []string {
	return append(os.Environ(), b.vars...)
}

// buildSchemaFloor builds bench/schemafloor from the checkout the way the
// environment builds the provider (testenv.BuildProvider), into dir as the
// plugin of the address irsa-dev/irsa-floor; it returns dir.
func buildSchemaFloor(ctx context.Context, root, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "terraform-provider-irsa-floor"), "./bench/schemafloor")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly -buildvcs=false")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build bench/schemafloor: %w", err)
	}
	return dir, nil
}
