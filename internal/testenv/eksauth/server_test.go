package eksauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const (
	testCluster    = "c1"
	testClusterARN = "arn:aws:eks:us-east-1:123456789012:cluster/c1"
	podsTrust      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
)

// fakeSTS answers AssumeRole like STS (an assumed-role ARN of the role and
// session) and records each call with the credentials it was made with.
type fakeSTS struct {
	mu    sync.Mutex
	calls []stsCall
}

type stsCall struct {
	in    *sts.AssumeRoleInput
	asKey string // access key of per-call credentials; "" for the client's own
}

func (f *fakeSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	var o sts.Options
	for _, fn := range optFns {
		fn(&o)
	}
	call := stsCall{in: in}
	if o.Credentials != nil {
		c, err := o.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, err
		}
		call.asKey = c.AccessKeyID
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	n := len(f.calls)
	f.mu.Unlock()
	name, _ := roleName(aws.ToString(in.RoleArn))
	return &sts.AssumeRoleOutput{
		Credentials: &ststypes.Credentials{
			AccessKeyId: aws.String(fmt.Sprintf("ASIA%016d", n)), SecretAccessKey: aws.String("secret"), SessionToken: aws.String("token"),
			Expiration: aws.Time(time.Unix(1_900_000_000, 0)),
		},
		AssumedRoleUser: &ststypes.AssumedRoleUser{
			Arn:           aws.String("arn:aws:sts::" + accountOf(aws.ToString(in.RoleArn)) + ":assumed-role/" + name + "/" + aws.ToString(in.RoleSessionName)),
			AssumedRoleId: aws.String("AROA" + strings.ToUpper(name) + ":" + aws.ToString(in.RoleSessionName)),
		},
	}, nil
}

// fakeIAM holds trust policies by role name.
type fakeIAM map[string]string

func (f fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	doc, ok := f[aws.ToString(in.RoleName)]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("The role cannot be found.")}
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, AssumeRolePolicyDocument: aws.String(doc)}}, nil
}

// reviews maps tokens to the status the API server answers for the Pod
// Identity audience.
func reviewer(t *testing.T, statuses map[string]authenticationv1.TokenReviewStatus) *fake.Clientset {
	t.Helper()
	client := fake.NewClientset()
	client.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		create, ok := action.(k8stesting.CreateAction)
		if !ok {
			return true, nil, errors.New("not a create")
		}
		tr, ok := create.GetObject().(*authenticationv1.TokenReview)
		if !ok {
			return true, nil, errors.New("not a TokenReview")
		}
		if !slices.Equal(tr.Spec.Audiences, []string{Audience}) {
			t.Errorf("TokenReview audiences = %v, want [%s]", tr.Spec.Audiences, Audience)
		}
		out := tr.DeepCopy()
		status, ok := statuses[tr.Spec.Token]
		if !ok {
			status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		out.Status = status
		return true, out, nil
	})
	return client
}

func podStatus(ns, sa, pod, uid string) authenticationv1.TokenReviewStatus {
	return authenticationv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     []string{Audience},
		User: authenticationv1.UserInfo{
			Username: "system:serviceaccount:" + ns + ":" + sa,
			Extra: map[string]authenticationv1.ExtraValue{
				"authentication.kubernetes.io/pod-name": {pod},
				"authentication.kubernetes.io/pod-uid":  {uid},
			},
		},
	}
}

