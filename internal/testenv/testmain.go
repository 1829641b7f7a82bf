package testenv

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// Main is TestMain for packages whose tests need the environment. With
// TF_ACC unset it just runs the tests (they skip themselves). Otherwise it
// uses the environment that `make testenv-up` left running, or starts a
// private one for this test binary and stops it when the tests end, when they
// fail, and when the binary is interrupted.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv("TF_ACC") == "" {
		return m.Run()
	}
	ctx := context.Background()
	root, err := FindRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	stateDir := os.Getenv("IRSA_TESTENV_STATE")
	if stateDir == "" {
		stateDir = DefaultStateDir(root)
	}
	if e, err := Load(ctx, stateDir); err == nil {
		e.export()
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "irsa-testenv-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "testenv: no running environment in %s; starting one for this test binary in %s\n", stateDir, tmp)
	e, err := Up(ctx, Options{StateDir: filepath.Join(tmp, "env"), Root: root, Owned: true, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		_ = os.RemoveAll(tmp)
		return 1
	}
	stop := func() {
		if err := e.Down(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stop:", err)
		}
		_ = os.RemoveAll(tmp)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		stop()
		os.Exit(130)
	}()
	defer stop()
	e.export()
	return m.Run()
}

// export makes this process a client of e. Acceptance tests get a CLI
// configuration without dev_overrides: terraform-plugin-testing serves the
// provider in process and must not be pointed at a binary.
func (e *Env) export() {
	for k, v := range e.Vars() {
		_ = os.Setenv(k, v)
	}
	_ = os.Setenv("TF_CLI_CONFIG_FILE", e.acceptanceRC())
}

func (e *Env) acceptanceRC() string { return filepath.Join(e.StateDir, "terraformrc-acceptance") }
