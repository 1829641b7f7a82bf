package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// timeProviderModule is the build module pinning hashicorp/time, the no-op
// provider: the benchmark's alone, so it lives beside the benchmark rather
// than with the environment's components under hack/testenv.
const timeProviderModule = "hack/bench/time-provider"

// ensureTimeProvider returns the directory holding terraform-provider-time,
// built from its pinned module the first time (about half a minute) and
// cached beside the environment's builds, keyed the same way: the module's
// go.mod and go.sum and the Go version, so a version bump is a cache miss.
func ensureTimeProvider(ctx context.Context, root string, log io.Writer) (string, error) {
	cache, err := testenv.CacheDir()
	if err != nil {
		return "", err
	}
	moduleDir := filepath.Join(root, timeProviderModule)
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(moduleDir, f))
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	fmt.Fprintln(h, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	out := filepath.Join(cache, "time-provider-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(out, ".complete")); err == nil {
		return out, nil
	}
	fmt.Fprintf(log, "building time-provider (first run only; cached in %s)\n", out)
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp+string(os.PathSeparator), "github.com/hashicorp/terraform-provider-time")
	cmd.Dir = moduleDir
	cmd.Stdout, cmd.Stderr = log, log
	// -mod=readonly: the committed go.sum is the pin.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly -buildvcs=false")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build terraform-provider-time in %s: %w", moduleDir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(out)
	return out, os.Rename(tmp, out)
}

// timeProviderVersion is the hashicorp/time version pinned by its build module.
func timeProviderVersion(root string) string {
	data, _ := os.ReadFile(filepath.Join(root, timeProviderModule, "go.mod"))
	if m := regexp.MustCompile(`github.com/hashicorp/terraform-provider-time (\S+)`).FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return "unknown"
}