// jwtWithExpiry is a token-shaped string whose payload carries exp; its
// validity is the fake reviewer's to decide.
func jwtWithExpiry(exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d,"sub":"x"}`, exp.Unix()))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

type fixture struct {
	sts    *fakeSTS
	client *Client
	url    string
}

// staticAssociations are the associations EKS Auth finds, in memory (the
// environment's, read from the EKS API emulator, are tested in
// associations_test.go).
type staticAssociations []Association

func (s staticAssociations) Find(_ context.Context, cluster, namespace, serviceAccount string) (Association, bool, error) {
	for _, a := range s {
		if a.ClusterName == cluster && a.Namespace == namespace && a.ServiceAccount == serviceAccount {
			return a, true, nil
		}
	}
	return Association{}, false, nil
}

func newFixture(t *testing.T, associations []Association, roles fakeIAM, statuses map[string]authenticationv1.TokenReviewStatus) fixture {
	t.Helper()
	return newFixtureWith(t, staticAssociations(associations), roles, statuses)
}

func newFixtureWith(t *testing.T, associations Associations, roles fakeIAM, statuses map[string]authenticationv1.TokenReviewStatus) fixture {
	t.Helper()
	f := &fakeSTS{}
	s := &Server{
		ClusterName: testCluster, ClusterARN: testClusterARN, Account: "123456789012",
		Associations: associations,
		TokenReviews: reviewer(t, statuses).AuthenticationV1().TokenReviews(),
		STS:          f, IAM: roles,
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return fixture{sts: f, url: srv.URL, client: &Client{
		Endpoint: srv.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDNODE", "secret", ""),
	}}
}

func association(ns, sa, role string) Association {
	return Association{
		ClusterName: testCluster, Namespace: ns, ServiceAccount: sa, RoleARN: role,
		AssociationID: "a-" + sa, AssociationARN: "arn:aws:eks:us-east-1:123456789012:podidentityassociation/c1/a-" + sa,
	}
}

func TestAssumeRoleForPodIdentity_Credentials(t *testing.T) {
	t.Parallel()
	fx := newFixture(t,
		[]Association{association("prod", "app", "arn:aws:iam::123456789012:role/app")},
		fakeIAM{"app": podsTrust},
		map[string]authenticationv1.TokenReviewStatus{"tok": podStatus("prod", "app", "app-7d9f", "uid-1")})

	out, err := fx.client.AssumeRoleForPodIdentity(t.Context(), testCluster, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != (Subject{Namespace: "prod", ServiceAccount: "app"}) || out.Audience != "pods.eks.amazonaws.com" {
		t.Errorf("subject %+v audience %q", out.Subject, out.Audience)
	}
	if out.PodIdentityAssociation != (PodIdentityAssociation{AssociationID: "a-app", AssociationARN: "arn:aws:eks:us-east-1:123456789012:podidentityassociation/c1/a-app"}) {
		t.Errorf("association %+v", out.PodIdentityAssociation)
	}
	if !out.Credentials.Expiration.Equal(time.Unix(1_900_000_000, 0)) || out.Credentials.AccessKeyID == "" || out.Credentials.SessionToken != "token" {
		t.Errorf("credentials %+v", out.Credentials)
	}
	if !strings.HasPrefix(out.AssumedRoleUser.ARN, "arn:aws:sts::123456789012:assumed-role/app/eks-c1-app-7d9f-") {
		t.Errorf("assumed role %s, want a session eks-CLUSTER-POD-UUID", out.AssumedRoleUser.ARN)
	}

	if len(fx.sts.calls) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1", len(fx.sts.calls))
	}
	in := fx.sts.calls[0].in
	tags := map[string]string{}
	for _, tag := range in.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	want := map[string]string{
		"eks-cluster-arn": testClusterARN, "eks-cluster-name": testCluster, "kubernetes-namespace": "prod",
		"kubernetes-service-account": "app", "kubernetes-pod-name": "app-7d9f", "kubernetes-pod-uid": "uid-1",
	}
	if fmt.Sprint(tags) != fmt.Sprint(want) {
		t.Errorf("session tags %v, want %v", tags, want)
	}
	if n := len(aws.ToString(in.RoleSessionName)); n > 64 {
		t.Errorf("session name of %d characters, STS allows 64", n)
	}
}

// The response and error bodies in the member names and types the SDK's
// deserializers read (service/eksauth deserializers.go), checked on the raw
// HTTP exchange rather than through Client.
func TestAssumeRoleForPodIdentity_WireFormat(t *testing.T) {
	t.Parallel()
	fx := newFixture(t,
		[]Association{association("prod", "app", "arn:aws:iam::123456789012:role/app")},
		fakeIAM{"app": podsTrust},
		map[string]authenticationv1.TokenReviewStatus{"tok": podStatus("prod", "app", "p", "u")})
	post := func(path, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fx.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/eks-auth/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		dec := json.NewDecoder(resp.Body)
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return resp, doc
	}

	resp, doc := post("/clusters/c1/assume-role-for-pod-identity", `{"token":"tok","eksNodeName":"n","instanceId":"i","zone":"z"}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	members := map[string][]string{
		"assumedRoleUser":        {"arn", "assumeRoleId"},
		"credentials":            {"accessKeyId", "expiration", "secretAccessKey", "sessionToken"},
		"podIdentityAssociation": {"associationArn", "associationId"},
		"subject":                {"namespace", "serviceAccount"},
	}
	for member, fields := range members {
		obj, ok := doc[member].(map[string]any)
		if !ok {
			t.Fatalf("member %s = %v, want an object", member, doc[member])
		}
		for _, f := range fields {
			if _, ok := obj[f]; !ok {
				t.Errorf("%s has no %s: %v", member, f, obj)
			}
		}
	}
	creds, _ := doc["credentials"].(map[string]any)
	if _, ok := creds["expiration"].(json.Number); !ok {
		t.Errorf("credentials.expiration = %#v, want a JSON number of epoch seconds", creds["expiration"])
	}
	if doc["audience"] != "pods.eks.amazonaws.com" {
		t.Errorf("audience = %v", doc["audience"])
	}

	resp, doc = post("/clusters/c1/assume-role-for-pod-identity", `{"token":"unknown"}`)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "InvalidTokenException" ||
		doc["__type"] != "InvalidTokenException" || doc["message"] == "" {
		t.Errorf("error answer HTTP %d, X-Amzn-ErrorType %q, body %v", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), doc)
	}
	if resp.Header.Get("X-Amzn-RequestId") == "" {
		t.Error("no X-Amzn-RequestId")
	}
}

