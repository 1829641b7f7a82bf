package provider

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// These unit tests drive checkTrust against a fake IAM and STS speaking the
// query protocol, for the answers the emulator does not give on demand:
// rejected credentials, denied actions, other partitions.

const fakeIssuer = "https://oidc.eks.us-east-1.amazonaws.com/id/FAKE"

func TestOutOfReach(t *testing.T) {
	t.Parallel()
	role := func(s string) iamarn.Role {
		r, err := iamarn.ParseRole(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	caller := awsiam.Identity{Account: "111111111111", Partition: "aws", ARN: "arn:aws:iam::111111111111:user/ci"}
	for _, tc := range []struct {
		name, role string
		summary    string
		mentions   []string
	}{
		{name: "same account", role: "arn:aws:iam::111111111111:role/api"},
		{name: "same account, with a path", role: "arn:aws:iam::111111111111:role/team/api"},
		{name: "another account", role: "arn:aws:iam::222222222222:role/api",
			summary:  "Trust Check Skipped: Role in Another Account",
			mentions: []string{"222222222222", "111111111111", "aws.assume_role", "iam:GetRole", "iam:GetOpenIDConnectProvider"}},
		{name: "another partition, same account number", role: "arn:aws-us-gov:iam::111111111111:role/api",
			summary:  "Trust Check Skipped: Role in Another Partition",
			mentions: []string{"aws-us-gov", "partition aws", "us-gov-west-1"}},
		{name: "china", role: "arn:aws-cn:iam::333333333333:role/api",
			summary:  "Trust Check Skipped: Role in Another Partition",
			mentions: []string{"aws-cn", "cn-north-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := outOfReach(role(tc.role), caller, "payments", "api")
			if tc.summary == "" {
				if d != nil {
					t.Fatalf("got %q, want the role checked", d.Summary())
				}
				return
			}
			if d == nil || d.Summary() != tc.summary || d.Severity() != diag.SeverityWarning {
				t.Fatalf("got %v, want a %q warning", d, tc.summary)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(d.Detail(), m) {
					t.Errorf("detail does not mention %q:\n%s", m, d.Detail())
				}
			}
		})
	}
}

// reply answers one request.
type reply func(r *http.Request) (int, string)

// signingRegion is the region a request was signed for.
func signingRegion(r *http.Request) string {
	_, scope, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if parts := strings.Split(scope, "/"); len(parts) > 2 {
		return parts[2]
	}
	return ""
}

// fakeAWS answers IAM and STS query actions; every request is counted by
// action.
type fakeAWS struct {
	mu      sync.Mutex
	answers map[string]reply
	calls   map[string]int
}

func newFakeAWS(t *testing.T, answers map[string]reply) (*fakeAWS, string) {
	t.Helper()
	f := &fakeAWS{answers: answers, calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		action := r.Form.Get("Action")
		f.mu.Lock()
		f.calls[action]++
		answer := f.answers[action]
		f.mu.Unlock()
		status, body := http.StatusBadRequest, awsError("InvalidAction")
		if answer != nil {
			status, body = answer(r)
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAWS) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func awsError(code string) string {
	return `<ErrorResponse><Error><Type>Sender</Type><Code>` + code + `</Code><Message>the ` + code + ` message</Message></Error><RequestId>r</RequestId></ErrorResponse>`
}

func answer(status int, body string) reply {
	return func(*http.Request) (int, string) { return status, body }
}

func callerAnswer(partition, account string) reply {
	return answer(http.StatusOK, fmt.Sprintf(`<GetCallerIdentityResponse><GetCallerIdentityResult>`+
		`<Arn>arn:%s:iam::%s:user/ci</Arn><UserId>AIDA1</UserId><Account>%s</Account></GetCallerIdentityResult>`+
		`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, partition, account, account))
}

func roleAnswer(policy string) reply {
	return answer(http.StatusOK, `<GetRoleResponse><GetRoleResult><Role><Path>/</Path><RoleName>api</RoleName>`+
		`<RoleId>AROA1</RoleId><Arn>arn:aws:iam::111111111111:role/api</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate>`+
		`<AssumeRolePolicyDocument>`+url.QueryEscape(policy)+`</AssumeRolePolicyDocument></Role></GetRoleResult>`+
		`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetRoleResponse>`)
}

var oidcProviderAnswer = answer(http.StatusOK, `<GetOpenIDConnectProviderResponse><GetOpenIDConnectProviderResult>`+
	`<ClientIDList><member>sts.amazonaws.com</member></ClientIDList><Url>oidc.eks.us-east-1.amazonaws.com/id/FAKE</Url>`+
	`</GetOpenIDConnectProviderResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetOpenIDConnectProviderResponse>`)

// fakeTrustResource is a binding resource whose IAM client talks to the
// fake at endpoint, with static credentials and no retry.
func fakeTrustResource(t *testing.T, endpoint, region string) *serviceAccountBindingResource {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_REGION": "",
		"AWS_ENDPOINT_URL_IAM": "", "AWS_ENDPOINT_URL_STS": "", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
	client, err := awsiam.New(t.Context(), awsiam.Settings{Region: region, IAMEndpoint: endpoint, STSEndpoint: endpoint, MaxAttempts: 1, NotFoundWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	d := &providerData{trustCheck: trustCheckError, oidcIssuer: fakeIssuer, iam: client}
	d.iamOnce.Do(func() {})
	return &serviceAccountBindingResource{data: d}
}

func allowingPolicy(t *testing.T, account string, subjects ...string) string {
	t.Helper()
	policy, err := trust.Render(trust.Grant{ProviderARN: trust.ProviderARN("aws", account, fakeIssuer), Issuer: fakeIssuer, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	return policy
}

func TestCheckTrust_decisions(t *testing.T) {
	allowed := allowingPolicy(t, "111111111111", trust.Subject("payments", "api"))
	// A policy of many subjects, close to IAM's 2,048 characters.
	many := []string{trust.Subject("payments", "api")}
	for i := 0; trust.Size(allowingPolicy(t, "111111111111", many...)) < 1900; i++ {
		many = append(many, trust.Subject("payments", fmt.Sprintf("api-%02d", i)))
	}
	for _, tc := range []struct {
		name     string
		role     string
		answers  map[string]reply
		errors   []string
		warnings []string
		getRoles int
	}{
		{
			name:     "same account: checked",
			role:     "arn:aws:iam::111111111111:role/api",
			answers:  map[string]reply{"GetCallerIdentity": callerAnswer("aws", "111111111111"), "GetRole": roleAnswer(allowed), "GetOpenIDConnectProvider": oidcProviderAnswer},
			getRoles: 1,
		},
		{
			// The caller's account has a role of the same name that
			// would pass: it must not be asked.
			name:     "another account: skipped, never looked up by name",
			role:     "arn:aws:iam::222222222222:role/api",
			answers:  map[string]reply{"GetCallerIdentity": callerAnswer("aws", "111111111111"), "GetRole": roleAnswer(allowed), "GetOpenIDConnectProvider": oidcProviderAnswer},
			warnings: []string{"Trust Check Skipped: Role in Another Account"},
		},
		{
			// Commercial keys at GovCloud's STS: InvalidClientTokenId
			// there, accepted at home, so the answer is "another
			// partition", not bad keys.
			name: "another partition: skipped",
			role: "arn:aws-us-gov:iam::111111111111:role/api",
			answers: map[string]reply{"GetCallerIdentity": func(r *http.Request) (int, string) {
				if signingRegion(r) == "us-gov-west-1" {
					return http.StatusForbidden, awsError("InvalidClientTokenId")
				}
				return callerAnswer("aws", "111111111111")(r)
			}},
			warnings: []string{"Trust Check Skipped: Role in Another Partition"},
		},
		{
			name:    "expired token",
			role:    "arn:aws:iam::111111111111:role/api",
			answers: map[string]reply{"GetCallerIdentity": answer(http.StatusForbidden, awsError("ExpiredToken"))},
			errors:  []string{"AWS Credentials Expired"},
		},
		{
			name:    "invalid key",
			role:    "arn:aws:iam::111111111111:role/api",
			answers: map[string]reply{"GetCallerIdentity": answer(http.StatusForbidden, awsError("InvalidClientTokenId"))},
			errors:  []string{"AWS Credentials Invalid"},
		},
		{
			name:     "signature does not match on GetRole",
			role:     "arn:aws:iam::111111111111:role/api",
			answers:  map[string]reply{"GetCallerIdentity": callerAnswer("aws", "111111111111"), "GetRole": answer(http.StatusForbidden, awsError("SignatureDoesNotMatch"))},
			errors:   []string{"AWS Credentials Invalid"},
			getRoles: 1,
		},
		{
			name:     "access denied: skipped",
			role:     "arn:aws:iam::111111111111:role/api",
			answers:  map[string]reply{"GetCallerIdentity": callerAnswer("aws", "111111111111"), "GetRole": answer(http.StatusForbidden, awsError("AccessDenied"))},
			warnings: []string{"Trust Check Skipped"},
			getRoles: 1,
		},
		{
			name:     "policy near the size quota",
			role:     "arn:aws:iam::111111111111:role/api",
			answers:  map[string]reply{"GetCallerIdentity": callerAnswer("aws", "111111111111"), "GetRole": roleAnswer(allowingPolicy(t, "111111111111", many...)), "GetOpenIDConnectProvider": oidcProviderAnswer},
			warnings: []string{"Trust Policy Near the IAM Size Quota"},
			getRoles: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, endpoint := newFakeAWS(t, tc.answers)
			r := fakeTrustResource(t, endpoint, "")
			diags := r.checkTrust(t.Context(), bindingModel("payments", "api", tc.role))
			if got := summaries(diags, diag.SeverityError); strings.Join(got, "|") != strings.Join(tc.errors, "|") {
				t.Errorf("errors = %q, want %q\n%v", got, tc.errors, diags)
			}
			if got := summaries(diags, diag.SeverityWarning); strings.Join(got, "|") != strings.Join(tc.warnings, "|") {
				t.Errorf("warnings = %q, want %q\n%v", got, tc.warnings, diags)
			}
			if got := fake.count("GetRole"); got != tc.getRoles {
				t.Errorf("GetRole calls = %d, want %d", got, tc.getRoles)
			}
		})
	}
}
