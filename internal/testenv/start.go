package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// startTimeout bounds how long any one component may take to become ready.
const startTimeout = 60 * time.Second

// WebhookConfigurationName is the MutatingWebhookConfiguration that routes pod
// creation to the pod identity webhook. Tests delete and restore it to
// simulate a webhook outage.
const WebhookConfigurationName = "pod-identity-webhook"

// WebhookOutageLabel on a namespace keeps the API server from calling the
// webhook for pods of that namespace: the webhook is "down" there.
const WebhookOutageLabel = "testenv.irsa.dev/webhook-outage"

func (e *Env) start(ctx context.Context, bins Binaries, log io.Writer) error {
	began := time.Now()
	ports, err := freePorts(12)
	if err != nil {
		return err
	}
	etcdPort, etcdPeer, apiPort, _, schedPort, whPort, whMetrics, motoPort, kwokPort :=
		ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7], ports[8]
	eksPort, eksAuthPort, agentPort := ports[9], ports[10], ports[11]
	certs, err := newPKI(filepath.Join(e.StateDir, "pki"))
	if err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	e.CACert = certs.CACert
	e.Issuer = newIssuer()
	e.APIServer = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	e.MotoURL = fmt.Sprintf("http://127.0.0.1:%d", motoPort)
	e.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", whPort)
	e.Kubeconfig = filepath.Join(e.StateDir, "kubeconfig")
	if err := writeKubeconfig(e.Kubeconfig, e.APIServer, certs); err != nil {
		return err
	}
	logs := filepath.Join(e.StateDir, "logs")
	run := func(name, path string, args []string, env ...string) error {
		p, err := startProcess(name, path, args, filepath.Join(logs, name+".log"), env, e.Owned)
		if err != nil {
			return err
		}
		e.Processes = append(e.Processes, p)
		return nil
	}
	step := func(what string) { fmt.Fprintf(log, "  %-28s %5.1fs\n", what, time.Since(began).Seconds()) }

	// moto takes a few seconds to import; start it first and wait for it last.
	motoCmd, err := findMoto()
	if err != nil {
		return err
	}
	if err := run("moto", motoCmd[0], append(motoCmd[1:], "-H", "127.0.0.1", "-p", strconv.Itoa(motoPort))); err != nil {
		return err
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if err := run("etcd", bins.Etcd, []string{
		"--name=default",
		"--data-dir=" + filepath.Join(e.StateDir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		// Test data: durability is not worth the fsync latency.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}); err != nil {
		return err
	}
	if err := pollHTTP(ctx, "etcd", http.DefaultClient, etcdURL+"/health", e.Processes); err != nil {
		return err
	}
	step("etcd ready")

	if err := run("kube-apiserver", bins.APIServer, []string{
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		// One apiserver on loopback: no endpoint reconciler for the
		// kubernetes Service (it rejects 127.0.0.1 as an endpoint).
		"--endpoint-reconciler-type=none",
		"--etcd-servers=" + etcdURL,
		"--tls-cert-file=" + certs.ServingCert, "--tls-private-key-file=" + certs.ServingKey,
		"--client-ca-file=" + certs.CACert,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=" + e.Issuer,
		"--service-account-jwks-uri=" + e.Issuer + "/keys",
		"--service-account-key-file=" + certs.SAVerifyKey,
		"--service-account-signing-key-file=" + certs.SASigningKey,
		"--api-audiences=" + e.Issuer + ",sts.amazonaws.com",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--profiling=false",
	}); err != nil {
		return err
	}
	rest, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return err
	}
	if err := e.waitAPIServer(ctx); err != nil {
		return err
	}
	step("kube-apiserver ready")
	rest.QPS, rest.Burst = 100, 200
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}

	if err := run("kube-controller-manager", bins.ControllerManager, []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--authentication-kubeconfig=" + e.Kubeconfig, "--authorization-kubeconfig=" + e.Kubeconfig,
		// No serving port: nothing reads it, and a fault test restarts the
		// controller-manager, whose fixed port an outgoing connection may
		// have taken as its ephemeral source port meanwhile (the restart
		// then failed with "address already in use" and left the cluster
		// without controllers).
		"--secure-port=0",
		"--cert-dir=" + filepath.Join(e.StateDir, "controller-manager"),
		"--leader-elect=false",
		"--use-service-account-credentials",
		"--root-ca-file=" + certs.CACert,
		"--service-account-private-key-file=" + certs.SASigningKey,
		"--cluster-signing-cert-file=" + certs.CACert, "--cluster-signing-key-file=" + certs.CAKey,
		"--kube-api-qps=200", "--kube-api-burst=400",
	}); err != nil {
		return err
	}
	schedConfig := filepath.Join(e.StateDir, "scheduler.yaml")
	if err := os.WriteFile(schedConfig, []byte(schedulerConfig(e.Kubeconfig)), 0o644); err != nil {
		return err
	}
	if err := run("kube-scheduler", bins.Scheduler, []string{
		"--config=" + schedConfig,
		"--authentication-kubeconfig=" + e.Kubeconfig, "--authorization-kubeconfig=" + e.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(schedPort),
	}); err != nil {
		return err
	}
	if err := run("kwok", bins.Kwok, []string{
		"--kubeconfig=" + e.Kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
		"--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:" + strconv.Itoa(kwokPort),
		"--config=" + bins.KwokStages,
	}); err != nil {
		return err
	}
	if err := createFakeNode(ctx, client, e.Processes); err != nil {
		return err
	}
	step("kwok node Ready")

	// Before the webhook: it points pods at the agent.
	e.prepareEKSAuth(eksAuthPort, agentPort)
	if err := e.startEKSAuth(ctx, bins, run); err != nil {
		return err
	}
	step("EKS Auth and agent ready")

	if err := e.startWebhook(ctx, bins, certs, whPort, whMetrics, run); err != nil {
		return err
	}
	if err := registerWebhook(ctx, client, e.WebhookURL, certs.caPEM); err != nil {
		return err
	}
	step("pod identity webhook ready")

	// After the webhook: the emulator keeps the identities file it watches
	// and the associations EKS Auth reads.
	if err := e.startEKS(ctx, bins, eksPort, run); err != nil {
		return err
	}
	step("EKS API emulator ready")

	// The controller-manager is ready for our purposes once its
	// ServiceAccount controller has created the default ServiceAccount.
	if err := e.poll(ctx, "kube-controller-manager (default ServiceAccount)", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return err
	}
	step("controller-manager ready")

	if err := pollHTTP(ctx, "moto_server", http.DefaultClient, e.MotoURL+"/moto-api/", e.Processes); err != nil {
		return err
	}
	if err := seedIAM(ctx, e.MotoURL, e.Issuer); err != nil {
		return fmt.Errorf("seed the OIDC provider in moto: %w", err)
	}
	step("moto_server seeded")
	return nil
}

