// Package trust is the pure logic of IAM role trust policies for IRSA:
// parsing a policy document, deciding whether it lets a ServiceAccount of a
// cluster assume the role (and explaining why not), and rendering the policy
// that would. It makes no AWS calls.
package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Action is what pods call to get credentials for the role.
const Action = "sts:AssumeRoleWithWebIdentity"

// DefaultAudience is the token audience of the EKS pod identity webhook.
const DefaultAudience = "sts.amazonaws.com"

// IssuerHost is the issuer URL without its scheme: the OIDC provider's name
// in its ARN, and the prefix of its condition keys.
func IssuerHost(issuer string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(issuer, "https://"), "http://"), "/")
}

// ProviderARN is the ARN of the IAM OIDC provider for issuer in an account.
func ProviderARN(partition, accountID, issuer string) string {
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, accountID, IssuerHost(issuer))
}

// Subject is the token subject of a ServiceAccount.
func Subject(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// Grant is what a rendered policy allows: the ServiceAccount subjects (with
// * and ? wildcards) of one cluster, through one OIDC provider.
type Grant struct {
	ProviderARN string
	Issuer      string
	Audience    string
	Subjects    []string
}

// Statement renders the single statement that allows g.
func (g Grant) Statement() (Statement, error) {
	if g.ProviderARN == "" || g.Issuer == "" || len(g.Subjects) == 0 {
		return Statement{}, errors.New("a grant needs an OIDC provider ARN, an issuer and at least one subject")
	}
	host := IssuerHost(g.Issuer)
	aud := g.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	subOp := "StringEquals"
	for _, s := range g.Subjects {
		if strings.ContainsAny(s, "*?") {
			subOp = "StringLike"
		}
	}
	cond := map[string]map[string]Values{
		"StringEquals": {host + ":aud": {aud}},
	}
	if subOp == "StringEquals" {
		cond["StringEquals"][host+":sub"] = g.Subjects
	} else {
		cond["StringLike"] = map[string]Values{host + ":sub": g.Subjects}
	}
	return Statement{
		Effect:    "Allow",
		Principal: &Principal{Federated: Values{g.ProviderARN}},
		Action:    Values{Action},
		Condition: cond,
	}, nil
}

// Render returns the assume-role policy document that allows g, as stable,
// indented JSON (map keys sorted), ready for aws_iam_role.assume_role_policy.
func Render(g Grant) (string, error) {
	st, err := g.Statement()
	if err != nil {
		return "", err
	}
	return renderJSON(Document{Version: "2012-10-17", Statement: []Statement{st}})
}

// RenderStatement returns one statement as indented JSON, for messages that
// show the statement to add.
func RenderStatement(g Grant) string {
	st, err := g.Statement()
	if err != nil {
		return ""
	}
	out, _ := renderJSON(st)
	return out
}

func renderJSON(v any) (string, error) {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	return string(out), nil
}
