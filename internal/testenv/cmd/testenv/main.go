// Command testenv starts and stops the local EKS-like environment.
//
//	testenv up      build what is missing, start (or reuse) the environment, write .testenv/env.sh
//	testenv down    stop every process by PID and remove .testenv
//	testenv status  report whether the environment in .testenv is running
//	testenv create-role -name NAME -service-account NS/SA
//	                create an IAM role (in moto) whose trust policy allows NS/SA
//	testenv kill NAME     kill one component (kube-apiserver, pod-identity-webhook, eks-api, eks-auth, ...) as a crash would
//	testenv restart NAME  start a killed component again with the same flags and data
//	testenv kubectl print the path of a kubectl (building the pinned one if none is on PATH)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

func main() {
	stateDir := flag.String("state", ".testenv", "state directory of the environment")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: testenv [-state DIR] up|down|status|kill NAME|restart NAME|kubectl|kubernetes-provider|create-role -name NAME -service-account NS/SA\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, flag.Arg(0), *stateDir, flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd, stateDir string, args []string) error {
	switch cmd {
	case "create-role":
		fs := flag.NewFlagSet("create-role", flag.ContinueOnError)
		name := fs.String("name", "", "role name")
		sa := fs.String("service-account", "", "NAMESPACE/NAME the trust policy allows")
		podIdentity := fs.Bool("pod-identity", false, "trust EKS Pod Identity for it too (a role in migration)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		ns, saName, ok := strings.Cut(*sa, "/")
		if *name == "" || !ok {
			return fmt.Errorf("usage: testenv create-role -name NAME -service-account NAMESPACE/NAME")
		}
		e, err := testenv.Load(ctx, stateDir)
		if err != nil {
			return fmt.Errorf("the environment is not running (make testenv-up): %w", err)
		}
		create := e.CreateRole
		if *podIdentity {
			create = e.CreateRoleForBoth
		}
		arn, err := create(ctx, *name, ns, saName)
		if err != nil {
			return err
		}
		fmt.Println(arn)
		return nil
	case "identity":
		// Who the SDK's credential chain is in a pod's first container.
		if len(args) != 1 || !strings.Contains(args[0], "/") {
			return fmt.Errorf("usage: testenv identity NAMESPACE/POD")
		}
		ns, podName, _ := strings.Cut(args[0], "/")
		e, err := testenv.Load(ctx, stateDir)
		if err != nil {
			return fmt.Errorf("the environment is not running (make testenv-up): %w", err)
		}
		id, err := e.IdentityOfPod(ctx, ns, podName)
		if err != nil {
			return err
		}
		fmt.Printf("%s (%s)\n", id.ARN, id.Source)
		return nil
	case "up":
		began := time.Now()
		e, err := testenv.Up(ctx, testenv.Options{StateDir: stateDir, Log: os.Stderr})
		if err != nil {
			return err
		}
		envSh := filepath.Join(e.StateDir, "env.sh")
		if cwd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(cwd, envSh); err == nil {
				envSh = rel
			}
		}
		fmt.Printf("environment ready in %.1fs\n  API server  %s\n  OIDC issuer %s\n  IAM (moto)  %s\n  webhook     %s%s\n  EKS API     %s\n  EKS Auth    %s\n  agent       %s\nuse it with: . %s\n",
			time.Since(began).Seconds(), e.APIServer, e.Issuer, e.MotoURL, e.WebhookURL, upstreamNote(e), eksNote(e), eksAuthNote(e), agentNote(e), envSh)
		return nil
	case "kubectl":
		path, err := testenv.EnsureKubectl(ctx, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Println(path)
		return nil
	case "kubernetes-provider":
		dir, err := testenv.EnsureKubernetesProvider(ctx, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Println(dir)
		return nil
	case "down":
		return testenv.DownDir(stateDir)
	case "kill", "restart":
		if len(args) != 1 {
			return fmt.Errorf("usage: testenv %s NAME (%s, %s, %s, %s, ...)", cmd, testenv.ComponentAPIServer, testenv.ComponentWebhook, testenv.ComponentEKS, testenv.ComponentEKSAuth)
		}
		// The component functions act on the environment this names.
		if err := os.Setenv("IRSA_TESTENV_STATE", stateDir); err != nil {
			return err
		}
		if cmd == "kill" {
			return testenv.KillComponent(args[0])
		}
		return testenv.RestartComponent(ctx, args[0])
	case "status":
		e, err := testenv.Load(ctx, stateDir)
		if err != nil {
			return fmt.Errorf("not running: %w", err)
		}
		fmt.Printf("running since %s, %d processes, API server %s\n", e.Started.Format(time.RFC3339), len(e.Processes), e.APIServer)
		return nil
	default:
		return fmt.Errorf("unknown command %q (want up, down, status, kill, restart, kubectl, kubernetes-provider, create-role or identity)", cmd)
	}
}

// olderEnv is what is printed for a component an environment started
// before it existed (and reused) lacks.
const olderEnv = "none: restart this older environment (make testenv-down testenv-up)"

// eksNote is the EKS API emulator's URL and cluster, or why there is none.
func eksNote(e *testenv.Env) string {
	if e.EKSURL == "" {
		return olderEnv
	}
	return e.EKSURL + " (cluster " + e.ClusterName + ")"
}

func eksAuthNote(e *testenv.Env) string {
	if e.EKSAuthURL == "" {
		return olderEnv
	}
	return e.EKSAuthURL
}

func agentNote(e *testenv.Env) string {
	if e.AgentURL == "" {
		return olderEnv
	}
	return e.AgentURL + "/v1/credentials (pods' AWS_CONTAINER_CREDENTIALS_FULL_URI)"
}

func upstreamNote(e *testenv.Env) string {
	if e.Upstream {
		return " (upstream amazon-eks-pod-identity-webhook)"
	}
	return ""
}
