// Package testenv builds and runs the local EKS-like environment that the
// provider's tests, benchmarks and demo run against: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok on loopback, the pod
// identity webhook registered through a real MutatingWebhookConfiguration,
// moto_server as IAM and STS, and the cluster's EKS identity plane: the
// project's EKS API emulator (package eksapi: DescribeCluster and the Pod
// Identity associations, which it propagates to the webhook and to EKS
// Auth), EKS Auth and a Pod Identity Agent stand-in (package eksauth), so
// that CallerIdentity can prove a pod's credentials with the SDK's chain.
//
// Everything is started as separate processes recorded by PID in a state
// directory, so an environment started by `testenv up` can be reused by any
// number of test binaries and stopped later by `testenv down`.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Fixed identity of the emulated AWS account and cluster.
const (
	AccountID       = "123456789012"
	Region          = "us-east-1"
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
	issuerBase      = "https://oidc.eks." + Region + ".amazonaws.com/id/"
	// ProviderAddress is the registry address the dev_overrides point at.
	ProviderAddress = "registry.terraform.io/irsa-dev/irsa"
	// FakeNodeName is the kwok node pods are scheduled to.
	FakeNodeName = "kwok-node-0"
)

// Options configure Up.
type Options struct {
	// StateDir holds certificates, data, logs, kubeconfig and the state file.
	StateDir string
	// Root is the provider checkout (for the build modules). Found from the
	// working directory when empty.
	Root string
	// Owned ties the processes' lives to this process (test binaries);
	// otherwise they keep running after it exits (`testenv up`).
	Owned bool
	// Log receives progress and build output.
	Log io.Writer
}

// Env is a running environment, as recorded in its state file.
type Env struct {
	StateDir   string     `json:"state_dir"`
	Issuer     string     `json:"issuer"`
	APIServer  string     `json:"apiserver"`
	Kubeconfig string     `json:"kubeconfig"`
	MotoURL    string     `json:"moto_url"`
	WebhookURL string     `json:"webhook_url"`
	CACert     string     `json:"ca_cert"`
	Provider   string     `json:"provider"`
	Upstream   bool       `json:"upstream_webhook"`
	Owned      bool       `json:"owned"`
	Started    time.Time  `json:"started"`
	Processes  []*Process `json:"processes"`

	// ContainerCredentialsConfig is the webhook's identities file
	// (--watch-container-credentials-config), written by the EKS emulator.
	ContainerCredentialsConfig string `json:"container_credentials_config"`
	// EKSURL is the EKS API emulator; ClusterName the cluster it serves.
	EKSURL      string `json:"eks_url"`
	ClusterName string `json:"cluster_name"`
	// EKSAuthURL is the EKS Auth API (AWS_ENDPOINT_URL_EKS_AUTH), AgentURL
	// the Pod Identity Agent stand-in the webhook points pods at.
	EKSAuthURL string `json:"eks_auth_url"`
	AgentURL   string `json:"agent_url"`
}

const stateFile = "state.json"

// DefaultStateDir is .testenv in the checkout.
func DefaultStateDir(root string) string { return filepath.Join(root, ".testenv") }

// Load returns the environment recorded in stateDir when every one of its
// processes is still running and the API server answers; otherwise an error
// that says why it cannot be reused.
func Load(ctx context.Context, stateDir string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		return nil, err
	}
	var e Env
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", stateFile, err)
	}
	for _, p := range e.Processes {
		if !p.Alive() {
			return &e, fmt.Errorf("%s (pid %d) is not running; see %s", p.Name, p.PID, p.Log)
		}
	}
	if err := e.apiserverReady(ctx); err != nil {
		return &e, err
	}
	return &e, nil
}

// Up starts an environment in opts.StateDir, or returns the one already
// running there. A half-dead environment is stopped and replaced.
func Up(ctx context.Context, opts Options) (*Env, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return nil, err
		}
		opts.Root = root
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	if e, err := Load(ctx, stateDir); err == nil {
		fmt.Fprintf(opts.Log, "reusing the environment in %s (started %s)\n", stateDir, e.Started.Format(time.RFC3339))
		// The checkout may have changed since: terraform must run this code.
		if _, err := BuildProvider(ctx, opts.Root, stateDir, opts.Log); err != nil {
			return nil, err
		}
		// And the SDK chain helper must run this checkout's program.
		if err := buildEKSAuth(ctx, opts.Root, filepath.Join(stateDir, "bin"), opts.Log, &Binaries{}); err != nil {
			return nil, err
		}
		return e, nil
	} else if e != nil {
		fmt.Fprintf(opts.Log, "replacing a broken environment: %v\n", err)
		_ = e.Down()
	}
	if err := clearStateDir(stateDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "logs"), 0o755); err != nil {
		return nil, err
	}

	bins, err := EnsureBinaries(ctx, opts.Root, stateDir, opts.Log)
	if err != nil {
		return nil, err
	}
	e := &Env{StateDir: stateDir, Owned: opts.Owned, Provider: bins.Provider, Upstream: bins.UpstreamWebhook, Started: time.Now()}
	if err := e.start(ctx, bins, opts.Log); err != nil {
		// Never leave half an environment running.
		_ = e.Down()
		return nil, err
	}
	if err := e.save(); err != nil {
		_ = e.Down()
		return nil, err
	}
	return e, nil
}

