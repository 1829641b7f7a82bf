package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// KubernetesVersion is the release the build modules under hack/testenv pin,
// stamped into the binaries' version (ldflags) so kubectl's skew check
// passes. etcd and kwok have no such constant: their go.mod under
// hack/testenv is what pins them.
const KubernetesVersion = "v1.37.2"

// component is one binary set built from a pinned module under hack/testenv.
type component struct {
	name     string   // directory under hack/testenv and cache prefix
	packages []string // packages to build, each becomes a binary
	ldflags  string
	// extra runs after the build with the cache directory, for files that
	// ship with the module rather than being compiled (kwok's stages).
	extra func(ctx context.Context, moduleDir, outDir string) error
}

// kubectlComponent is built only on demand: machines of this kind usually
// have a kubectl, and the demo is its only user.
var kubectlComponent = component{
	name:     "kubectl",
	packages: []string{"k8s.io/kubernetes/cmd/kubectl"},
	ldflags:  kubeLDFlags(),
}

// EnsureKubectl returns kubectl from PATH, or builds the pinned one.
func EnsureKubectl(ctx context.Context, log io.Writer) (string, error) {
	if path, err := exec.LookPath("kubectl"); err == nil {
		return path, nil
	}
	return PinnedKubectl(ctx, log)
}

// PinnedKubectl returns the kubectl of KubernetesVersion, building it the
// first time (cached), whatever kubectl PATH holds: the benchmark compares
// against kubectl and wants the cluster's own version, not a wrapper that
// picks one per call.
func PinnedKubectl(ctx context.Context, log io.Writer) (string, error) {
	dir, err := ensureOnDemand(ctx, kubectlComponent, log)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kubectl"), nil
}

// kubernetesProviderComponent is the hashicorp/kubernetes provider, built on
// demand for the composition tests (about 3 minutes once, then cached).
var kubernetesProviderComponent = component{
	name:     "kubernetes-provider",
	packages: []string{"github.com/hashicorp/terraform-provider-kubernetes"},
	ldflags:  "-s -w",
}

// EnsureKubernetesProvider returns the directory holding the pinned
// terraform-provider-kubernetes binary, building it the first time.
func EnsureKubernetesProvider(ctx context.Context, log io.Writer) (string, error) {
	return ensureOnDemand(ctx, kubernetesProviderComponent, log)
}

// ensureOnDemand builds a component the environment itself does not run.
func ensureOnDemand(ctx context.Context, c component, log io.Writer) (string, error) {
	root, err := FindRoot()
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dir, err := ensureComponent(ctx, root, cache, c, log)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", c.name, err)
	}
	return dir, nil
}

func kubeLDFlags() string {
	v := "k8s.io/component-base/version"
	major, minor := kubeMajorMinor(KubernetesVersion)
	return fmt.Sprintf("-s -w -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=%[3]s -X %[1]s.gitMinor=%[4]s -X %[1]s.gitTreeState=clean",
		v, KubernetesVersion, major, minor)
}

func components() []component {
	return []component{
		{
			name: "kube",
			packages: []string{
				"k8s.io/kubernetes/cmd/kube-apiserver",
				"k8s.io/kubernetes/cmd/kube-controller-manager",
				"k8s.io/kubernetes/cmd/kube-scheduler",
			},
			ldflags: kubeLDFlags(),
		},
		{
			name:     "etcd",
			packages: []string{"go.etcd.io/etcd/server/v3"},
			ldflags:  "-s -w",
			// go build names a major-version package after the element
			// before /v3.
			extra: func(_ context.Context, _, outDir string) error {
				return os.Rename(filepath.Join(outDir, "server"), filepath.Join(outDir, "etcd"))
			},
		},
		{
			name:     "kwok",
			packages: []string{"sigs.k8s.io/kwok/cmd/kwok"},
			ldflags:  "-s -w",
			extra:    writeKwokStages,
		},
	}
}

func kubeMajorMinor(version string) (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	return parts[0], parts[1]
}

// Binaries are the absolute paths of everything the environment runs.
type Binaries struct {
	APIServer         string
	ControllerManager string
	Scheduler         string
	Etcd              string
	Kwok              string
	KwokStages        string
	Webhook           string
	// EKSAPI is the EKS API emulator (cmd/eks-api).
	EKSAPI string
	// EKSAuth serves EKS Auth and the Pod Identity Agent stand-in (cmd/eks-auth).
	EKSAuth string
	// UpstreamWebhook is true when Webhook is amazon-eks-pod-identity-webhook.
	UpstreamWebhook bool
	Provider        string
}

// CacheDir is where built components are kept across clones and runs:
// $IRSA_TESTENV_CACHE, else $XDG_CACHE_HOME/terraform-provider-irsa, else
// ~/.cache/terraform-provider-irsa. CI runs on a fresh clone each time, so a
// cache inside the clone would be rebuilt on every run.
func CacheDir() (string, error) {
	if d := os.Getenv("IRSA_TESTENV_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set IRSA_TESTENV_CACHE: %w", err)
	}
	return filepath.Join(base, "terraform-provider-irsa"), nil
}

