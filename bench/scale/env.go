package main

import (
	"context"
	"fmt"
	"os"
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
	b := &bench{env: env, terraformPath: o.terraform, runs: o.runs, loadStart: loadavg(), commit: built, parallelism: o.parallelism, kubectl: kubectl, work: filepath.Join(root, "bench", ".work")}
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
	b.cliConfig = filepath.Join(b.work, "terraformrc")
	irsaDir := filepath.Dir(env.Provider)
	rc := fmt.Sprintf(`disable_checkpoint = true
provider_installation {
  dev_overrides {
    "registry.terraform.io/irsa-dev/irsa"        = %q
    "registry.opentofu.org/irsa-dev/irsa"        = %q
    "registry.terraform.io/hashicorp/kubernetes" = %q
    "registry.opentofu.org/hashicorp/kubernetes" = %q
  }
  direct {}
}
`, irsaDir, irsaDir, k8sProvider, k8sProvider)
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
	return b, nil
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