func (e *Env) startWebhook(ctx context.Context, bins Binaries, certs *pki, port, metricsPort int, run func(string, string, []string, ...string) error) error {
	args := []string{
		"--in-cluster=false",
		"--kubeconfig=" + e.Kubeconfig,
		"--port=" + strconv.Itoa(port),
		"--metrics-port=" + strconv.Itoa(metricsPort),
		"--tls-cert=" + certs.ServingCert,
		"--tls-key=" + certs.ServingKey,
		"--service-account-lookup-grace-period=" + envOr("IRSA_TESTENV_WEBHOOK_GRACE", "0s"),
	}
	if err := e.prepareContainerCredentials(); err != nil {
		return err
	}
	args = append(args, e.containerCredentialsArgs()...)
	if !bins.UpstreamWebhook {
		args = append(args, "--bind-address=127.0.0.1", "--cache-delay="+envOr("IRSA_TESTENV_WEBHOOK_CACHE_DELAY", "0s"))
	}
	if err := run("pod-identity-webhook", bins.Webhook, args); err != nil {
		return err
	}
	return pollHTTP(ctx, "pod-identity-webhook", trustingClient(certs.caPEM), e.WebhookURL+"/healthz", e.Processes)
}

// findMoto returns the command that starts moto's server: moto_server on
// PATH, else the pyenv installation the machine image ships, else a python3
// that can import it.
func findMoto() ([]string, error) {
	if path, err := exec.LookPath("moto_server"); err == nil {
		return []string{path}, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		if matches, _ := filepath.Glob(filepath.Join(home, ".pyenv", "versions", "*", "bin", "moto_server")); len(matches) > 0 {
			return []string{matches[len(matches)-1]}, nil
		}
	}
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import moto.server").Run() == nil {
			return []string{py, "-m", "moto.server"}, nil
		}
	}
	return nil, errors.New("moto_server is not on PATH and no python3 can import moto.server; install the python package moto[server] (it ships with the machine image)")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// poll waits for cond, failing early with the log of a component that died.
func (e *Env) poll(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	return pollAlive(ctx, what, e.Processes, cond)
}

func pollAlive(ctx context.Context, what string, procs []*Process, cond wait.ConditionWithContextFunc) error {
	var died *Process
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		for _, p := range procs {
			if !p.Alive() {
				died = p
				return false, fmt.Errorf("%s exited", p.Name)
			}
		}
		return cond(ctx)
	})
	if died != nil {
		return fmt.Errorf("waiting for %s: %s exited; last lines of %s:\n%s", what, died.Name, died.Log, tail(died.Log, 15))
	}
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

func pollHTTP(ctx context.Context, what string, hc *http.Client, url string, procs []*Process) error {
	return pollAlive(ctx, what, procs, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not up yet: keep polling until the deadline
		}
		_ = resp.Body.Close()
		return resp.StatusCode < 500, nil
	})
}

// apiserverReady checks /readyz once with the admin credential.
func (e *Env) apiserverReady(ctx context.Context) error {
	rest, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

func (e *Env) waitAPIServer(ctx context.Context) error {
	return e.poll(ctx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		return e.apiserverReady(ctx) == nil, nil
	})
}

func writeKubeconfig(path, server string, certs *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["irsa-testenv"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: certs.CACert}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: certs.AdminCert, ClientKey: certs.AdminKey}
	cfg.Contexts["irsa-testenv"] = &clientcmdapi.Context{Cluster: "irsa-testenv", AuthInfo: "admin"}
	cfg.CurrentContext = "irsa-testenv"
	return clientcmd.WriteToFile(*cfg, path)
}

func schedulerConfig(kubeconfig string) string {
	// The default client QPS (50) makes scheduling thousands of pods for the
	// benchmarks take minutes; the scheduler is not what we measure.
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 500
  burst: 1000
leaderElection:
  leaderElect: false
`, kubeconfig)
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