func TestAssumeRoleForPodIdentity_Refusals(t *testing.T) {
	t.Parallel()
	statuses := map[string]authenticationv1.TokenReviewStatus{
		"app":        podStatus("prod", "app", "p", "u"),
		"unassoc":    podStatus("prod", "nobody", "p", "u"),
		"ec2":        podStatus("prod", "ec2", "p", "u"),
		"gone":       podStatus("prod", "gone", "p", "u"),
		"notag":      podStatus("prod", "notag", "p", "u"),
		"target-bad": podStatus("prod", "target-bad", "p", "u"),
		"unbound": {Authenticated: true, Audiences: []string{Audience},
			User: authenticationv1.UserInfo{Username: "system:serviceaccount:prod:app"}},
		"other-audience": {Authenticated: true, Audiences: []string{"sts.amazonaws.com"},
			User: authenticationv1.UserInfo{Username: "system:serviceaccount:prod:app"}},
		"user": {Authenticated: true, Audiences: []string{Audience}, User: authenticationv1.UserInfo{Username: "alice"}},
	}
	expired := jwtWithExpiry(time.Now().Add(-time.Minute))
	stillValid := jwtWithExpiry(time.Now().Add(time.Hour)) // rejected by the reviewer all the same
	fx := newFixture(t, []Association{
		association("prod", "app", "arn:aws:iam::123456789012:role/app"),
		association("prod", "ec2", "arn:aws:iam::123456789012:role/ec2"),
		association("prod", "gone", "arn:aws:iam::123456789012:role/gone"),
		association("prod", "notag", "arn:aws:iam::123456789012:role/notag"),
		{ClusterName: testCluster, Namespace: "prod", ServiceAccount: "target-bad", RoleARN: "arn:aws:iam::123456789012:role/app",
			TargetRoleARN: "arn:aws:iam::222222222222:role/target", AssociationID: "a-t", AssociationARN: "x"},
		// Another cluster's association for the same ServiceAccount.
		{ClusterName: "c2", Namespace: "prod", ServiceAccount: "nobody", RoleARN: "arn:aws:iam::123456789012:role/app"},
	}, fakeIAM{
		"app":    podsTrust,
		"ec2":    strings.ReplaceAll(podsTrust, "pods.eks.amazonaws.com", "ec2.amazonaws.com"),
		"notag":  strings.ReplaceAll(podsTrust, `,"sts:TagSession"`, ""),
		"target": `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/other"},"Action":"sts:AssumeRole"}]}`,
	}, statuses)

	for _, tc := range []struct {
		name, cluster, token string
		unsigned             bool
		code                 string
		status               int
	}{
		{name: "expired", token: expired, code: CodeExpiredToken, status: 400},
		{name: "rejected, not expired", token: stillValid, code: CodeInvalidToken, status: 400},
		{name: "garbage", token: "garbage", code: CodeInvalidToken, status: 400},
		{name: "another audience", token: "other-audience", code: CodeInvalidToken, status: 400},
		{name: "not a service account", token: "user", code: CodeInvalidToken, status: 400},
		{name: "not bound to a pod", token: "unbound", code: CodeInvalidToken, status: 400},
		{name: "no association in this cluster", token: "unassoc", code: CodeResourceNotFound, status: 404},
		{name: "trust admits another service", token: "ec2", code: CodeAccessDenied, status: 400},
		{name: "trust lacks sts:TagSession", token: "notag", code: CodeAccessDenied, status: 400},
		{name: "role does not exist", token: "gone", code: CodeAccessDenied, status: 400},
		{name: "target role does not trust the role", token: "target-bad", code: CodeAccessDenied, status: 400},
		{name: "another cluster", cluster: "c2", token: "app", code: CodeResourceNotFound, status: 404},
		{name: "empty token", token: "", code: CodeInvalidParameter, status: 400},
		{name: "unsigned", token: "app", unsigned: true, code: CodeMissingAuthToken, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := *fx.client
			if tc.unsigned {
				c.Credentials = nil
			}
			cluster := tc.cluster
			if cluster == "" {
				cluster = testCluster
			}
			out, err := c.AssumeRoleForPodIdentity(t.Context(), cluster, tc.token)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("AssumeRoleForPodIdentity = %+v, %v; want %s", out, err, tc.code)
			}
			if apiErr.Code != tc.code || apiErr.StatusCode != tc.status || apiErr.Message == "" || apiErr.RequestID == "" {
				t.Errorf("got %s (HTTP %d, request %q) %q; want %s with HTTP %d", apiErr.Code, apiErr.StatusCode, apiErr.RequestID, apiErr.Message, tc.code, tc.status)
			}
		})
	}
}

