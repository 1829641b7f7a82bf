package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// Components a fault test can stop and start again, by their names in the
// state file.
const (
	ComponentAPIServer         = "kube-apiserver"
	ComponentControllerManager = "kube-controller-manager"
	ComponentWebhook           = "pod-identity-webhook"
	// ComponentEKS is the EKS API emulator (cmd/eks-api).
	ComponentEKS = "eks-api"
	// ComponentEKSAuth serves EKS Auth and the Pod Identity Agent
	// stand-in (cmd/eks-auth).
	ComponentEKSAuth = "eks-auth"
)

// Kill ends component name at once (SIGKILL: a crash, not a shutdown). The
// environment stays recorded: Restart brings the component back, and Load
// reports the environment broken until then.
func (e *Env) Kill(name string) error {
	p, err := e.process(name)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Restart starts component name again, unless it runs, with the flags,
// ports and data it had, waits until it is ready, and records its new PID.
// A kube-apiserver restarted this way finds everything in etcd as it was;
// the other components reconnect by themselves.
func (e *Env) Restart(ctx context.Context, name string) error {
	p, err := e.process(name)
	if err != nil {
		return err
	}
	if p.Alive() {
		return nil
	}
	if p.Path == "" {
		return fmt.Errorf("%s was started by an older testenv that did not record its command line: restart the environment (make testenv-down testenv-up)", name)
	}
	np, err := startProcess(p.Name, p.Path, p.Args, p.Log, p.Env, e.Owned)
	if err != nil {
		return err
	}
	*p = *np
	if err := e.save(); err != nil {
		return err
	}
	switch name {
	case ComponentAPIServer:
		return e.waitAPIServer(ctx)
	case ComponentWebhook:
		ca, err := os.ReadFile(e.CACert)
		if err != nil {
			return err
		}
		return pollHTTP(ctx, name, trustingClient(ca), e.WebhookURL+"/healthz", e.Processes)
	case ComponentEKS:
		return pollHTTP(ctx, name, http.DefaultClient, e.EKSURL+eksapi.AdminPrefix+"healthz", e.Processes)
	case ComponentEKSAuth:
		return e.waitEKSAuth(ctx)
	}
	return nil
}

func (e *Env) process(name string) (*Process, error) {
	for _, p := range e.Processes {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no component %q in the environment in %s", name, e.StateDir)
}

// KillComponent and RestartComponent act on the exported environment (see
// Main), for tests.
func KillComponent(name string) error {
	e, err := exported()
	if err != nil {
		return err
	}
	return e.Kill(name)
}

// RestartComponent starts a component KillComponent ended; see Env.Restart.
func RestartComponent(ctx context.Context, name string) error {
	e, err := exported()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout+10*time.Second)
	defer cancel()
	return e.Restart(ctx, name)
}

func exported() (*Env, error) {
	dir := os.Getenv("IRSA_TESTENV_STATE")
	if dir == "" {
		return nil, errors.New("IRSA_TESTENV_STATE is not set: run against `make testenv-up` or from testenv.Main")
	}
	return readState(dir)
}
