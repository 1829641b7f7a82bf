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

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksauth"
)

// buildEKSAuth builds the EKS Auth process and the program the SDK chain
// helper runs (CallerIdentity) into binDir.
func buildEKSAuth(ctx context.Context, root, binDir string, log io.Writer, b *Binaries) error {
	b.EKSAuth = filepath.Join(binDir, ComponentEKSAuth)
	if err := goBuild(ctx, root, binDir, "-s -w", log, "./internal/testenv/cmd/eks-auth", "./internal/testenv/cmd/caller-identity"); err != nil {
		return fmt.Errorf("build eks-auth and caller-identity: %w", err)
	}
	return nil
}

// prepareEKSAuth sets the addresses of EKS Auth and the agent, so that the
// webhook can be started with the agent's URL.
func (e *Env) prepareEKSAuth(apiPort, agentPort int) {
	e.EKSAuthURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	e.AgentURL = fmt.Sprintf("http://127.0.0.1:%d", agentPort)
}

// startEKSAuth starts EKS Auth and the agent on the addresses
// prepareEKSAuth set. They review tokens with the API server, read the
// EKS API emulator's propagated associations and assume roles in moto only
// when asked, so they can start before any of those is ready (a missing
// associations file holds none).
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
		"--cluster-name=" + ClusterName,
		"--cluster-arn=" + ClusterARN(),
		"--account-id=" + AccountID,
		"--region=" + Region,
		"--iam-endpoint=" + e.MotoURL,
		"--sts-endpoint=" + e.MotoURL,
		"--associations-file=" + e.eksAssociationsPath(),
		"--access-key-id=" + AccessKeyID,
		"--secret-access-key=" + SecretAccessKey,
	}); err != nil {
		return err
	}
	return e.waitEKSAuth(ctx)
}

// waitEKSAuth waits until EKS Auth and the agent both answer.
func (e *Env) waitEKSAuth(ctx context.Context) error {
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
