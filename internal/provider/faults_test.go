package provider

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// The fault suite: acceptance tests that stop components of the shared
// environment, or put a proxy that injects errors between the provider and
// it. They run only under `make test-faults`, which runs them alone.

// faultTest skips unless the fault suite was asked for (IRSA_TEST_FAULTS=1,
// set by make test-faults): killing the API server would break any test
// running beside it, in this binary or another.
func faultTest(t *testing.T) {
	t.Helper()
	if os.Getenv("IRSA_TEST_FAULTS") == "" {
		t.Skip("fault test: run with make test-faults (IRSA_TEST_FAULTS=1)")
	}
	requireEnv(t)
}

// faultRule makes a proxy answer matching requests itself: the first times
// of them with status (and Retry-After, when set), or every one of them with
// nothing at all (hang).
type faultRule struct {
	name   string
	method string         // empty matches any
	path   *regexp.Regexp // against the URL path
	query  *regexp.Regexp // against the raw query; nil matches any
	body   *regexp.Regexp // against the request body; nil matches any

	status     int
	retryAfter int // seconds; 0 sends no Retry-After
	times      int
	hang       bool
}

func (r *faultRule) matches(req *http.Request, body []byte) bool {
	return (r.method == "" || r.method == req.Method) &&
		(r.path == nil || r.path.MatchString(req.URL.Path)) &&
		(r.query == nil || r.query.MatchString(req.URL.RawQuery)) &&
		(r.body == nil || r.body.Match(body))
}

// ruleStats is what a proxy saw of one rule's requests.
type ruleStats struct {
	arrived []time.Time // every matching request, in order
	refused []time.Time // when each refusal was answered, in order
}

// faultProxy forwards to an upstream unless a rule says otherwise, and
// records every request a rule matched.
type faultProxy struct {
	srv      *httptest.Server
	upstream http.Handler
	// answer writes a refusal in the upstream's own error format.
	answer func(w http.ResponseWriter, status int)
	stop   chan struct{}

	mu    sync.Mutex
	rules []*faultRule
	stats map[string]*ruleStats
}

func newFaultProxy(t *testing.T, tls bool, upstream http.Handler, answer func(http.ResponseWriter, int)) *faultProxy {
	t.Helper()
	p := &faultProxy{upstream: upstream, answer: answer, stop: make(chan struct{}), stats: map[string]*ruleStats{}}
	if tls {
		p.srv = httptest.NewTLSServer(p)
	} else {
		p.srv = httptest.NewServer(p)
	}
	t.Cleanup(func() {
		close(p.stop) // releases hung requests, which Close waits for
		p.srv.Close()
	})
	return p
}

// set replaces the rules and forgets what the old ones saw.
func (p *faultProxy) set(rules ...*faultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = rules
	p.stats = map[string]*ruleStats{}
	for _, r := range rules {
		p.stats[r.name] = &ruleStats{}
	}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body []byte
	if req.Body != nil {
		body, _ = readAllAndRestore(req)
	}
	p.mu.Lock()
	var rule *faultRule
	for _, r := range p.rules {
		if r.matches(req, body) {
			rule = r
			break
		}
	}
	refuse := false
	var st *ruleStats
	if rule != nil {
		st = p.stats[rule.name]
		st.arrived = append(st.arrived, time.Now())
		refuse = !rule.hang && len(st.refused) < rule.times
		if refuse {
			// Recorded before the answer leaves: the gap to the retry
			// measured from here is never shorter than the real one.
			st.refused = append(st.refused, time.Now())
		}
	}
	p.mu.Unlock()
	switch {
	case rule != nil && rule.hang:
		select {
		case <-req.Context().Done():
		case <-p.stop:
		}
	case refuse:
		if rule.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(rule.retryAfter))
		}
		p.answer(w, rule.status)
	default:
		p.upstream.ServeHTTP(w, req)
	}
}

// seen returns a copy of what rule name saw.
func (p *faultProxy) seen(name string) ruleStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.stats[name]
	if !ok {
		return ruleStats{}
	}
	return ruleStats{arrived: append([]time.Time(nil), st.arrived...), refused: append([]time.Time(nil), st.refused...)}
}

// checkRetried asserts every refusal of every rule with times > 0 was
// retried, and, with Retry-After, not sooner than it said: the request after
// a refusal arrived at least retryAfter after the refusal was answered. That
// is a lower bound only; nothing here depends on how fast the machine is.
func (p *faultProxy) checkRetried(t *testing.T) {
	t.Helper()
	for _, r := range p.rules {
		if r.times == 0 || r.hang {
			continue
		}
		st := p.seen(r.name)
		if len(st.refused) != r.times {
			t.Errorf("%s: %d of %d refusals made (%d requests): the provider never sent what the rule matches", r.name, len(st.refused), r.times, len(st.arrived))
			continue
		}
		if len(st.arrived) <= r.times {
			t.Errorf("%s: %d requests, all refused: the last refusal was not retried", r.name, len(st.arrived))
			continue
		}
		t.Logf("%s: %d requests, the first %d refused with %d", r.name, len(st.arrived), r.times, r.status)
		if r.retryAfter == 0 {
			continue
		}
		for i, at := range st.refused {
			// The first `times` arrivals are the refused ones, in order.
			gap := st.arrived[i+1].Sub(at)
			if gap < time.Duration(r.retryAfter)*time.Second {
				t.Errorf("%s: request %d came %s after refusal %d, which said Retry-After: %d", r.name, i+2, gap, i+1, r.retryAfter)
			} else {
				t.Logf("%s: retry %d came %s after Retry-After: %d", r.name, i+1, gap.Round(time.Millisecond), r.retryAfter)
			}
		}
	}
}

// newAPIServerProxy is a TLS proxy in front of the environment's API server.
// It authenticates upstream as the environment's admin, so the provider
// needs only its address and certificate (apiServerProxyConfig).
func newAPIServerProxy(t *testing.T) *faultProxy {
	t.Helper()
	cfg, err := testenv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	upstream := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: rt,
	}
	return newFaultProxy(t, true, upstream, apiStatus)
}

// apiStatus answers as the API server does: a Status object with the
// reason client-go maps the code to.
func apiStatus(w http.ResponseWriter, code int) {
	reasons := map[int]string{429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
		"reason": reasons[code], "message": "injected by the fault proxy",
	})
}

// apiServerProxyConfig is a provider block that reaches the cluster through p.
func apiServerProxyConfig(p *faultProxy) string {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return fmt.Sprintf(`
provider "irsa" {
  trust_check = "off"
  kubernetes = {
    host                   = %q
    cluster_ca_certificate = %q
  }
}
`, p.srv.URL, ca)
}

// proxiedBindingConfig is bindingConfig with the provider behind p.
func proxiedBindingConfig(p *faultProxy, ns, sa, role, extra string) string {
	return apiServerProxyConfig(p) + fmt.Sprintf(`
resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
%s
}
`, ns, sa, role, extra)
}

// readAllAndRestore reads a request's body and puts it back for the upstream.
func readAllAndRestore(req *http.Request) ([]byte, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}