// EnsureBinaries builds whatever is missing from the cache and returns the
// paths. Builds are keyed by the build module's go.mod and go.sum, the Go
// version and the ldflags, so a version bump is a cache miss, never a stale hit.
func EnsureBinaries(ctx context.Context, root, stateDir string, log io.Writer) (Binaries, error) {
	cache, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	dirs := map[string]string{}
	for _, c := range components() {
		dir, err := ensureComponent(ctx, root, cache, c, log)
		if err != nil {
			return Binaries{}, fmt.Errorf("build %s: %w", c.name, err)
		}
		dirs[c.name] = dir
	}
	b := Binaries{
		APIServer:         filepath.Join(dirs["kube"], "kube-apiserver"),
		ControllerManager: filepath.Join(dirs["kube"], "kube-controller-manager"),
		Scheduler:         filepath.Join(dirs["kube"], "kube-scheduler"),
		Etcd:              filepath.Join(dirs["etcd"], "etcd"),
		Kwok:              filepath.Join(dirs["kwok"], "kwok"),
		KwokStages:        filepath.Join(dirs["kwok"], "stages.yaml"),
	}

	// The project's own binaries are rebuilt on every start: the Go build
	// cache makes that cheap, and it keeps them in step with the checkout.
	binDir := filepath.Join(stateDir, "bin")
	if bin := os.Getenv("IRSA_TESTENV_WEBHOOK_BIN"); bin != "" {
		if b.Webhook, err = exec.LookPath(bin); err != nil {
			return Binaries{}, fmt.Errorf("IRSA_TESTENV_WEBHOOK_BIN=%s: %w", bin, err)
		}
		b.UpstreamWebhook = true
	} else {
		b.Webhook = filepath.Join(binDir, "pod-identity-webhook")
		if err := goBuild(ctx, root, binDir, "-s -w", log, "./internal/testenv/cmd/pod-identity-webhook"); err != nil {
			return Binaries{}, fmt.Errorf("build pod-identity-webhook: %w", err)
		}
	}
	b.EKSAPI = filepath.Join(binDir, ComponentEKS)
	if err := goBuild(ctx, root, binDir, "-s -w", log, "./internal/testenv/cmd/eks-api"); err != nil {
		return Binaries{}, fmt.Errorf("build the EKS API emulator: %w", err)
	}
	if err := buildEKSAuth(ctx, root, binDir, log, &b); err != nil {
		return Binaries{}, err
	}
	if b.Provider, err = BuildProvider(ctx, root, stateDir, log); err != nil {
		return Binaries{}, err
	}
	return b, nil
}

// BuildProvider builds the provider from the checkout into the state
// directory, where the environment's dev_overrides point terraform.
func BuildProvider(ctx context.Context, root, stateDir string, log io.Writer) (string, error) {
	providerDir := filepath.Join(stateDir, "provider")
	if err := goBuild(ctx, root, providerDir, "", log, "."); err != nil {
		return "", fmt.Errorf("build the provider: %w", err)
	}
	return filepath.Join(providerDir, "terraform-provider-irsa"), nil
}

func ensureComponent(ctx context.Context, root, cache string, c component, log io.Writer) (string, error) {
	moduleDir := filepath.Join(root, "hack", "testenv", c.name)
	key, err := componentKey(moduleDir, c)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, c.name+"-"+key)
	if _, err := os.Stat(filepath.Join(out, ".complete")); err == nil {
		return out, nil
	}
	fmt.Fprintf(log, "building %s (first run only; cached in %s)\n", c.name, out)
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := goBuild(ctx, moduleDir, tmp, c.ldflags, log, c.packages...); err != nil {
		return "", err
	}
	if c.extra != nil {
		if err := c.extra(ctx, moduleDir, tmp); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(out)
	return out, os.Rename(tmp, out)
}

func componentKey(moduleDir string, c component) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(moduleDir, f))
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH, c.ldflags, strings.Join(c.packages, " "))
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func goBuild(ctx context.Context, dir, outDir, ldflags string, log io.Writer, pkgs ...string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-o", outDir + string(os.PathSeparator)}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	// -mod=readonly: the committed go.sum is the pin; a build must not
	// silently move it. GOTOOLCHAIN=local: never download a toolchain.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly -buildvcs=false")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return nil
}

// kwokStageFiles are the stages that make fake nodes Ready and pods Running,
// Ready, completed and deleted quickly.
var kwokStageFiles = []string{
	"kustomize/stage/node/fast/node-initialize.yaml",
	"kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"kustomize/stage/pod/fast/pod-ready.yaml",
	"kustomize/stage/pod/fast/pod-complete.yaml",
	"kustomize/stage/pod/fast/pod-delete.yaml",
}

func writeKwokStages(ctx context.Context, moduleDir, outDir string) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	dirOut, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("locate the kwok module: %w", err)
	}
	kwokDir := strings.TrimSpace(string(dirOut))
	var docs []string
	for _, f := range kwokStageFiles {
		data, err := os.ReadFile(filepath.Join(kwokDir, f))
		if err != nil {
			return err
		}
		docs = append(docs, strings.TrimSpace(string(data)))
	}
	return os.WriteFile(filepath.Join(outDir, "stages.yaml"), []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644)
}

// FindRoot walks up from the working directory to the provider's module root.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/irsa-dev/terraform-provider-irsa\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the terraform-provider-irsa checkout (no go.mod of the provider found above the working directory)")
		}
		dir = parent
	}
}
