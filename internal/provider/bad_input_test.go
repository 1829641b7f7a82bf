package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8srand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
)

// badInput is one thing a user can get wrong, and what the provider must
// answer: a diagnostic whose summary says what is wrong and whose detail
// says how to fix it, before anything in the cluster changes.
type badInput struct {
	name   string
	config string
	// importID, when set, imports the binding of config with this ID.
	importID string
	// apply: the error comes at apply (plan only warns about it).
	apply bool
	// warning: the input is accepted with a warning; plan must succeed.
	warning bool
	// summary and fix are phrases of the diagnostic's summary and of the
	// part of its detail that says how to fix it. Spaces match any run of
	// whitespace, as Terraform wraps long lines.
	summary, fix string
}

// phrase turns words into a regexp that tolerates Terraform's line
// wrapping and the box it draws around diagnostics.
func phrase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(words, `(?:\s|│)+`)
}

// clusterSnapshot is what a rejected input must leave as it was: every
// ServiceAccount of the namespace (by resourceVersion, which any write
// changes) and every pod (by UID, which recycling changes).
type clusterSnapshot struct {
	serviceAccounts map[string]string
	pods            map[string]string
}

func (c *testCluster) snapshot() (clusterSnapshot, error) {
	s := clusterSnapshot{serviceAccounts: map[string]string{}, pods: map[string]string{}}
	sas, err := c.client.CoreV1().ServiceAccounts(c.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	for _, sa := range sas.Items {
		s.serviceAccounts[sa.Name] = sa.ResourceVersion
	}
	pods, err := c.client.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return s, err
	}
	for _, p := range pods.Items {
		s.pods[p.Name] = string(p.UID)
	}
	return s, nil
}

func (s clusterSnapshot) equal(o clusterSnapshot) bool {
	return maps.Equal(s.serviceAccounts, o.serviceAccounts) && maps.Equal(s.pods, o.pods)
}

