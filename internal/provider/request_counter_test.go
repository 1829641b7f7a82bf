package provider

import (
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// requestCounter is a TLS reverse proxy in front of the test API server
// that counts the provider's requests by verb and resource ("list pods").
// Pointing one provider at it measures that provider alone, whatever else
// the shared environment is doing. It forwards with the admin's
// credentials, so the provider needs none.
type requestCounter struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   map[string]int
}

func newRequestCounter(t *testing.T) *requestCounter {
	t.Helper()
	cfg, err := testenv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	c := &requestCounter{n: map[string]int{}}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
	}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[requestKind(r)]++
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// kubernetes is the provider's kubernetes block for reaching the cluster
// through the counter.
func (c *requestCounter) kubernetes() string {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	return fmt.Sprintf("  kubernetes = {\n    host                   = %q\n    cluster_ca_certificate = %q\n  }\n", c.srv.URL, string(ca))
}

// take returns the counts since the last take, and starts again.
func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func total(counts map[string]int) int {
	sum := 0
	for _, n := range counts {
		sum += n
	}
	return sum
}

func formatCounts(counts map[string]int) string {
	keys := sort.StringSlice(nil)
	for k := range maps.Keys(counts) {
		keys = append(keys, k)
	}
	keys.Sort()
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, counts[k])
	}
	return strings.TrimSpace(b.String())
}

// requestKind names a request as the API server's metrics do: verb, then
// resource (and subresource); a non-resource URL by its path.
func requestKind(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /api/v1/... or /apis/group/version/...
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return r.Method + " " + r.URL.Path
	}
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) > 2 {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return r.Method + " " + r.URL.Path
	}
	resource, named := rest[0], len(rest) >= 2
	if len(rest) >= 3 {
		resource += "/" + rest[2]
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	if r.Method == http.MethodGet {
		switch {
		case r.URL.Query().Get("watch") == "true":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	}
	return verb + " " + resource
}
