package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksauth"
)

// ComponentEKSAuth is the process serving EKS Auth and the Pod Identity
// Agent stand-in (cmd/eks-auth).
const ComponentEKSAuth = "eks-auth"

// clusterName is the local cluster's EKS name, the one the EKS API emulator
// answers to (its ClusterName, on the branch that adds it): EKS Auth serves
// this cluster only, and the agent asks for it.
const clusterName = "irsa-local"

func clusterARN() string {
	return fmt.Sprintf("arn:aws:eks:%s:%s:cluster/%s", Region, AccountID, clusterName)
}

// eksAuthAssociationsFile is where SetPodIdentityAssociations keeps the
// associations EKS Auth reads: not in the webhook's directory, which the
// webhook watches.
const eksAuthAssociationsFile = "eks-auth/associations.json"

// buildEKSAuth builds the EKS Auth process and the program the SDK chain
// helper runs (CallerIdentity) into binDir.
func buildEKSAuth(ctx context.Context, root, binDir string, log io.Writer, b *Binaries) error {
	b.EKSAuth = filepath.Join(binDir, ComponentEKSAuth)
	if err := goBuild(ctx, root, binDir, "-s -w", log, "./internal/testenv/cmd/eks-auth", "./internal/testenv/cmd/caller-identity"); err != nil {
		return fmt.Errorf("build eks-auth and caller-identity: %w", err)
	}
	return nil
}

// prepareEKSAuth chooses the addresses of EKS Auth and the agent, so that
// the webhook can be started with the agent's URL, and creates the
// associations file, empty.
func (e *Env) prepareEKSAuth(taken []int) error {
	ports, err := freePortsExcept(2, taken)
	if err != nil {
		return err
	}
	e.EKSAuthURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	e.AgentURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	e.EKSAuthAssociations = filepath.Join(e.StateDir, eksAuthAssociationsFile)
	if err := os.MkdirAll(filepath.Dir(e.EKSAuthAssociations), 0o755); err != nil {
		return err
	}
	return eksauth.WriteAssociationsFile(e.EKSAuthAssociations, nil)
}

// startEKSAuth starts EKS Auth and the agent on the addresses
// prepareEKSAuth chose. They review tokens with the API server and assume
// roles in moto only when asked, so they can start before either is ready.
func (e *Env) startEKSAuth(ctx context.Context, bins Binaries, run func(string, string, []string, ...string) error) error {
	apiURL, err := neturl.Parse(e.EKSAuthURL)
	if err != nil {
		return err
	}
	agentURL, err := neturl.Parse(e.AgentURL)
	if err != nil {
		return err
	}
	if err = run(ComponentEKSAuth, bins.EKSAuth, []string{
		"--bind-address=127.0.0.1",
		"--port=" + apiURL.Port(),
		"--agent-port=" + agentURL.Port(),
		"--kubeconfig=" + e.Kubeconfig,
		"--cluster-name=" + clusterName,
		"--cluster-arn=" + clusterARN(),
		"--account-id=" + AccountID,
		"--region=" + Region,
		"--iam-endpoint=" + e.MotoURL,
		"--sts-endpoint=" + e.MotoURL,
		"--associations-file=" + e.EKSAuthAssociations,
		"--access-key-id=" + AccessKeyID,
		"--secret-access-key=" + SecretAccessKey,
	}); err != nil {
		return err
	}
	for _, url := range []string{e.EKSAuthURL, e.AgentURL} {
		if err := pollHTTP(ctx, ComponentEKSAuth, http.DefaultClient, url+eksauth.AdminPrefix+"healthz", e.Processes); err != nil {
			return err
		}
	}
	return nil
}

// agentCredentialsURL is the webhook's --container-credentials-full-uri:
// the agent stand-in, so a pod's injected environment works as it is. The
// SDKs accept a plain-http full URI on loopback, as on EKS's 169.254.170.23.
func (e *Env) agentCredentialsURL() string {
	return e.AgentURL + eksauth.CredentialsPath
}

// freePortsExcept is freePorts avoiding ports already handed out (and
// released, so the kernel may offer them again) for other components.
func freePortsExcept(n int, taken []int) ([]int, error) {
	for range 20 {
		ports, err := freePorts(n)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(ports, func(p int) bool { return slices.Contains(taken, p) }) {
			return ports, nil
		}
	}
	return nil, fmt.Errorf("no %d free loopback ports apart from %v", n, taken)
}

// EKSAuthSession is what EKS Auth recorded of the credentials whose access
// key is accessKeyID: role, session name and session tags (moto keeps no
// tags, so this is where a test reads them).
func EKSAuthSession(ctx context.Context, accessKeyID string) (*eksauth.Session, error) {
	url := os.Getenv("AWS_ENDPOINT_URL_EKS_AUTH")
	if url == "" {
		return nil, fmt.Errorf("AWS_ENDPOINT_URL_EKS_AUTH is not set: run against `make testenv-up` or from testenv.Main")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+eksauth.AdminPrefix+"sessions/"+accessKeyID, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("EKS Auth issued no session with access key %s (%s)", accessKeyID, resp.Status)
	}
	var s eksauth.Session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}
