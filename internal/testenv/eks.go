package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// ClusterName is the EKS name of the local cluster: what DescribeCluster
// and the Pod Identity association operations of the EKS API emulator
// answer to.
const ClusterName = "irsa-local"

// DefaultEKSPropagationDelay is how long an association change takes to
// reach the webhook unless IRSA_TESTENV_EKS_PROPAGATION_DELAY says
// otherwise: AWS says "several seconds".
const DefaultEKSPropagationDelay = 3 * time.Second

// eksStateFile keeps the emulator's associations across its restarts;
// eksAssociationsFile is where it writes them once propagated, for EKS
// Auth (eksapi.PropagatedAssociation).
const (
	eksStateFile        = "eks/state.json"
	eksAssociationsFile = "eks/associations.json"
)

func (e *Env) eksAssociationsPath() string { return filepath.Join(e.StateDir, eksAssociationsFile) }

// ClusterARN is the local cluster's ARN.
func ClusterARN() string { return eksapi.ClusterARN(Region, AccountID, ClusterName) }

// startEKS starts the EKS API emulator. It is the one writer of what EKS's
// data plane knows: the webhook's identities file (which must exist first:
// prepareContainerCredentials) and the propagated associations EKS Auth
// reads.
func (e *Env) startEKS(ctx context.Context, bins Binaries, port int, run func(string, string, []string, ...string) error) error {
	state := filepath.Join(e.StateDir, eksStateFile)
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		return err
	}
	major, minor := kubeMajorMinor(KubernetesVersion)
	e.EKSURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.ClusterName = ClusterName
	if err := run(ComponentEKS, bins.EKSAPI, []string{
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		"--cluster-name=" + ClusterName,
		"--region=" + Region,
		"--account-id=" + AccountID,
		"--issuer=" + e.Issuer,
		"--endpoint=" + e.APIServer,
		"--ca-file=" + e.CACert,
		"--kubernetes-version=" + major + "." + minor,
		"--created-at=" + e.Started.UTC().Format(time.RFC3339),
		"--iam-endpoint=" + e.MotoURL,
		"--identities-file=" + e.ContainerCredentialsConfig,
		"--associations-file=" + e.eksAssociationsPath(),
		"--state-file=" + state,
		"--propagation-delay=" + envOr("IRSA_TESTENV_EKS_PROPAGATION_DELAY", DefaultEKSPropagationDelay.String()),
	}); err != nil {
		return err
	}
	return pollHTTP(ctx, ComponentEKS, http.DefaultClient, e.EKSURL+eksapi.AdminPrefix+"healthz", e.Processes)
}

// These helpers act on the exported environment's EKS API emulator (see
// Main). The emulator is one per environment: a fault or delay a test sets
// applies to every test using it, so tests that set them must not run in
// parallel with tests that would notice, and must put them back.

// EKSClient is an EKS client for the exported environment's emulator, with
// the environment's static credentials and region.
func EKSClient(optFns ...func(*eks.Options)) (*eks.Client, error) {
	url := os.Getenv("AWS_ENDPOINT_URL_EKS")
	if url == "" {
		return nil, errors.New("AWS_ENDPOINT_URL_EKS is not set: run against `make testenv-up` or from testenv.Main")
	}
	return eks.New(eks.Options{
		Region:       Region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	}, optFns...), nil
}

// SetEKSFaults arms faults: the emulator answers the next requests with
// ThrottlingException or ServerException instead of acting. The zero
// value disarms them.
func SetEKSFaults(ctx context.Context, f eksapi.Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return eksAdmin(ctx, http.MethodPut, "faults", body, nil)
}

// SetEKSPropagationDelay sets how long after each change the webhook's
// identities file shows it (for changes made from now on).
func SetEKSPropagationDelay(ctx context.Context, d time.Duration) error {
	return eksAdmin(ctx, http.MethodPut, "propagation-delay", []byte(d.String()), nil)
}

// EKSRequestCounts is how many requests each EKS operation has received
// since the emulator started, faulted ones included.
func EKSRequestCounts(ctx context.Context) (map[string]int, error) {
	var counts map[string]int
	err := eksAdmin(ctx, http.MethodGet, "requests", nil, &counts)
	return counts, err
}

// EKSPropagation is what the identities file lists now and how many
// changes are still on their way to it.
func EKSPropagation(ctx context.Context) (eksapi.Propagation, error) {
	var p eksapi.Propagation
	err := eksAdmin(ctx, http.MethodGet, "propagation", nil, &p)
	return p, err
}

// SetAssociationOwner sets the ownerArn of association id, as if an EKS
// add-on (ownerArn is the add-on's ARN) had created it.
func SetAssociationOwner(ctx context.Context, id, ownerARN string) error {
	body, err := json.Marshal(map[string]string{"ownerArn": ownerARN})
	if err != nil {
		return err
	}
	return eksAdmin(ctx, http.MethodPut, "associations/"+neturl.PathEscape(id)+"/owner", body, nil)
}

// EKSRequestCounts is the package function's answer for this environment's
// emulator, for a process (the benchmark) that holds the Env instead of
// its exported variables.
func (e *Env) EKSRequestCounts(ctx context.Context) (map[string]int, error) {
	var counts map[string]int
	err := eksAdminAt(ctx, e.EKSURL, http.MethodGet, "requests", nil, &counts)
	return counts, err
}

// EKSPropagation is the package function's answer for this environment's
// emulator.
func (e *Env) EKSPropagation(ctx context.Context) (eksapi.Propagation, error) {
	var p eksapi.Propagation
	err := eksAdminAt(ctx, e.EKSURL, http.MethodGet, "propagation", nil, &p)
	return p, err
}

func eksAdmin(ctx context.Context, method, path string, body []byte, out any) error {
	url := os.Getenv("IRSA_TESTENV_EKS_URL")
	if url == "" {
		return errors.New("IRSA_TESTENV_EKS_URL is not set: run against `make testenv-up` (restart an environment older than the EKS API emulator) or from testenv.Main")
	}
	return eksAdminAt(ctx, url, method, path, body, out)
}

func eksAdminAt(ctx context.Context, base, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+eksapi.AdminPrefix+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("EKS API emulator: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("EKS API emulator %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
