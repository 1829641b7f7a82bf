package eksauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// stubEKSAuth answers every call with out or err and counts the calls.
type stubEKSAuth struct {
	out   *AssumeRoleForPodIdentityOutput
	err   error
	calls atomic.Int32
	token atomic.Value
}

func (s *stubEKSAuth) AssumeRoleForPodIdentity(_ context.Context, cluster, token string) (*AssumeRoleForPodIdentityOutput, error) {
	s.calls.Add(1)
	s.token.Store(cluster + "|" + token)
	return s.out, s.err
}

func agentServer(t *testing.T, eksAuth AssumeRoler, targetHosts ...string) string {
	t.Helper()
	srv := httptest.NewServer((&Agent{ClusterName: "c1", EKSAuth: eksAuth, TargetHosts: targetHosts}).Handler())
	t.Cleanup(srv.Close)
	return srv.URL + CredentialsPath
}

// retrieve runs the SDK's container-credentials provider (the one the
// default chain builds for AWS_CONTAINER_CREDENTIALS_FULL_URI) against url.
func retrieve(t *testing.T, url, token string) (accessKey, accountID string, expires time.Time, err error) {
	t.Helper()
	p := endpointcreds.New(url, func(o *endpointcreds.Options) { o.AuthorizationToken = token })
	c, err := p.Retrieve(t.Context())
	return c.AccessKeyID, c.AccountID, c.Expires, err
}

func TestAgent_CredentialsReadByTheSDK(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	stub := &stubEKSAuth{out: &AssumeRoleForPodIdentityOutput{
		AssumedRoleUser: AssumedRoleUser{ARN: "arn:aws:sts::123456789012:assumed-role/app/eks-c1-p-x"},
		Credentials:     Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: "t", Expiration: EpochTime{exp}},
	}}
	url := agentServer(t, stub, "127.0.0.1")
	token := jwtWithExpiry(time.Now().Add(time.Hour))

	key, accountID, expires, err := retrieve(t, url, token)
	if err != nil {
		t.Fatal(err)
	}
	if key != "ASIAEXAMPLE" || accountID != "123456789012" || !expires.Equal(exp) {
		t.Errorf("SDK read key %q account %q expiring %s; want ASIAEXAMPLE, 123456789012, %s", key, accountID, expires, exp)
	}
	if got := stub.token.Load(); got != "c1|"+token {
		t.Errorf("EKS Auth called with %v, want the agent's cluster and the Authorization header as the token", got)
	}
}

func TestAgent_Refusals(t *testing.T) {
	t.Parallel()
	denied := &stubEKSAuth{err: &APIError{Code: CodeAccessDenied, Message: "no trust", StatusCode: 400, RequestID: "req-1"}}
	down := &stubEKSAuth{err: errors.New("connection refused")}
	valid := jwtWithExpiry(time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name        string
		stub        *stubEKSAuth
		targetHosts []string
		token       string
		status      int
		message     string
		reached     bool
	}{
		{name: "EKS Auth refuses", stub: denied, token: valid, status: 400, reached: true,
			message: "[req-1]: (AccessDeniedException): no trust, fault: client"},
		{name: "EKS Auth unreachable", stub: down, token: valid, status: 500, reached: true, message: "connection refused"},
		{name: "called through another address", stub: denied, targetHosts: []string{"169.254.170.23"}, token: valid, status: 403,
			message: "Called agent through invalid address"},
		{name: "expired token", stub: denied, token: jwtWithExpiry(time.Now().Add(-time.Minute)), status: 400, message: "token is expired"},
		{name: "not a token", stub: denied, token: "garbage", status: 400, message: "cannot be parsed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hosts := tc.targetHosts
			if hosts == nil {
				hosts = []string{"127.0.0.1"}
			}
			stub := &stubEKSAuth{err: tc.stub.err}
			_, _, _, err := retrieve(t, agentServer(t, stub, hosts...), tc.token)
			var withStatus interface{ HTTPStatusCode() int }
			if !errors.As(err, &withStatus) || withStatus.HTTPStatusCode() != tc.status || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("SDK error %v, want HTTP %d with %q", err, tc.status, tc.message)
			}
			if reached := stub.calls.Load() > 0; reached != tc.reached {
				t.Errorf("EKS Auth called: %v, want %v", reached, tc.reached)
			}
		})
	}
}

func TestAgent_EmptyToken(t *testing.T) {
	t.Parallel()
	stub := &stubEKSAuth{}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, agentServer(t, stub, "127.0.0.1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || stub.calls.Load() != 0 {
		t.Errorf("HTTP %d after %d EKS Auth calls, want 400 and none", resp.StatusCode, stub.calls.Load())
	}
}