// otherCAPEM is a valid CA certificate that signed nothing the cluster
// serves.
func otherCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "some other cluster's CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// badInputs is the table. ns holds ServiceAccount api and a Deployment
// using it; absentNS is a namespace that does not exist.
func badInputs(t *testing.T, ns, absentNS string) []badInput {
	host, err := clientConfigHost()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(os.Getenv("IRSA_TESTENV_CA_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	provider := func(body string) string {
		return "provider \"irsa\" {\n  trust_check = \"off\"\n" + body + "\n}\n"
	}
	binding := func(ns, sa, role, extra string) string {
		return fmt.Sprintf("resource \"irsa_service_account_binding\" \"test\" {\n  namespace = %q\n  service_account = %q\n"+
			"  role_arn = %q\n%s\n}\n", ns, sa, role, extra)
	}
	good := binding(ns, "api", testRoleA, "")
	// with is a binding of ServiceAccount api with extra attributes.
	with := func(extra string) string { return provider("") + binding(ns, "api", testRoleA, extra) }
	role := func(arn string) string { return provider("") + binding(ns, "api", arn, "") }
	// podIdentity is a pod_identity binding of ServiceAccount api.
	podIdentity := func(extra string) string {
		return provider(`  cluster_name = "irsa-local"`) + binding(ns, "api", testRoleA, "  mechanism = \"pod_identity\"\n"+extra)
	}
	names := func(ns, sa string) string { return provider("") + binding(ns, sa, testRoleA, "") }
	// connect is the binding through a kubernetes block.
	connect := func(kube string) string { return provider("  kubernetes = {\n"+kube+"\n  }") + good }
	policy := func(attrs string) string {
		return provider("") + "data \"irsa_trust_policy\" \"test\" {\n  oidc_issuer = \"https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE\"\n" +
			attrs + "\n}\n"
	}
	const arnFix = "expected arn:PARTITION:iam::ACCOUNT_ID:role/[PATH/]NAME"
	const labelFix = "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	const subdomainFix = "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
	const connFix = "Check the provider's kubernetes settings (host, kubeconfig context)"
	long := strings.Repeat("a", 64)

	return []badInput{
		// role_arn: malformed and foreign ARNs.
		{name: "role ARN that is a role name", config: role("payments-api"), summary: "Invalid IAM Role ARN", fix: `"payments-api" is not an ARN; ` + arnFix},
		{name: "empty role ARN", config: role(""), summary: "Invalid IAM Role ARN", fix: `"" is not an ARN; ` + arnFix},
		{name: "role ARN of S3", config: role("arn:aws:s3:::payments-bucket"), summary: "Invalid IAM Role ARN", fix: `service "s3", not an IAM role; ` + arnFix},
		{name: "user ARN", config: role("arn:aws:iam::123456789012:user/alice"), summary: "Invalid IAM Role ARN", fix: `names an IAM "user", not a role; ` + arnFix},
		{name: "STS session ARN", config: role("arn:aws:sts::123456789012:assumed-role/payments-api/session"), summary: "Invalid IAM Role ARN", fix: "use the role's own ARN, arn:PARTITION"},
		{name: "11-digit account", config: role("arn:aws:iam::12345678901:role/payments-api"), summary: "Invalid IAM Role ARN", fix: `account ID "12345678901", which is not 12 digits; ` + arnFix},
		{name: "partition typo", config: role("arn:aws-us-gob:iam::123456789012:role/payments-api"), summary: "Invalid IAM Role ARN", fix: `unknown partition "aws-us-gob" (known: aws, aws-cn, aws-us-gov`},
		{name: "role ARN with a region", config: role("arn:aws:iam:us-east-1:123456789012:role/payments-api"), summary: "Invalid IAM Role ARN", fix: "IAM ARNs have an empty region field; " + arnFix},
		{name: "role ARN with a trailing space", config: role(testRoleA + " "), summary: "Invalid IAM Role ARN", fix: "has leading or trailing whitespace; " + arnFix},
		{name: "role name too long", config: role("arn:aws:iam::123456789012:role/" + strings.Repeat("r", 65)), summary: "Invalid IAM Role ARN", fix: "a role name is 1 to 64 characters"},

		// Names of the namespace and the ServiceAccount.
		{name: "upper-case namespace", config: names("Payments", "api"), summary: "Invalid Attribute Value Match", fix: labelFix},
		{name: "namespace with an underscore", config: names("pay_ments", "api"), summary: "Invalid Attribute Value Match", fix: labelFix},
		{name: "namespace too long", config: names(long, "api"), summary: "Invalid Attribute Value Length", fix: "namespace string length must be between 1 and 63, got: 64"},
		{name: "empty namespace", config: names("", "api"), summary: "Invalid Attribute Value Length", fix: "namespace string length must be between 1 and 63, got: 0"},
		{name: "upper-case ServiceAccount", config: names(ns, "API"), summary: "Invalid Attribute Value Match", fix: subdomainFix},
		{name: "ServiceAccount with a slash", config: names(ns, "api/v2"), summary: "Invalid Attribute Value Match", fix: subdomainFix},
		{name: "ServiceAccount starting with a dash", config: names(ns, "-api"), summary: "Invalid Attribute Value Match", fix: subdomainFix},
		{name: "ServiceAccount too long", config: names(ns, strings.Repeat("s", 254)), summary: "Invalid Attribute Value Length", fix: "service_account string length must be between 1 and 253, got: 254"},

		// Other attributes of the binding.
		{name: "token expiration below 600", config: with("  token_expiration = 599"), summary: "Invalid Token Expiration", fix: "Set a value between 600 and 86400"},
		{name: "token expiration above 2^32", config: with("  token_expiration = 4294967297"), summary: "Invalid Token Expiration", fix: "Set a value between 600 and 86400"},
		{name: "empty audience", config: with(`  audience = ""`), summary: "Invalid Attribute Value Length", fix: "audience string length must be at least 1, got: 0"},
		{name: "unknown restart strategy", config: with(`  restart = { strategy = "restart" }`), summary: "Invalid Attribute Value Match", fix: `value must be one of: ["rollout" "evict" "delete" "none"]`},
		{name: "unbalanced pod selector", config: with(`  restart = { pod_selector = "app in (api" }`), summary: "Invalid Label Selector", fix: "is not a label selector (for example app=api or app in (api,worker))"},
		{name: "pod selector with an invalid key", config: with(`  restart = { pod_selector = "-app=api" }`), summary: "Invalid Label Selector", fix: "is not a label selector (for example app=api"},
		{name: "zero create timeout", config: with(`  timeouts = { create = "0s" }`), summary: "Invalid Timeout", fix: `Set a positive duration such as "10m", or remove it to use the default`},
		{name: "negative delete timeout", config: with(`  timeouts = { delete = "-1m" }`), summary: "Invalid Timeout", fix: `Set a positive duration such as "10m"`},
		{name: "timeout without a unit", config: with(`  timeouts = { update = "10" }`), summary: "Invalid Attribute Value Time Duration", fix: `must be a string containing a sequence of decimal numbers, each with optional fraction and a unit suffix`},

		// The provider's own settings.
		{name: "empty field manager", config: provider(`  field_manager = ""`) + good, summary: "Invalid Field Manager", fix: "it is empty, and server-side apply requires a field manager. Set a name of 1 to 111 printable characters"},
		{name: "field manager too long", config: provider(`  field_manager = "`+strings.Repeat("m", 112)+`"`) + good, summary: "Invalid Field Manager", fix: "it is 112 bytes long, and each binding writes as it, a slash and its 16-character ID. Set a name of 1 to 111 printable characters"},
		{name: "field manager with a newline", config: provider(`  field_manager = "irsa\n"`) + good, summary: "Invalid Field Manager", fix: "invalid character U+000A (at position 4). Set a name of 1 to 111 printable characters"},
		{name: "unknown trust check mode", config: "provider \"irsa\" {\n  trust_check = \"strict\"\n}\n" + good, summary: "Invalid Attribute Value Match", fix: `value must be one of: ["error" "warn" "off"]`},
		{name: "plain-http OIDC issuer", config: provider(`  oidc_issuer = "http://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"`) + good, summary: "Invalid Attribute Value Match", fix: "oidc_issuer must be an https:// URL"},

		// Reaching the cluster.
		{name: "unreachable host", config: connect(`    host = "https://127.0.0.1:1"
    token = "x"
    insecure = true`), summary: "Unable to Read Service Account", fix: connFix},
		{name: "wrong CA", config: connect(fmt.Sprintf("    host = %q\n    token = \"x\"\n    cluster_ca_certificate = %q", host, otherCAPEM(t))),
			summary: "Unable to Read Service Account", fix: "Set kubernetes.cluster_ca_certificate (or the kubeconfig's certificate-authority-data) to the cluster's CA"},
		{name: "invalid token", config: connect(fmt.Sprintf("    host = %q\n    token = \"expired-or-revoked\"\n    cluster_ca_certificate = %q", host, ca)),
			summary: "Unable to Read Service Account", fix: "The token may have expired or the exec plugin may return credentials for another cluster; check the kubernetes block"},
		{name: "failing exec plugin", config: connect(fmt.Sprintf(`    host = %q
    cluster_ca_certificate = %q
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "sh"
      args        = ["-c", "exit 1"]
    }`, host, ca)), summary: "Unable to Read Service Account", fix: "Run the plugin's command yourself to see its message and fix what it reports"},
		{name: "missing exec plugin", config: connect(fmt.Sprintf(`    host = %q
    cluster_ca_certificate = %q
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "/nonexistent/aws-iam-authenticator"
    }`, host, ca)), summary: "Unable to Read Service Account", fix: "Run the plugin's command yourself"},
		{name: "unknown context", config: connect(fmt.Sprintf("    config_path = %q\n    config_context = \"prod-eu\"", os.Getenv("KUBECONFIG"))),
			summary: "Kubernetes Connection Not Configured", fix: `The kubeconfig has no context "prod-eu". Set kubernetes.config_context (or KUBE_CTX) to one of its contexts`},
		{name: "missing kubeconfig", config: connect(`    config_path = "/nonexistent/kubeconfig"`),
			summary: "Kubernetes Connection Not Configured", fix: "A kubeconfig file the provider was given does not exist. Check kubernetes.config_path"},

		// The trust-policy data source.
		{name: "null ServiceAccount in the data source", config: policy("  account_id = \"123456789012\"\n  service_accounts = [null]"),
			summary: "Null Service Account", fix: "Every element must be a ServiceAccount as NAMESPACE/NAME, such as payments/api: remove the null"},
		{name: "no ServiceAccounts in the data source", config: policy("  account_id = \"123456789012\"\n  service_accounts = []"),
			summary: "Invalid Attribute Value", fix: "service_accounts list must contain at least 1 elements"},
		{name: "ServiceAccount without a namespace in the data source", config: policy("  account_id = \"123456789012\"\n  service_accounts = [\"api\"]"),
			summary: "Invalid Attribute Value Match", fix: "must be NAMESPACE/NAME, for example payments/api"},
		{name: "short account ID in the data source", config: policy("  account_id = \"12345\"\n  service_accounts = [\"payments/api\"]"),
			summary: "Invalid Attribute Value Match", fix: "account_id must be a 12-digit account ID"},

		// Import IDs.
		{name: "import ID without a namespace", config: provider("") + good, importID: "api",
			summary: "Invalid Import ID", fix: "it has no '/' between the namespace and the ServiceAccount name. Give the namespace and the ServiceAccount's name"},
		{name: "import ID with an upper-case namespace", config: provider("") + good, importID: "Payments/api",
			summary: "Invalid Import ID", fix: `namespace "Payments" is not valid: a lowercase RFC 1123 label`},
		{name: "import ID with a namespace too long", config: provider("") + good, importID: long + "/api",
			summary: "Invalid Import ID", fix: "must be no more than 63 characters"},

		// Found missing only by apply: plan warns, as they may be created
		// earlier in the same apply.
		{name: "missing ServiceAccount", config: names(ns, "ghost"), apply: true,
			summary: "Service Account Not Found", fix: "or set create_service_account = true to let this binding create it"},
		{name: "missing namespace", config: names(absentNS, "api"), apply: true,
			summary: "Service Account Not Found", fix: "Check the namespace and name, create it first"},
		{name: "missing namespace of a ServiceAccount to create", config: provider("") + binding(absentNS, "api", testRoleA, "  create_service_account = true"), apply: true,
			summary: "Namespace Not Found", fix: "create_service_account creates the ServiceAccount, never its namespace: check the namespace's name, or create the namespace first"},

		// Accepted, with a warning.
		{name: "plain-http API server", config: provider("  kubernetes = {\n    host = \"http://192.0.2.10:8080\"\n    token = \"x\"\n  }") +
			"data \"irsa_trust_policy\" \"test\" {\n  oidc_issuer = \"https://oidc.example.com\"\n  account_id = \"123456789012\"\n  service_accounts = [\"payments/api\"]\n}\n",
			warning: true, summary: "Kubernetes API Server Over Plain HTTP", fix: "Use the server's https:// URL with cluster_ca_certificate"},
		{name: "plain-http IAM endpoint", config: provider("  aws = { iam_endpoint = \"http://iam.internal.example\" }") +
			"data \"irsa_trust_policy\" \"test\" {\n  oidc_issuer = \"https://oidc.example.com\"\n  account_id = \"123456789012\"\n  service_accounts = [\"payments/api\"]\n}\n",
			warning: true, summary: "AWS Endpoint Over Plain HTTP", fix: "Use an https:// endpoint (aws.iam_endpoint, or AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL)"},
		{name: "token expiration above the EKS maximum", config: with("  token_expiration = 172800"),
			warning: true, summary: "Token Expiration Above the EKS Maximum", fix: "Set at most 86400 on EKS"},

		// mechanism = "pod_identity".
		{name: "unknown mechanism", config: with(`  mechanism = "pod-identity"`), summary: "Invalid Attribute Value Match", fix: `value must be one of: ["irsa" "pod_identity"]`},
		{name: "pod identity without a cluster name", config: with(`  mechanism = "pod_identity"`), summary: "Cluster Name Required", fix: "Set cluster_name in the provider block"},
		{name: "audience with pod identity", config: podIdentity(`  audience = "sts.amazonaws.com"`), summary: "Attribute Not Used by EKS Pod Identity", fix: "Remove audience, or use mechanism = \"irsa\""},
		{name: "token expiration with pod identity", config: podIdentity(`  token_expiration = 3600`), summary: "Attribute Not Used by EKS Pod Identity", fix: "Remove token_expiration"},
		{name: "regional endpoints with pod identity", config: podIdentity(`  sts_regional_endpoints = true`), summary: "Attribute Not Used by EKS Pod Identity", fix: "Remove sts_regional_endpoints"},
		{name: "pod identity settings under IRSA", config: with(`  pod_identity = { disable_session_tags = true }`), summary: "Pod Identity Settings Without Pod Identity", fix: "Set mechanism = \"pod_identity\", or remove pod_identity"},
		{name: "session policy with session tags", config: podIdentity(`  pod_identity = { session_policy = jsonencode({ Version = "2012-10-17", Statement = [] }) }`), summary: "Session Policy Needs Session Tags Off", fix: "Set pod_identity.disable_session_tags = true"},
		{name: "session policy that is not JSON", config: podIdentity(`  pod_identity = {
    disable_session_tags = true
    session_policy       = "s3:GetObject"
  }`), summary: "Invalid Session Policy", fix: "must be an IAM policy document, a JSON object"},
		{name: "session policy without statements", config: podIdentity(`  pod_identity = {
    disable_session_tags = true
    session_policy       = jsonencode({ Version = "2012-10-17" })
  }`), summary: "Invalid Session Policy", fix: "has no Statement"},
		{name: "session policy too long", config: podIdentity(`  pod_identity = {
    disable_session_tags = true
    session_policy       = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "s3:GetObject", Resource = "` + strings.Repeat("r", 2100) + `" }] })
  }`), summary: "Session Policy Too Long", fix: "EKS accepts at most 2048"},
		{name: "target role that is a role name", config: podIdentity(`  pod_identity = { target_role_arn = "payments-api" }`), summary: "Invalid IAM Role ARN", fix: arnFix},
		{name: "association tag with the aws: prefix", config: podIdentity(`  pod_identity = { tags = { "aws:team" = "payments" } }`), summary: "Reserved Tag Key", fix: "Use another prefix"},
		{name: "association tag key too long", config: podIdentity(`  pod_identity = { tags = { "` + strings.Repeat("k", 129) + `" = "x" } }`), summary: "Invalid Attribute Value Length", fix: "string length must be between 1 and 128"},
		{name: "cluster name with a space", config: "provider \"irsa\" {\n  trust_check = \"off\"\n  cluster_name = \"payments prod\"\n}\n" + binding(ns, "api", testRoleA, `  mechanism = "pod_identity"`), summary: "Invalid Attribute Value Match", fix: "must be an EKS cluster name"},
	}
}

// Bad input through the real terraform CLI: every row ends in a diagnostic
// that says what is wrong and how to fix it, and leaves the cluster as it
// was. A provider panic would crash the test binary.
func TestAccBadInputs(t *testing.T) {
	requireEnv(t)
	testAccPreCheck(t)
	c := newTestCluster(t)
	c.createSA("api")
	c.createDeployment("api", "api", 1)
	c.waitPods("api", 1)
	// The controller-manager adds the namespace's default ServiceAccount
	// by itself: wait for it, so the snapshot does not race it.
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.getSA("default")
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the namespace's default ServiceAccount: %v", err)
	}
	before, err := c.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	absentNS := "absent-" + k8srand.String(8)

	rows := badInputs(t, c.ns, absentNS)
	if len(rows) < 60 {
		t.Fatalf("only %d bad inputs", len(rows))
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if tt.warning {
				t.Parallel()
				tf := newTerraformCLI(t, tt.config)
				code, out := tf.run("plan", "-input=false", "-no-color")
				want := regexp.MustCompile(`(?s)Warning:(?:\s|│)+` + phrase(tt.summary) + `.*` + phrase(tt.fix))
				if code != 0 || strings.Contains(out, "Error:") || !want.MatchString(out) {
					t.Fatalf("plan exited %d; want 0 with a warning matching %s:\n%s", code, want, out)
				}
			} else {
				step := resource.TestStep{
					Config:      tt.config,
					PlanOnly:    !tt.apply && tt.importID == "",
					ExpectError: regexp.MustCompile(`(?s)Error:(?:\s|│)+` + phrase(tt.summary) + `.*` + phrase(tt.fix)),
				}
				if tt.importID != "" {
					step.ResourceName, step.ImportState, step.ImportStateId = resourceAddr, true, tt.importID
				}
				resource.ParallelTest(t, resource.TestCase{
					ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
					Steps:                    []resource.TestStep{step},
				})
			}

			after, err := c.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if !before.equal(after) {
				t.Errorf("the cluster changed:\nbefore %+v\nafter  %+v", before, after)
			}
			if _, err := c.client.CoreV1().Namespaces().Get(context.Background(), absentNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("namespace %s: %v, want it never created", absentNS, err)
			}
		})
	}
}
