package trust

import (
	"net/url"
	"strings"
	"testing"
)

const (
	testIssuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	testHost   = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	testARN    = "arn:aws:iam::123456789012:oidc-provider/" + testHost
	testSub    = "system:serviceaccount:payments:api"
)

var expand = strings.NewReplacer("{P}", testARN, "{H}", testHost).Replace

// stmt is the usual IRSA statement with the given conditions.
func stmt(conditions string) string {
	return `{"Effect":"Allow","Principal":{"Federated":"{P}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":` + conditions + `}`
}

func doc(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

const (
	condOK = `{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api","{H}:aud":"sts.amazonaws.com"}}`
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  string
		req     Request
		want    Outcome
		message string // substring of the joined reasons
		allowed string // substring of the allowed subjects, when set
	}{
		{name: "correct", policy: doc(stmt(condOK)), want: Allowed},
		{name: "statement as an object, not a list", policy: `{"Version":"2012-10-17","Statement":` + stmt(condOK) + `}`, want: Allowed},
		{
			name: "wrong namespace", want: NotAllowed, allowed: "system:serviceaccount:billing:api",
			policy:  doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:billing:api","{H}:aud":"sts.amazonaws.com"}}`)),
			message: "allows subject system:serviceaccount:billing:api, not system:serviceaccount:payments:api",
		},
		{
			name: "wrong service account name", want: NotAllowed, allowed: "system:serviceaccount:payments:api-v2",
			policy:  doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api-v2"}}`)),
			message: "allows subject system:serviceaccount:payments:api-v2",
		},
		{
			name: "Helm release prefix", want: NotAllowed,
			policy:  doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:release-api"}}`)),
			message: "system:serviceaccount:payments:release-api, not system:serviceaccount:payments:api",
		},
		{
			name: "condition key of another cluster", want: NotAllowed,
			policy:  doc(stmt(`{"StringEquals":{"oidc.eks.us-east-1.amazonaws.com/id/OTHER:sub":"system:serviceaccount:payments:api"}}`)),
			message: "belongs to issuer oidc.eks.us-east-1.amazonaws.com/id/OTHER",
		},
		{
			name: "condition key with https://", want: NotAllowed,
			policy:  doc(stmt(`{"StringEquals":{"https://{H}:sub":"system:serviceaccount:payments:api"}}`)),
			message: "belongs to issuer https://",
		},
		{
			name: "condition key typo", want: NotAllowed,
			policy:  doc(stmt(`{"StringEquals":{"{H}:subject":"system:serviceaccount:payments:api"}}`)),
			message: "the token carries no such key",
		},
		{name: "StringLike wildcard in namespace", policy: doc(stmt(`{"StringLike":{"{H}:sub":"system:serviceaccount:*:api"}}`)), want: Allowed},
		{name: "StringLike wildcard in name", policy: doc(stmt(`{"StringLike":{"{H}:sub":"system:serviceaccount:payments:a?i"}}`)), want: Allowed},
		{
			name: "StringEquals does not expand wildcards", want: NotAllowed,
			policy: doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:*"}}`)), message: "allows subject system:serviceaccount:payments:*",
		},
		{
			name:   "list of subjects",
			policy: doc(stmt(`{"StringEquals":{"{H}:sub":["system:serviceaccount:payments:worker","system:serviceaccount:payments:api"]}}`)), want: Allowed,
		},
		{name: "missing aud condition still allows", policy: doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api"}}`)), want: Allowed},
		{
			name: "wrong audience", want: NotAllowed,
			policy:  doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api","{H}:aud":"sts.amazonaws.com.cn"}}`)),
			message: "allows audience sts.amazonaws.com.cn, not sts.amazonaws.com",
		},
		{
			name: "custom audience requested", want: Allowed, req: Request{Audience: "custom"},
			policy: doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api","{H}:aud":"custom"}}`)),
		},
		{
			name: "wrong provider", want: NotAllowed,
			policy:  strings.Replace(doc(stmt(condOK)), `"Federated":"{P}"`, `"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X"`, 1),
			message: "trusts arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X",
		},
		{
			name: "provider of another account", want: NotAllowed,
			policy:  strings.Replace(doc(stmt(condOK)), `"Federated":"{P}"`, `"Federated":"arn:aws:iam::210987654321:oidc-provider/{H}"`, 1),
			message: "no Allow statement trusts the cluster's OIDC provider",
		},
		{
			name: "service principal only", want: NotAllowed,
			policy:  doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}`),
			message: "no Allow statement grants sts:AssumeRoleWithWebIdentity",
		},
		{
			name: "explicit Deny wins", want: NotAllowed,
			policy: doc(stmt(condOK),
				`{"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"StringLike":{"{H}:sub":"system:serviceaccount:payments:*"}}}`),
			message: "explicitly denies it",
		},
		{
			name: "Deny for another namespace does not apply", want: Allowed,
			policy: doc(stmt(condOK),
				`{"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"StringLike":{"{H}:sub":"system:serviceaccount:kube-system:*"}}}`),
		},
		{
			name: "NotPrincipal is reported and ignored", want: NotAllowed,
			policy:  doc(`{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRoleWithWebIdentity"}`),
			message: "uses NotPrincipal",
		},
		{
			name:   "Action list",
			policy: strings.Replace(doc(stmt(condOK)), `"Action":"sts:AssumeRoleWithWebIdentity"`, `"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity","sts:TagSession"]`, 1), want: Allowed,
		},
		{name: "Action wildcard", policy: strings.Replace(doc(stmt(condOK)), `"Action":"sts:AssumeRoleWithWebIdentity"`, `"Action":"sts:AssumeRole*"`, 1), want: Allowed},
		{name: "Action case-insensitive", policy: strings.Replace(doc(stmt(condOK)), `"sts:AssumeRoleWithWebIdentity"`, `"STS:assumerolewithwebidentity"`, 1), want: Allowed},
		{
			name: "NotAction that excludes it", want: NotAllowed,
			policy: strings.Replace(doc(stmt(condOK)), `"Action":"sts:AssumeRoleWithWebIdentity"`, `"NotAction":"sts:AssumeRoleWithWebIdentity"`, 1), message: "no Allow statement grants",
		},
		{name: "NotAction that does not exclude it", policy: strings.Replace(doc(stmt(condOK)), `"Action":"sts:AssumeRoleWithWebIdentity"`, `"NotAction":"sts:AssumeRole"`, 1), want: Allowed},
		{
			name:   "Principal list",
			policy: strings.Replace(doc(stmt(condOK)), `"Federated":"{P}"`, `"Federated":["arn:aws:iam::123456789012:oidc-provider/other","{P}"]`, 1), want: Allowed,
		},
		{name: "ForAnyValue:StringLike", policy: doc(stmt(`{"ForAnyValue:StringLike":{"{H}:sub":["system:serviceaccount:payments:*"]}}`)), want: Allowed},
		{
			name: "ForAllValues:StringEquals mismatch", want: NotAllowed,
			policy: doc(stmt(`{"ForAllValues:StringEquals":{"{H}:sub":["system:serviceaccount:other:api"]}}`)), message: "not system:serviceaccount:payments:api",
		},
		{name: "StringEqualsIgnoreCase", policy: doc(stmt(`{"StringEqualsIgnoreCase":{"{H}:sub":"SYSTEM:serviceaccount:Payments:API"}}`)), want: Allowed},
		{
			name: "StringNotEquals excluding the subject", want: NotAllowed,
			policy: doc(stmt(`{"StringNotEquals":{"{H}:sub":"system:serviceaccount:payments:api"}}`)), message: "excludes the subject",
		},
		{name: "IfExists on another issuer's key", policy: doc(stmt(`{"StringEqualsIfExists":{"oidc.example.com:sub":"x"},"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api"}}`)), want: Allowed},
		{
			name: "unknown operator is reported, never accepted", want: Undetermined,
			policy: doc(stmt(`{"ArnLike":{"{H}:sub":"system:serviceaccount:payments:api"}}`)), message: "not evaluated by this check",
		},
		{
			name: "call-time condition key is reported", want: Undetermined,
			policy: doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:payments:api"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), message: "depends on the call",
		},
		{
			name: "a definite mismatch beats an undecidable condition", want: NotAllowed,
			policy: doc(stmt(`{"StringEquals":{"{H}:sub":"system:serviceaccount:other:api"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), message: "not system:serviceaccount:payments:api",
		},
		{
			name: "Null requires the key", policy: doc(stmt(`{"Null":{"{H}:sub":"false"},"StringLike":{"{H}:sub":"system:serviceaccount:payments:*"}}`)), want: Allowed,
		},
		{name: "numbers and booleans as values", policy: doc(stmt(`{"StringEquals":{"{H}:sub":["system:serviceaccount:payments:api", 42, true]}}`)), want: Allowed},
	}
	if len(tests) < 25 {
		t.Fatalf("the table must cover at least 25 policies, has %d", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse(expand(tt.policy))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			req := Request{ProviderARN: testARN, Issuer: testIssuer, Subject: testSub, Audience: tt.req.Audience}
			v := Check(d, req)
			reasons := strings.Join(v.Reasons, " | ")
			if v.Outcome != tt.want {
				t.Fatalf("Outcome = %v, want %v; reasons: %s", v.Outcome, tt.want, reasons)
			}
			if !strings.Contains(reasons, tt.message) {
				t.Errorf("reasons %q do not contain %q", reasons, tt.message)
			}
			if tt.allowed != "" && !strings.Contains(strings.Join(v.AllowedSubjects, ","), tt.allowed) {
				t.Errorf("AllowedSubjects = %v, want %s", v.AllowedSubjects, tt.allowed)
			}
			if tt.want != Allowed && !strings.Contains(v.StatementToAdd, testSub) {
				t.Errorf("StatementToAdd does not name the subject: %s", v.StatementToAdd)
			}
		})
	}
}

func TestParse_urlEncoded(t *testing.T) {
	t.Parallel()
	raw := expand(doc(stmt(condOK)))
	d, err := Parse(url.QueryEscape(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: testSub}); v.Outcome != Allowed {
		t.Fatalf("URL-encoded policy: %+v", v)
	}
}

func TestParse_invalid(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "not json", `{"Version":"2012-10-17"}`, `{"Statement":[{"Principal":"someone"}]}`, `{"Statement":{"Action":{"a":1}}}`, "%7Bbad%ZZ"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestRender_passesTheCheck(t *testing.T) {
	t.Parallel()
	subjects := []string{"system:serviceaccount:payments:api", "system:serviceaccount:payments:worker-*"}
	policy, err := Render(Grant{ProviderARN: testARN, Issuer: testIssuer, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Render(Grant{ProviderARN: testARN, Issuer: testIssuer, Subjects: subjects})
	if policy != again {
		t.Fatal("Render is not stable")
	}
	if !strings.Contains(policy, `"StringLike"`) {
		t.Errorf("a wildcard subject must render StringLike:\n%s", policy)
	}
	d, err := Parse(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"system:serviceaccount:payments:api", "system:serviceaccount:payments:worker-7"} {
		if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: sub}); v.Outcome != Allowed {
			t.Errorf("rendered policy does not allow %s: %v", sub, v.Reasons)
		}
	}
	if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: "system:serviceaccount:billing:api"}); v.Outcome != NotAllowed {
		t.Errorf("rendered policy allows another namespace")
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*:api", "system:serviceaccount:x:api", true}, {"*:api", "system:serviceaccount:x:api-v2", false},
		{"**a**b", "xaxb", true}, {"abc", "abd", false},
	} {
		if got := glob(tt.p, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestSize_ignoresWhiteSpace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{`{}`, 2},
		{"{\n  \"Version\": \"2012-10-17\"\n}", 24}, // {"Version":"2012-10-17"}
		{"\t{ \r\n}", 2},
	} {
		if got := Size(tc.doc); got != tc.want {
			t.Errorf("Size(%q) = %d, want %d", tc.doc, got, tc.want)
		}
	}
}

func TestNearQuota(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, quota int
		near        bool
	}{
		{100, 2048, false},
		{1843, 2048, false},
		{1844, 2048, true}, // 90% of 2,048 is 1,843.2
		{2048, 2048, true},
		{2049, 4096, false}, // longer than 2,048: the quota was raised
		{3687, 4096, true},
		{5000, 4096, true},
	} {
		quota, near := NearQuota(tc.size)
		if quota != tc.quota || near != tc.near {
			t.Errorf("NearQuota(%d) = %d, %v; want %d, %v", tc.size, quota, near, tc.quota, tc.near)
		}
	}
}
