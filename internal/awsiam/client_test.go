package awsiam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hermetic keeps the machine's AWS configuration and the test
// environment's endpoints out of a unit test.
func hermetic(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_IAM": "", "AWS_ENDPOINT_URL_STS": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
}

const (
	roleXML = `<GetRoleResponse><GetRoleResult><Role><Path>/</Path><RoleName>api</RoleName><RoleId>AROA1</RoleId>` +
		`<Arn>arn:aws:iam::123456789012:role/api</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate>` +
		`<AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument></Role></GetRoleResult>` +
		`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetRoleResponse>`
	callerXML = `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:%s:iam::%s:user/ci</Arn>` +
		`<UserId>AIDA1</UserId><Account>%s</Account></GetCallerIdentityResult>` +
		`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`
)

// fakeIAM speaks the IAM/STS query protocol: answer returns the HTTP
// status and body for the n-th request (from 1) of an action.
type fakeIAM struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newFakeIAM(t *testing.T, answer func(action string, n int) (int, string)) *fakeIAM {
	t.Helper()
	f := &fakeIAM{calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		action := r.Form.Get("Action")
		f.mu.Lock()
		f.calls[action]++
		n := f.calls[action]
		f.mu.Unlock()
		status, body := answer(action, n)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIAM) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func errorXML(code string) string {
	return `<ErrorResponse><Error><Type>Sender</Type><Code>` + code + `</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>`
}

func newTestClient(t *testing.T, s Settings) *Client {
	t.Helper()
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	c, err := New(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An IAM endpoint that throttles the first requests: the standard retryer
// retries them within one Role call, and the cache keeps the answer.
func TestRole_retriesThrottling(t *testing.T) {
	hermetic(t)
	f := newFakeIAM(t, func(_ string, n int) (int, string) {
		if n <= 2 {
			return http.StatusBadRequest, errorXML("Throttling")
		}
		return http.StatusOK, roleXML
	})
	c := newTestClient(t, Settings{IAMEndpoint: f.URL})
	for range 2 {
		role, err := c.Role(t.Context(), "aws", "api")
		if err != nil {
			t.Fatalf("Role: %v", err)
		}
		if policy, _ := TrustPolicy(role); policy != "{}" {
			t.Errorf("trust policy = %q, want it URL-decoded", policy)
		}
	}
	if got := f.count("GetRole"); got != 3 {
		t.Errorf("requests = %d, want 3 (two throttled, one answered, then cached)", got)
	}
	if got := c.Calls.Load(); got != 1 {
		t.Errorf("Calls = %d, want 1", got)
	}
}

// Throttling that outlasts the retryer is not an answer: the next binding
// asks again instead of inheriting the error.
func TestRole_throttlingIsNotCached(t *testing.T) {
	hermetic(t)
	f := newFakeIAM(t, func(_ string, n int) (int, string) {
		if n <= 2 {
			return http.StatusBadRequest, errorXML("Throttling")
		}
		return http.StatusOK, roleXML
	})
	c := newTestClient(t, Settings{IAMEndpoint: f.URL, MaxAttempts: 2})
	if _, err := c.Role(t.Context(), "aws", "api"); err == nil || errorCode(err) != "Throttling" {
		t.Fatalf("first Role: err = %v, want Throttling after 2 attempts", err)
	}
	if _, err := c.Role(t.Context(), "aws", "api"); err != nil {
		t.Fatalf("second Role: %v", err)
	}
	if _, err := c.Role(t.Context(), "aws", "api"); err != nil {
		t.Fatalf("third Role: %v", err)
	}
	if got := f.count("GetRole"); got != 3 {
		t.Errorf("requests = %d, want 3 (2 throttled attempts, 1 answered, then cached)", got)
	}
}

// A role created a moment ago is reported missing for a few seconds.
func TestRole_retriesNoSuchEntityWithinTheWindow(t *testing.T) {
	hermetic(t)
	f := newFakeIAM(t, func(_ string, n int) (int, string) {
		if n <= 2 {
			return http.StatusNotFound, errorXML("NoSuchEntity")
		}
		return http.StatusOK, roleXML
	})
	c := newTestClient(t, Settings{IAMEndpoint: f.URL, NotFoundWindow: 5 * time.Second})
	for range 2 {
		if _, err := c.Role(t.Context(), "aws", "api"); err != nil {
			t.Fatalf("Role: %v", err)
		}
	}
	if got := f.count("GetRole"); got != 3 {
		t.Errorf("requests = %d, want 3 (two NoSuchEntity, the role, then cached)", got)
	}
}

// NoSuchEntity that lasts the window is the answer, and is kept.
func TestRole_notFoundAfterTheWindowIsCached(t *testing.T) {
	hermetic(t)
	f := newFakeIAM(t, func(string, int) (int, string) { return http.StatusNotFound, errorXML("NoSuchEntity") })
	// A window long enough that a slow first answer still leaves room to ask again.
	c := newTestClient(t, Settings{IAMEndpoint: f.URL, NotFoundWindow: 2 * time.Second})
	if _, err := c.Role(t.Context(), "aws", "missing"); !IsNotFound(err) {
		t.Fatalf("err = %v, want NoSuchEntity", err)
	}
	asked := f.count("GetRole")
	if asked < 2 {
		t.Errorf("requests = %d, want NoSuchEntity asked again at least once", asked)
	}
	if _, err := c.Role(t.Context(), "aws", "missing"); !IsNotFound(err) {
		t.Fatalf("second call: err = %v, want the cached NoSuchEntity", err)
	}
	if got := f.count("GetRole"); got != asked {
		t.Errorf("the second call sent %d more requests, want 0", got-asked)
	}
	c2 := newTestClient(t, Settings{IAMEndpoint: f.URL, NotFoundWindow: -1})
	before := f.count("GetRole")
	if _, err := c2.Role(t.Context(), "aws", "missing"); !IsNotFound(err) {
		t.Fatalf("no window: err = %v", err)
	}
	if got := f.count("GetRole") - before; got != 1 {
		t.Errorf("without a window: %d requests, want 1", got)
	}
}

// A context that ends during the window is no answer: not NoSuchEntity, and
// not cached.
func TestRole_contextEndingTheWindowIsNotAnAnswer(t *testing.T) {
	hermetic(t)
	ctx, cancel := context.WithCancel(t.Context())
	f := newFakeIAM(t, func(_ string, n int) (int, string) {
		if n == 1 {
			cancel() // the caller gives up while IAM still says NoSuchEntity
			return http.StatusNotFound, errorXML("NoSuchEntity")
		}
		return http.StatusOK, roleXML
	})
	c := newTestClient(t, Settings{IAMEndpoint: f.URL, NotFoundWindow: time.Minute})
	_, err := c.Role(ctx, "aws", "api")
	if IsNotFound(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled and not NoSuchEntity", err)
	}
	if _, err := c.Role(t.Context(), "aws", "api"); err != nil {
		t.Fatalf("the next call: %v (the interrupted lookup must not be cached)", err)
	}
}

func TestErrorClassification(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		code                               string
		notFound, denied, expired, invalid bool
		cached                             bool
	}{
		{code: "NoSuchEntity", notFound: true, cached: true},
		{code: "AccessDenied", denied: true, cached: true},
		{code: "ExpiredToken", expired: true, cached: true},
		{code: "InvalidClientTokenId", invalid: true, cached: true},
		{code: "SignatureDoesNotMatch", invalid: true, cached: true},
		{code: "ServiceFailure"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			status := http.StatusForbidden
			if tc.code == "NoSuchEntity" {
				status = http.StatusNotFound
			}
			f := newFakeIAM(t, func(string, int) (int, string) { return status, errorXML(tc.code) })
			c := newTestClient(t, Settings{IAMEndpoint: f.URL, MaxAttempts: 1, NotFoundWindow: -1})
			_, err := c.OIDCProvider(t.Context(), "arn:aws:iam::123456789012:oidc-provider/x")
			got := [4]bool{IsNotFound(err), IsAccessDenied(err), IsExpiredCredentials(err), IsInvalidCredentials(err)}
			if want := [4]bool{tc.notFound, tc.denied, tc.expired, tc.invalid}; got != want {
				t.Errorf("%v: [notFound denied expired invalid] = %v, want %v", err, got, want)
			}
			_, _ = c.OIDCProvider(t.Context(), "arn:aws:iam::123456789012:oidc-provider/x")
			want := 2
			if tc.cached {
				want = 1
			}
			if got := f.count("GetOpenIDConnectProvider"); got != want {
				t.Errorf("two lookups sent %d requests, want %d", got, want)
			}
		})
	}
}

// recorder answers every request without a network and records where it
// was sent and for which signing region.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "host signing-region"
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	_ = req.ParseForm()
	// Credential=AKID/20260101/us-gov-west-1/iam/aws4_request
	scope := req.Header.Get("Authorization")
	if _, after, ok := strings.Cut(scope, "Credential="); ok {
		parts := strings.Split(after, "/")
		if len(parts) > 2 {
			scope = parts[2]
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req.URL.Host+" "+scope)
	r.mu.Unlock()
	body := roleXML
	if req.Form.Get("Action") == "GetCallerIdentity" {
		body = fmt.Sprintf(callerXML, "aws", "123456789012", "123456789012")
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/xml"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return ""
	}
	return r.reqs[len(r.reqs)-1]
}

// Each partition's IAM and STS endpoints and signing region, resolved by
// the SDK's endpoint rules; an explicit endpoint wins.
func TestEndpoints_followThePartition(t *testing.T) {
	hermetic(t)
	for _, tc := range []struct {
		name, region, iamEndpoint, partition string
		wantIAM, wantSTS                     string
	}{
		{name: "aws without region", partition: "aws",
			wantIAM: "iam.amazonaws.com us-east-1", wantSTS: "sts.us-east-1.amazonaws.com us-east-1"},
		{name: "aws-us-gov without region", partition: "aws-us-gov",
			wantIAM: "iam.us-gov.amazonaws.com us-gov-west-1", wantSTS: "sts.us-gov-west-1.amazonaws.com us-gov-west-1"},
		{name: "aws-cn without region", partition: "aws-cn",
			wantIAM: "iam.cn-north-1.amazonaws.com.cn cn-north-1", wantSTS: "sts.cn-north-1.amazonaws.com.cn cn-north-1"},
		{name: "aws-us-gov from a commercial region", region: "eu-west-1", partition: "aws-us-gov",
			wantIAM: "iam.us-gov.amazonaws.com us-gov-west-1", wantSTS: "sts.us-gov-west-1.amazonaws.com us-gov-west-1"},
		{name: "aws-us-gov in its other region", region: "us-gov-east-1", partition: "aws-us-gov",
			wantIAM: "iam.us-gov.amazonaws.com us-gov-west-1", wantSTS: "sts.us-gov-east-1.amazonaws.com us-gov-east-1"},
		{name: "aws-cn with an explicit endpoint", partition: "aws-cn", iamEndpoint: "https://iam.internal.example",
			wantIAM: "iam.internal.example cn-north-1", wantSTS: "sts.cn-north-1.amazonaws.com.cn cn-north-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c, err := New(t.Context(), Settings{Region: tc.region, IAMEndpoint: tc.iamEndpoint, HTTPClient: rec})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Role(t.Context(), tc.partition, "api"); err != nil {
				t.Fatal(err)
			}
			if got := rec.last(); got != tc.wantIAM {
				t.Errorf("GetRole went to %q, want %q", got, tc.wantIAM)
			}
			if _, err := c.Caller(t.Context(), tc.partition); err != nil {
				t.Fatal(err)
			}
			if got := rec.last(); got != tc.wantSTS {
				t.Errorf("GetCallerIdentity went to %q, want %q", got, tc.wantSTS)
			}
		})
	}
}

func TestRegionFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ partition, configured, want string }{
		{"aws", "", "us-east-1"},
		{"aws", "eu-central-1", "eu-central-1"},
		{"aws", "us-gov-west-1", "us-east-1"},
		{"aws-us-gov", "us-east-1", "us-gov-west-1"},
		{"aws-us-gov", "us-gov-east-1", "us-gov-east-1"},
		{"aws-cn", "", "cn-north-1"},
		{"aws-cn", "cn-northwest-1", "cn-northwest-1"},
		{"aws-iso", "us-isob-east-1", "us-iso-east-1"},
		{"aws-iso-b", "us-isob-east-1", "us-isob-east-1"},
		{"aws-eusc", "", "eusc-de-east-1"},
	} {
		if got := RegionFor(tc.partition, tc.configured); got != tc.want {
			t.Errorf("RegionFor(%q, %q) = %q, want %q", tc.partition, tc.configured, got, tc.want)
		}
	}
}

// The caller's partition comes from its ARN; a role-less lookup still
// counts one call.
func TestCaller_partitionFromTheARN(t *testing.T) {
	hermetic(t)
	var n atomic.Int32
	f := newFakeIAM(t, func(string, int) (int, string) {
		n.Add(1)
		return http.StatusOK, fmt.Sprintf(callerXML, "aws-us-gov", "210987654321", "210987654321")
	})
	c := newTestClient(t, Settings{Region: "us-gov-west-1", STSEndpoint: f.URL})
	for range 2 {
		id, err := c.Caller(t.Context(), c.HomePartition())
		if err != nil {
			t.Fatal(err)
		}
		if id.Partition != "aws-us-gov" || id.Account != "210987654321" {
			t.Errorf("caller = %+v", id)
		}
	}
	if n.Load() != 1 {
		t.Errorf("STS asked %d times, want 1", n.Load())
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
	_, err = c.Role(t.Context(), "aws", "api")
	var timeout interface{ Timeout() bool }
	if !errors.As(err, &timeout) || !timeout.Timeout() {
		t.Fatalf("Role error %v: want a timeout", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("requests = %d, want 2 (each attempt timed out)", got)
	}
}