func TestAssumeRoleForPodIdentity_SignedForAnotherService(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil, fakeIAM{}, nil)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, fx.url+"/clusters/c1/assume-role-for-pod-identity", bytes.NewReader([]byte(`{"token":"t"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/eks/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != CodeInvalidSignature {
		t.Errorf("HTTP %d %s, want 403 %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), CodeInvalidSignature)
	}
}

func TestAssumeRoleForPodIdentity_TargetRole(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, []Association{{
		ClusterName: testCluster, Namespace: "prod", ServiceAccount: "app",
		RoleARN: "arn:aws:iam::123456789012:role/first", TargetRoleARN: "arn:aws:iam::222222222222:role/target",
		ExternalID: "ext-1", AssociationID: "a-1", AssociationARN: "arn:x",
	}}, fakeIAM{
		"first": podsTrust,
		// The confused-deputy guard a target role's owner sets: the
		// association's externalId.
		"target": `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/first"},"Action":["sts:AssumeRole","sts:TagSession"],
"Condition":{"StringEquals":{"sts:ExternalId":"ext-1"}}}]}`,
	}, map[string]authenticationv1.TokenReviewStatus{"tok": podStatus("prod", "app", "p", "u")})

	out, err := fx.client.AssumeRoleForPodIdentity(t.Context(), testCluster, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.AssumedRoleUser.ARN, "arn:aws:sts::222222222222:assumed-role/target/") {
		t.Errorf("assumed role %s, want a session of the target role", out.AssumedRoleUser.ARN)
	}
	if len(fx.sts.calls) != 2 {
		t.Fatalf("%d AssumeRole calls, want 2 (role, then target)", len(fx.sts.calls))
	}
	first, second := fx.sts.calls[0], fx.sts.calls[1]
	if aws.ToString(first.in.RoleArn) != "arn:aws:iam::123456789012:role/first" || first.asKey != "" {
		t.Errorf("first call %s as %q, want the association's role with EKS Auth's own credentials", aws.ToString(first.in.RoleArn), first.asKey)
	}
	if aws.ToString(second.in.RoleArn) != "arn:aws:iam::222222222222:role/target" || second.asKey != "ASIA0000000000000001" {
		t.Errorf("second call %s as %q, want the target role with the first session's credentials", aws.ToString(second.in.RoleArn), second.asKey)
	}
	if first.in.ExternalId != nil || aws.ToString(second.in.ExternalId) != "ext-1" {
		t.Errorf("external IDs %v then %v, want none for the role and the association's for the target role", first.in.ExternalId, second.in.ExternalId)
	}
}

// A session policy (only with disabled session tags) limits the session
// the pod gets: it is sent with AssumeRole, and no tags are.
func TestAssumeRoleForPodIdentity_SessionPolicy(t *testing.T) {
	t.Parallel()
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	a := association("prod", "app", "arn:aws:iam::123456789012:role/app")
	a.DisableSessionTags, a.Policy = true, policy
	fx := newFixture(t, []Association{a},
		// No sts:TagSession: without tags it is not needed.
		fakeIAM{"app": strings.ReplaceAll(podsTrust, `,"sts:TagSession"`, "")},
		map[string]authenticationv1.TokenReviewStatus{"tok": podStatus("prod", "app", "p", "u")})
	if _, err := fx.client.AssumeRoleForPodIdentity(t.Context(), testCluster, "tok"); err != nil {
		t.Fatal(err)
	}
	if len(fx.sts.calls) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1", len(fx.sts.calls))
	}
	in := fx.sts.calls[0].in
	if aws.ToString(in.Policy) != policy || len(in.Tags) != 0 {
		t.Errorf("AssumeRole with policy %q and %d tags, want the association's policy and none", aws.ToString(in.Policy), len(in.Tags))
	}
}