// clearStateDir empties a previous environment's state directory, and
// refuses a non-empty directory that is not one (a mistyped -state).
func clearStateDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || len(entries) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	for _, marker := range []string{stateFile, "logs", "pki"} {
		if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
			return os.RemoveAll(dir)
		}
	}
	return fmt.Errorf("refusing to use %s: it is not empty and holds no environment state", dir)
}

// Down stops every process by PID and removes the state directory.
func (e *Env) Down() error {
	var errs []error
	// Reverse start order: clients before the API server, etcd last.
	for i := len(e.Processes) - 1; i >= 0; i-- {
		if err := e.Processes[i].Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(e.StateDir))
	}
	return errors.Join(errs...)
}

// DownDir stops the environment recorded in stateDir, if any.
func DownDir(stateDir string) error {
	e, err := readState(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		// Nothing recorded, nothing to stop; and a directory without a
		// state file is not ours to delete.
		return nil
	}
	if err != nil {
		return err
	}
	return e.Down()
}

// readState reads the state file of stateDir without checking that the
// environment runs.
func readState(stateDir string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		return nil, err
	}
	var e Env
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("corrupt %s, stop the processes by hand: %w", stateFile, err)
	}
	if e.StateDir == "" {
		e.StateDir = stateDir
	}
	return &e, nil
}

func (e *Env) save() error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.StateDir, stateFile), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(e.TerraformRC(), []byte(e.terraformRC()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(e.acceptanceRC(), []byte("disable_checkpoint = true\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.StateDir, "env.sh"), []byte(e.envSh()), 0o644)
}

// Vars are the environment variables a client of this environment needs.
func (e *Env) Vars() map[string]string {
	return map[string]string{
		"KUBECONFIG":                e.Kubeconfig,
		"KUBECACHEDIR":              filepath.Join(e.StateDir, "kubecache"),
		"AWS_ENDPOINT_URL_IAM":      e.MotoURL,
		"AWS_ENDPOINT_URL_STS":      e.MotoURL,
		"AWS_ENDPOINT_URL_EKS":      e.EKSURL,
		"IRSA_TESTENV_EKS_URL":      e.EKSURL,
		"IRSA_TESTENV_EKS_CLUSTER":  e.ClusterName,
		"AWS_ACCESS_KEY_ID":         AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     SecretAccessKey,
		"AWS_REGION":                Region,
		"AWS_EC2_METADATA_DISABLED": "true",
		"IRSA_TESTENV_OIDC_ISSUER":  e.Issuer,
		"IRSA_TESTENV_ACCOUNT_ID":   AccountID,
		"IRSA_TESTENV_STATE":        e.StateDir,
		"IRSA_TESTENV_WEBHOOK_URL":  e.WebhookURL,
		"IRSA_TESTENV_CA_CERT":      e.CACert,
		"IRSA_TESTENV_MOTO_URL":     e.MotoURL,
		"TF_CLI_CONFIG_FILE":        e.TerraformRC(),
		"CHECKPOINT_DISABLE":        "1",
		// The SDKs' variable for service ID "EKS Auth".
		"AWS_ENDPOINT_URL_EKS_AUTH": e.EKSAuthURL,
		"IRSA_TESTENV_AGENT_URL":    e.AgentURL,
	}
}

// TerraformRC is the CLI configuration whose dev_overrides point terraform at
// the provider built by Up.
func (e *Env) TerraformRC() string { return filepath.Join(e.StateDir, "terraformrc") }

func (e *Env) terraformRC() string {
	dir := filepath.Dir(e.Provider)
	return fmt.Sprintf(`# Written by testenv: use the provider built from this checkout.
disable_checkpoint = true
provider_installation {
  dev_overrides {
    %q = %q
    "registry.opentofu.org/irsa-dev/irsa" = %q
  }
  direct {}
}
`, ProviderAddress, dir, dir)
}

func (e *Env) envSh() string {
	vars := e.Vars()
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by `make testenv-up`. Use it with: . .testenv/env.sh\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(vars[k], "'", `'\''`))
	}
	return b.String()
}

func newIssuer() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return issuerBase + strings.ToUpper(hex.EncodeToString(b))
}
