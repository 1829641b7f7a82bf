package eksapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// These tests drive the emulator with the real SDK client through an
// httptest server: a typed error out of errors.As proves the status,
// X-Amzn-ErrorType and body are what the SDK's deserializer expects, and
// a field read back proves its JSON name and encoding.

const (
	testCluster = "test-cluster"
	testRegion  = "us-east-1"
	testAccount = "123456789012"
	testIssuer  = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
	testAPI     = "https://127.0.0.1:6443"
)

// podIdentityTrust is the trust policy AWS documents for a Pod Identity role.
const podIdentityTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`

// webIdentityTrust is an IRSA role's trust policy: no Pod Identity.
const webIdentityTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`

// fakeRoles is IAM as a map from role ARN to trust policy.
type fakeRoles map[string]string

func (f fakeRoles) AssumeRolePolicy(_ context.Context, arn string) (string, error) {
	doc, ok := f[arn]
	if !ok {
		return "", ErrNoSuchRole
	}
	return doc, nil
}

func roleARN(name string) string { return "arn:aws:iam::" + testAccount + ":role/" + name }

// roles every test may use: "app" and "other" trust Pod Identity, "irsa"
// trusts web identity only.
func testRoles() fakeRoles {
	return fakeRoles{
		roleARN("app"):   podIdentityTrust,
		roleARN("other"): podIdentityTrust,
		roleARN("irsa"):  webIdentityTrust,
	}
}

type harness struct {
	srv          *Server
	client       *eks.Client
	identities   string
	associations string
	state        string
}

// newHarness starts an emulator for one test. mod may change the config.
func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{identities: filepath.Join(dir, "identities.json"), associations: filepath.Join(dir, "associations.json"), state: filepath.Join(dir, "state.json")}
	cfg := Config{
		ClusterName: testCluster, Region: testRegion, AccountID: testAccount,
		Issuer: testIssuer, Endpoint: testAPI, CAData: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		KubernetesVersion: "1.37", Roles: testRoles(),
		IdentitiesFile: h.identities, AssociationsFile: h.associations, StateFile: h.state, PropagationDelay: 0,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h.srv = srv
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	h.client = newClient(ts.URL)
	return h
}

// newClient is an EKS client as a program would build one, with retries
// that do not sleep, so retry tests take no time.
func newClient(url string) *eks.Client {
	return eks.New(eks.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

func (h *harness) create(t *testing.T, ns, sa, role string, mod ...func(*eks.CreatePodIdentityAssociationInput)) *types.PodIdentityAssociation {
	t.Helper()
	out, err := h.createErr(t, ns, sa, role, mod...)
	if err != nil {
		t.Fatalf("create %s/%s: %v", ns, sa, err)
	}
	return out
}

func (h *harness) createErr(t *testing.T, ns, sa, role string, mod ...func(*eks.CreatePodIdentityAssociationInput)) (*types.PodIdentityAssociation, error) {
	t.Helper()
	in := &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testCluster), Namespace: aws.String(ns), ServiceAccount: aws.String(sa), RoleArn: aws.String(role),
	}
	for _, m := range mod {
		m(in)
	}
	out, err := h.client.CreatePodIdentityAssociation(t.Context(), in)
	if err != nil {
		return nil, err
	}
	return out.Association, nil
}

// readIdentities is what the webhook would read from the identities file.
func readIdentities(t *testing.T, path string) []podidentity.Identity {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Identities []podidentity.Identity `json:"identities"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("the identities file is not the webhook's format: %v\n%s", err, data)
	}
	return f.Identities
}

func lists(ids []podidentity.Identity, ns, sa string) bool {
	return slices.Contains(ids, podidentity.Identity{Namespace: ns, ServiceAccount: sa})
}

// waitIdentities polls the identities file until cond holds; generous
// deadline, since the file is written by a timer.
func waitIdentities(t *testing.T, path string, what string, cond func([]podidentity.Identity) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(readIdentities(t, path)), nil
	})
	if err != nil {
		t.Fatalf("the identities file never %s: %v; it lists %v", what, err, readIdentities(t, path))
	}
}

// wantAPIError asserts err is the SDK's typed error *E with a message
// containing msg.
func wantAPIError[E interface {
	error
	ErrorMessage() string
}](t *testing.T, err error, msg string) {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error = %v (%T), want %T", err, err, target)
	}
	if !strings.Contains(target.ErrorMessage(), msg) {
		t.Errorf("message = %q, want it to contain %q", target.ErrorMessage(), msg)
	}
}
