package eksauth

import (
	"net/url"
	"strings"
	"testing"
)

// Expectations from the IAM policy grammar and evaluation logic (a Deny
// wins, every condition operator and key must hold, a missing key fails a
// positive operator) and the documented trust policy of a Pod Identity role.
func TestPolicyAllows(t *testing.T) {
	t.Parallel()
	pods := trustRequest{
		principalType: "Service", principal: ServicePrincipal,
		keys: map[string][]string{
			"aws:requesttag/kubernetes-namespace": {"prod"},
			"aws:tagkeys":                         {"kubernetes-namespace", "eks-cluster-name"},
			"aws:sourceaccount":                   {"123456789012"},
		},
	}
	target := trustRequest{principalType: "AWS", principal: "arn:aws:iam::111111111111:role/first", account: "111111111111"}
	const documented = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":` + s + `}` }

	for _, tc := range []struct {
		name, policy string
		req          trustRequest
		action       string
		want         bool
		wantErr      string
	}{
		{name: "documented policy, AssumeRole", policy: documented, req: pods, action: "sts:AssumeRole", want: true},
		{name: "documented policy, TagSession", policy: documented, req: pods, action: "sts:TagSession", want: true},
		{name: "URL-encoded as GetRole returns it", policy: url.QueryEscape(documented), req: pods, action: "sts:AssumeRole", want: true},
		{name: "without TagSession", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}`),
			req: pods, action: "sts:TagSession", want: false},
		{name: "another service", policy: stmt(`[{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":"sts:*"}]`),
			req: pods, action: "sts:AssumeRole", want: false},
		{name: "action wildcard, case-insensitive", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"STS:Assume*"}`),
			req: pods, action: "sts:AssumeRole", want: true},
		{name: "NotAction", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"NotAction":"sts:TagSession"}`),
			req: pods, action: "sts:TagSession", want: false},
		{name: "principal star", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}`), req: pods, action: "sts:AssumeRole", want: true},
		{name: "deny wins", policy: stmt(`[` + strings.TrimSuffix(strings.TrimPrefix(documented, `{"Version":"2012-10-17","Statement":[`), `]}`) +
			`,{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]`), req: pods, action: "sts:AssumeRole", want: false},
		{name: "request tag matches", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":["dev","prod"]},"StringLike":{"aws:SourceAccount":"1234*"}}}`),
			req: pods, action: "sts:AssumeRole", want: true},
		{name: "request tag differs", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"dev"}}}`), req: pods, action: "sts:AssumeRole", want: false},
		{name: "missing key fails StringEquals", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"StringEquals":{"aws:SourceArn":"arn:aws:eks:us-east-1:123456789012:cluster/x"}}}`), req: pods, action: "sts:AssumeRole", want: false},
		{name: "missing key passes IfExists", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:eks:us-east-1:123456789012:cluster/x"}}}`), req: pods, action: "sts:AssumeRole", want: true},
		{name: "missing key passes StringNotEquals", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"StringNotEquals":{"aws:SourceArn":"x"}}}`), req: pods, action: "sts:AssumeRole", want: true},
		{name: "Null", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole",
			"Condition":{"Null":{"aws:RequestTag/kubernetes-namespace":"false"}}}`), req: pods, action: "sts:AssumeRole", want: true},
		{name: "ForAllValues tag keys outside the set", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:TagSession",
			"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["kubernetes-namespace"]}}}`), req: pods, action: "sts:TagSession", want: false},
		{name: "ForAnyValue tag keys", policy: stmt(`{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:TagSession",
			"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["kubernetes-namespace"]}}}`), req: pods, action: "sts:TagSession", want: true},
		{name: "target role trusts the role", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/first"},"Action":"sts:AssumeRole"}`),
			req: target, action: "sts:AssumeRole", want: true},
		{name: "target role trusts the account root", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111111111111:root"]},"Action":"sts:AssumeRole"}`),
			req: target, action: "sts:AssumeRole", want: true},
		{name: "target role trusts the account", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"sts:AssumeRole"}`),
			req: target, action: "sts:AssumeRole", want: true},
		{name: "target role trusts another role", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/other"},"Action":"sts:AssumeRole"}`),
			req: target, action: "sts:AssumeRole", want: false},
		{name: "a service principal is not an AWS one", policy: documented, req: target, action: "sts:AssumeRole", want: false},
		{name: "NotPrincipal is not guessed at", policy: stmt(`{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"sts:AssumeRole"}`),
			req: pods, action: "sts:AssumeRole", wantErr: "NotPrincipal"},
		{name: "unknown operator is not guessed at", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}`),
			req: pods, action: "sts:AssumeRole", wantErr: "DateGreaterThan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := parsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			req := tc.req
			req.action = tc.action
			got, err := p.allows(req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("allows = %v, %v; want an error naming %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("allows = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParsePolicy_NotJSON(t *testing.T) {
	t.Parallel()
	if _, err := parsePolicy("not a policy"); err == nil {
		t.Fatal("parsePolicy accepted text that is not a policy")
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*:role/*", "arn:aws:iam::1:role/x", true}, {"abc", "abcd", false}, {"**", "x", true},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
