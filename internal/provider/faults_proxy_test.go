package provider

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// Faults injected by a proxy: the API server and IAM throttle and fail in
// bursts, or stop answering.

// 429s and 5xx bursts on every kind of request a binding makes: each is
// retried and the apply converges. A 429 or 503 with Retry-After (what an
// API server under load or shutting down sends) is retried by client-go
// itself, and not sooner than it says; a 500 without it by the provider,
// for the calls that are safe to repeat.
func TestFaultAPIServer_throttlingAndErrorBurstsAreRetried(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	before := c.waitPods("api", 2)
	p := newAPIServerProxy(t)
	ns := "^/api/v1/namespaces/" + regexp.QuoteMeta(c.ns)
	sa := regexp.MustCompile(ns + "/serviceaccounts/api$")
	p.set(
		&faultRule{name: "read ServiceAccount: 500", method: http.MethodGet, path: sa, status: 500, times: 2},
		&faultRule{name: "discover issuer: 503", method: http.MethodGet, path: regexp.MustCompile(`^/\.well-known/openid-configuration$`), status: 503, times: 1},
		&faultRule{name: "apply ServiceAccount: 429 Retry-After 1", method: http.MethodPatch, path: sa, status: 429, retryAfter: 1, times: 2},
		&faultRule{name: "list pods: 429 Retry-After 1", method: http.MethodGet, path: regexp.MustCompile(ns + "/pods$"), status: 429, retryAfter: 1, times: 3},
		&faultRule{name: "dry-run pod: 503 Retry-After 2", method: http.MethodPost, path: regexp.MustCompile(ns + "/pods$"), query: regexp.MustCompile(`dryRun=All`), status: 503, retryAfter: 2, times: 1},
		&faultRule{name: "restart Deployment: 500", method: http.MethodPatch, path: regexp.MustCompile("^/apis/apps/v1/namespaces/" + regexp.QuoteMeta(c.ns) + "/deployments/api$"), status: 500, times: 2},
	)
	config := proxiedBindingConfig(p, c.ns, "api", testRoleA, "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkReplaced("api", before, 2, testRoleA),
					c.checkAnnotations("api", map[string]string{"eks.amazonaws.com/role-arn": testRoleA}),
					checkStalePods(),
				),
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
	p.checkRetried(t)
}

// An API server that accepts requests and never answers fails the plan
// after kube.RequestTimeout, with a diagnostic that says so, instead of
// hanging it: Terraform gives Read no deadline of its own. Without the
// per-request timeout this test hangs until go test's -timeout.
func TestFaultAPIServer_hungServerFailsThePlan(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	c.createSA("api")
	p := newAPIServerProxy(t)
	// The issuer configured, so the refresh makes one request, not two.
	config := proxiedBindingConfig(p, c.ns, "api", testRoleA, "")
	config = regexp.MustCompile(`trust_check = "off"`).ReplaceAllString(config, fmt.Sprintf("trust_check = \"off\"\n  oidc_issuer = %q", clusterIssuer()))
	hang := &faultRule{name: "every request: no answer", hang: true}
	var began time.Time
	held := 0
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					p.set(hang)
					began = time.Now()
				},
				Config:      config,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Unable\s+to\s+Read\s+Service\s+Account.*did\s+not\s+answer\s+a\s+request\s+about\s+ServiceAccount.*within\s+30s`),
			},
			{
				PreConfig: func() {
					held = len(p.seen(hang.name).arrived)
					t.Logf("the plan against the hung API server failed after %s (%d requests held)", time.Since(began).Round(time.Second), held)
					p.set()
				},
				Config:   config,
				PlanOnly: true,
			},
		},
	})
	if held == 0 {
		t.Error("the plan failed without sending the proxy a request to hold")
	}
}

// IAM throttling (HTTP 400, code Throttling) on the trust check's calls:
// the AWS SDK's retryer backs off and the plan passes.
func TestFaultIAM_throttlingIsRetried(t *testing.T) {
	faultTest(t)
	c := newTestCluster(t)
	c.createSA("api")
	role := trustedRole(t, trust.Subject(c.ns, "api"))
	moto, err := url.Parse(os.Getenv("IRSA_TESTENV_MOTO_URL"))
	if err != nil || moto.Host == "" {
		t.Fatalf("IRSA_TESTENV_MOTO_URL: %q %v", os.Getenv("IRSA_TESTENV_MOTO_URL"), err)
	}
	p := newFaultProxy(t, false, httputil.NewSingleHostReverseProxy(moto), iamThrottling)
	p.set(
		&faultRule{name: "GetRole: Throttling", method: http.MethodPost, body: regexp.MustCompile(`(^|&)Action=GetRole(&|$)`), status: 400, times: 2},
		&faultRule{name: "GetOpenIDConnectProvider: Throttling", method: http.MethodPost, body: regexp.MustCompile(`(^|&)Action=GetOpenIDConnectProvider(&|$)`), status: 400, times: 1},
	)
	config := trustConfig(fmt.Sprintf(`  aws = {
    iam_endpoint = %q
  }`, p.srv.URL), c.ns, "api", role)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			Check:  c.checkAnnotations("api", map[string]string{"eks.amazonaws.com/role-arn": role}),
		}},
	})
	p.checkRetried(t)
}

// iamThrottling answers as IAM does when it throttles a caller.
func iamThrottling(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	fmt.Fprint(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>`+
		`<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`)
}
