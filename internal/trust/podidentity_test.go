package trust

import (
	"strings"
	"testing"
)

func TestCheckPodIdentity(t *testing.T) {
	t.Parallel()
	req := PodIdentityRequest{
		ClusterName: "payments-prod", ClusterARN: "arn:aws:eks:us-east-1:123456789012:cluster/payments-prod",
		Namespace: "payments", ServiceAccount: "api",
	}
	allow := func(action, cond string) string {
		s := `{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":` + action
		if cond != "" {
			s += `,"Condition":` + cond
		}
		return s + `}`
	}
	both := `["sts:AssumeRole","sts:TagSession"]`
	tests := []struct {
		name    string
		policy  string
		req     PodIdentityRequest
		want    Outcome
		message string
	}{
		{"AWS's documented statement", doc(allow(both, "")), req, Allowed, ""},
		{"wildcard action", doc(allow(`"sts:*"`, "")), req, Allowed, ""},
		{"without TagSession", doc(allow(`"sts:AssumeRole"`, "")), req, NotAllowed, "call sts:TagSession"},
		{"IRSA statement only", doc(stmt(condOK)), req, NotAllowed, "no Allow statement lets pods.eks.amazonaws.com call sts:AssumeRole"},
		{"another service", doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":` + both + `}`), req, NotAllowed, "no Allow statement lets"},
		{"narrowed to this ServiceAccount", doc(allow(both, `{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"payments","aws:RequestTag/kubernetes-service-account":"api","aws:RequestTag/eks-cluster-name":"payments-prod"}}`)), req, Allowed, ""},
		{"narrowed by a pattern", doc(allow(both, `{"StringLike":{"aws:RequestTag/kubernetes-service-account":"ap*"}}`)), req, Allowed, ""},
		{"narrowed to another namespace", doc(allow(both, `{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"billing"}}`)), req, NotAllowed, "allows session tag kubernetes-namespace billing, not payments"},
		{"narrowed to another cluster ARN", doc(allow(both, `{"StringEquals":{"aws:RequestTag/eks-cluster-arn":"arn:aws:eks:us-east-1:123456789012:cluster/other"}}`)), req, NotAllowed, "not arn:aws:eks:us-east-1:123456789012:cluster/payments-prod"},
		{"session tags disabled but required", doc(allow(both, `{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"payments"}}`)),
			PodIdentityRequest{ClusterName: "payments-prod", Namespace: "payments", ServiceAccount: "api", NoSessionTags: true}, NotAllowed, "disables session tags"},
		{"narrowed by pod name", doc(allow(both, `{"StringLike":{"aws:RequestTag/kubernetes-pod-name":"api-*"}}`)), req, Undetermined, "depends on the call"},
		{"narrowed by source account", doc(allow(both, `{"StringEquals":{"aws:SourceAccount":"123456789012"}}`)), req, Undetermined, "depends on the call"},
		{"explicit Deny of this namespace", doc(allow(both, ""), `{"Effect":"Deny","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"payments"}}}`), req, NotAllowed, "explicitly denies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(expand(tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			v := CheckPodIdentity(d, tt.req)
			if v.Outcome != tt.want {
				t.Fatalf("outcome %v, want %v (reasons %q)", v.Outcome, tt.want, v.Reasons)
			}
			if got := strings.Join(v.Reasons, "; "); !strings.Contains(got, tt.message) {
				t.Errorf("reasons %q do not contain %q", got, tt.message)
			}
			if tt.want != Allowed && !strings.Contains(v.StatementToAdd, `"pods.eks.amazonaws.com"`) {
				t.Errorf("StatementToAdd does not name the service: %s", v.StatementToAdd)
			}
		})
	}
}

// TestRenderedPodIdentityStatementIsAllowed: what the renderer writes for a
// binding, the check admits, and it admits no other namespace.
func TestRenderedPodIdentityStatementIsAllowed(t *testing.T) {
	t.Parallel()
	g := PodIdentityGrant{ClusterName: "payments-prod", Namespace: "payments", ServiceAccount: "api*"}
	d, err := Parse(`{"Version":"2012-10-17","Statement":[` + RenderPodIdentityStatement(g) + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	ok := PodIdentityRequest{ClusterName: "payments-prod", Namespace: "payments", ServiceAccount: "api-v2"}
	if v := CheckPodIdentity(d, ok); v.Outcome != Allowed {
		t.Errorf("the rendered statement does not admit its binding: %q", v.Reasons)
	}
	other := ok
	other.Namespace = "billing"
	if v := CheckPodIdentity(d, other); v.Outcome != NotAllowed {
		t.Errorf("the rendered statement admits another namespace: %v", v.Outcome)
	}
}

// TestMigrationDocumentTrustsBoth: one document with the IRSA statement and
// the Pod Identity statements admits the ServiceAccount through both calls,
// and no other ServiceAccount through either.
func TestMigrationDocumentTrustsBoth(t *testing.T) {
	t.Parallel()
	irsa, err := Grant{ProviderARN: testARN, Issuer: testIssuer, Subjects: []string{testSub}}.Statement()
	if err != nil {
		t.Fatal(err)
	}
	text, err := RenderDocument(append([]Statement{irsa}, PodIdentityStatements("payments-prod", []string{"payments/api"}, false)...)...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: testSub}); v.Outcome != Allowed {
		t.Errorf("IRSA: %v %q", v.Outcome, v.Reasons)
	}
	if v := CheckPodIdentity(d, PodIdentityRequest{ClusterName: "payments-prod", Namespace: "payments", ServiceAccount: "api"}); v.Outcome != Allowed {
		t.Errorf("Pod Identity: %v %q", v.Outcome, v.Reasons)
	}
	if v := CheckPodIdentity(d, PodIdentityRequest{ClusterName: "payments-prod", Namespace: "payments", ServiceAccount: "worker"}); v.Outcome == Allowed {
		t.Error("Pod Identity admits another ServiceAccount")
	}
	if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: "system:serviceaccount:payments:worker"}); v.Outcome == Allowed {
		t.Error("IRSA admits another ServiceAccount")
	}
	if v := CheckPodIdentity(Document{Statement: PodIdentityStatements("", nil, true)}, PodIdentityRequest{NoSessionTags: true, Namespace: "x", ServiceAccount: "y"}); v.Outcome != Allowed {
		t.Errorf("the untagged statement: %v %q", v.Outcome, v.Reasons)
	}
}
