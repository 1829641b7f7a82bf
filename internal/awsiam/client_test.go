package awsiam

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// An IAM endpoint that throttles the first requests: the standard retryer
// must retry them, and the cache must keep the answer.
func TestRole_retriesThrottling(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		if n <= 2 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprint(w, `<GetRoleResponse><GetRoleResult><Role><Path>/</Path><RoleName>api</RoleName><RoleId>AROA1</RoleId>`+
			`<Arn>arn:aws:iam::123456789012:role/api</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate>`+
			`<AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument></Role></GetRoleResult>`+
			`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetRoleResponse>`)
	}))
	defer srv.Close()

	c, err := New(t.Context(), Settings{Region: "us-east-1", IAMEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		role, err := c.Role(t.Context(), "api")
		if err != nil {
			t.Fatalf("Role: %v", err)
		}
		if policy, _ := TrustPolicy(role); policy != "{}" {
			t.Errorf("trust policy = %q, want it URL-decoded", policy)
		}
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("requests = %d, want 3 (two throttled, one answered, then cached)", got)
	}
	if got := c.Calls.Load(); got != 1 {
		t.Errorf("Calls = %d, want 1", got)
	}
}

// An IAM endpoint that accepts requests and never answers: each attempt
// ends at the request timeout, the retryer tries again, and the call fails
// instead of hanging.
func TestRole_hungEndpointTimesOut(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	c, err := New(t.Context(), Settings{Region: "us-east-1", IAMEndpoint: srv.URL, MaxAttempts: 2, RequestTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Role(t.Context(), "api")
	var timeout interface{ Timeout() bool }
	if !errors.As(err, &timeout) || !timeout.Timeout() {
		t.Fatalf("Role error %v: want a timeout", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("requests = %d, want 2 (each attempt timed out)", got)
	}
}

func TestIsNotFoundAndAccessDenied(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		code, status := "NoSuchEntity", http.StatusNotFound
		if r.Form.Get("Action") == "GetOpenIDConnectProvider" {
			code, status = "AccessDenied", http.StatusForbidden
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>`, code)
	}))
	defer srv.Close()
	c, err := New(t.Context(), Settings{Region: "us-east-1", IAMEndpoint: srv.URL, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Role(t.Context(), "missing"); !IsNotFound(err) || IsAccessDenied(err) {
		t.Errorf("Role error %v: want NoSuchEntity", err)
	}
	if _, err := c.OIDCProvider(t.Context(), "arn:aws:iam::123456789012:oidc-provider/x"); !IsAccessDenied(err) || IsNotFound(err) {
		t.Errorf("OIDCProvider error %v: want AccessDenied", err)
	}
}
