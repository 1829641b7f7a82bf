package awseks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// These tests drive the client against the local environment's EKS API
// emulator (internal/testenv/eksapi, itself checked against the SDK's wire
// format) through the real SDK.

const (
	cluster = "test-cluster"
	account = "123456789012"
	issuer  = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
	trust   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`
)

func roleARN(name string) string { return "arn:aws:iam::" + account + ":role/" + name }

// roles is IAM whose roles can appear during a test, as a role just created
// propagates.
type roles struct {
	mu   sync.Mutex
	have map[string]bool
	// asked counts lookups of each role.
	asked map[string]int
}

func (r *roles) AssumeRolePolicy(_ context.Context, arn string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked[arn]++
	if !r.have[arn] {
		return "", eksapi.ErrNoSuchRole
	}
	return trust, nil
}

func (r *roles) add(arn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.have[arn] = true
}

func newTestClient(t *testing.T, mod ...func(*eksapi.Config)) (*Client, *eksapi.Server, *roles) {
	t.Helper()
	iam := &roles{have: map[string]bool{roleARN("app"): true, roleARN("other"): true}, asked: map[string]int{}}
	cfg := eksapi.Config{
		ClusterName: cluster, Region: "us-east-1", AccountID: account, Issuer: issuer,
		Endpoint: "https://127.0.0.1:6443", CAData: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		KubernetesVersion: "1.37", Roles: iam,
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := eksapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		Retryer:     func() aws.Retryer { return retry.NewStandard() },
	}
	return New(awsCfg, ts.URL, cluster), srv, iam
}

func TestIssuer(t *testing.T) {
	c, _, _ := newTestClient(t)
	for range 3 {
		got, err := c.Issuer(context.Background())
		if err != nil || got != issuer {
			t.Fatalf("Issuer = %q, %v; want %q", got, err, issuer)
		}
	}
	if n := c.Calls.Load(); n != 1 {
		t.Errorf("three Issuer calls sent %d requests, want 1", n)
	}
	other := New(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}, *c.api.Options().BaseEndpoint, "nope")
	if _, err := other.Issuer(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown cluster: %v, want ErrNotFound", err)
	}
}

// TestFindListsOncePaged: 250 associations are listed in 3 pages of 100,
// once for any number of Finds.
func TestFindListsOncePaged(t *testing.T) {
	c, srv, _ := newTestClient(t)
	ctx := context.Background()
	seed := New(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}, *c.api.Options().BaseEndpoint, cluster)
	for i := range 250 {
		if _, err := seed.Create(ctx, fmt.Sprintf("ns%d", i%10), fmt.Sprintf("sa%d", i), Settings{RoleARN: roleARN("app")}); err != nil {
			t.Fatal(err)
		}
	}
	before := srv.RequestCounts()["ListPodIdentityAssociations"]
	var wg sync.WaitGroup
	found := make([]*Summary, 250)
	for i := range 250 {
		wg.Go(func() {
			s, err := c.Find(ctx, fmt.Sprintf("ns%d", i%10), fmt.Sprintf("sa%d", i))
			if err != nil {
				t.Error(err)
			}
			found[i] = s
		})
	}
	wg.Wait()
	for i, s := range found {
		if s == nil || s.ServiceAccount != fmt.Sprintf("sa%d", i) || len(s.ID) != 19 {
			t.Fatalf("Find sa%d = %+v", i, s)
		}
	}
	if got := srv.RequestCounts()["ListPodIdentityAssociations"] - before; got != 3 {
		t.Errorf("250 Finds listed %d pages, want 3", got)
	}
	if s, err := c.Find(ctx, "ns0", "missing"); s != nil || err != nil {
		t.Errorf("Find of a ServiceAccount without one = %+v, %v", s, err)
	}
}

func TestCreateDescribeUpdateDelete(t *testing.T) {
	c, _, _ := newTestClient(t)
	ctx := context.Background()
	a, err := c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("app"), Tags: map[string]string{"team": "payments"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Describe(ctx, a.ID)
	if err != nil || got.RoleARN != roleARN("app") || got.Tags["team"] != "payments" || got.Namespace != "payments" {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	// Find answers from what this client wrote, without listing.
	if s, err := c.Find(ctx, "payments", "api"); err != nil || s == nil || s.ID != a.ID {
		t.Fatalf("Find after Create = %+v, %v", s, err)
	}
	if c.Calls.Load() != 2 {
		t.Errorf("Create, Describe and Find sent %d requests, want 2", c.Calls.Load())
	}

	_, err = c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("other")})
	var exists *ExistsError
	if !errors.As(err, &exists) || exists.ID != a.ID {
		t.Fatalf("a second Create: %v, want an ExistsError naming %s", err, a.ID)
	}

	up, err := c.Update(ctx, a.ID, Settings{RoleARN: roleARN("other"), DisableSessionTags: true, Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`})
	if err != nil || up.RoleARN != roleARN("other") || !up.DisableSessionTags || up.Policy == "" {
		t.Fatalf("Update = %+v, %v", up, err)
	}
	// Update removes what it no longer sets.
	up, err = c.Update(ctx, a.ID, Settings{RoleARN: roleARN("other")})
	if err != nil || up.Policy != "" || up.DisableSessionTags {
		t.Fatalf("Update removing the policy = %+v, %v", up, err)
	}

	if err := c.Delete(ctx, a.ID, "payments", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Describe(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Describe after Delete: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, a.ID, "payments", "api"); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
	if _, err := c.Update(ctx, a.ID, Settings{RoleARN: roleARN("app")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update after Delete: %v, want ErrNotFound", err)
	}
	if s, err := c.Find(ctx, "payments", "api"); s != nil || err != nil {
		t.Errorf("Find after Delete = %+v, %v", s, err)
	}
}

// TestCreateWaitsForRolePropagation: EKS answers "Role provided in the
// request does not exist" until IAM shows the role; Create tries again.
func TestCreateWaitsForRolePropagation(t *testing.T) {
	c, _, iam := newTestClient(t)
	arn := roleARN("new")
	go func() {
		for {
			iam.mu.Lock()
			n := iam.asked[arn]
			iam.mu.Unlock()
			if n >= 2 {
				iam.add(arn)
				return
			}
		}
	}()
	a, err := c.Create(context.Background(), "payments", "api", Settings{RoleARN: arn})
	if err != nil || a.RoleARN != arn {
		t.Fatalf("Create = %+v, %v", a, err)
	}
	iam.mu.Lock()
	defer iam.mu.Unlock()
	if iam.asked[arn] < 3 {
		t.Errorf("the role was looked up %d times, want at least 3 (two refusals, then the create)", iam.asked[arn])
	}
}

func TestRoleMissingIsBounded(t *testing.T) {
	c, _, _ := newTestClient(t)
	// The operation's deadline ends the tries before the window does.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	_, err := c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("never")})
	if !IsRoleNotPropagated(err) {
		t.Fatalf("a role that never appears: %v, want EKS's answer that it does not exist", err)
	}
}

func TestExistingID(t *testing.T) {
	if got := existingID("Association already exists: a-0123456789abcdefg"); got != "a-0123456789abcdefg" {
		t.Errorf("existingID = %q", got)
	}
	if got := existingID("something else"); got != "" {
		t.Errorf("existingID = %q", got)
	}
}

// TestSetTags: tags change apart from the association, through the tagging
// operations, and Describe shows the result.
func TestSetTags(t *testing.T) {
	c, _, _ := newTestClient(t)
	ctx := context.Background()
	a, err := c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("app"), Tags: map[string]string{"keep": "1", "change": "old", "drop": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "1", "change": "new", "add": "y"}
	if err := c.SetTags(ctx, a.ARN, a.Tags, want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Describe(ctx, a.ID)
	if err != nil || !maps.Equal(got.Tags, want) {
		t.Fatalf("tags after SetTags = %v, %v; want %v", got.Tags, err, want)
	}
	if err := c.SetTags(ctx, a.ARN[:len(a.ARN)-1]+"z", nil, want); err == nil {
		t.Error("tagging an unknown association succeeded")
	}
}

// TestCreateAfterDelete: EKS answers 409 to a Create right after a Delete,
// until the deletion propagated; Create waits that out.
func TestCreateAfterDelete(t *testing.T) {
	c, _, _ := newTestClient(t, func(cfg *eksapi.Config) { cfg.PropagationDelay = 2 * time.Second })
	ctx := context.Background()
	a, err := c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("app")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, a.ID, "payments", "api"); err != nil {
		t.Fatal(err)
	}
	before := c.Calls.Load()
	b, err := c.Create(ctx, "payments", "api", Settings{RoleARN: roleARN("other")})
	if err != nil || b.ID == a.ID {
		t.Fatalf("Create after Delete = %+v, %v", b, err)
	}
	// At least one refusal and its Describe before the Create that took.
	if n := c.Calls.Load() - before; n < 3 {
		t.Errorf("Create after Delete sent %d requests; the emulator did not refuse it first", n)
	}
}
