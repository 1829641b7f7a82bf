package eksauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// TestPropagatedAssociations_FromTheEKSAPIEmulator joins the two halves of
// the identity plane: an association made through the EKS API emulator
// with the SDK's EKS client is unknown to EKS Auth until it has
// propagated, then answered with its role; an Update's role and a Delete
// reach EKS Auth the same way; and faults armed on the EKS API do not
// reach it (its data plane is not the public API).
func TestPropagatedAssociations_FromTheEKSAPIEmulator(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	path := filepath.Join(t.TempDir(), "associations.json")
	emulator, err := eksapi.New(eksapi.Config{
		ClusterName: testCluster, Region: "us-east-1", AccountID: "123456789012",
		AssociationsFile: path, PropagationDelay: delay,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emulator.Close)
	api := httptest.NewServer(emulator)
	t.Cleanup(api.Close)
	client := eks.New(eks.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(api.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})

	fx := newFixtureWith(t, PropagatedAssociations{Path: path}, fakeIAM{"app": podsTrust, "other": podsTrust},
		map[string]authenticationv1.TokenReviewStatus{"tok": podStatus("prod", "app", "p", "u")})
	assumedRole := func() (string, error) {
		out, err := fx.client.AssumeRoleForPodIdentity(t.Context(), testCluster, "tok")
		if err != nil {
			return "", err
		}
		return out.AssumedRoleUser.ARN, nil
	}
	waitRole := func(what, role string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			arn, err := assumedRole()
			return err == nil && arnOfRole(arn, role), nil
		})
		if err != nil {
			arn, callErr := assumedRole()
			t.Fatalf("EKS Auth never %s: it answers %q, %v", what, arn, callErr)
		}
	}
	wantNotFound := func(when string) {
		t.Helper()
		_, err := assumedRole()
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != CodeResourceNotFound {
			t.Errorf("%s: AssumeRoleForPodIdentity = %v, want %s", when, err, CodeResourceNotFound)
		}
	}

	began := time.Now()
	created, err := client.CreatePodIdentityAssociation(t.Context(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testCluster), Namespace: aws.String("prod"), ServiceAccount: aws.String("app"),
		RoleArn: aws.String("arn:aws:iam::123456789012:role/app"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(began) < delay/2 {
		wantNotFound("just after Create")
	}
	waitRole("answered with the association's role", "app")
	if took := time.Since(began); took < delay {
		t.Errorf("EKS Auth knew the association %v after Create, before the propagation delay %v", took, delay)
	}
	out, err := fx.client.AssumeRoleForPodIdentity(t.Context(), testCluster, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if out.PodIdentityAssociation.AssociationID != aws.ToString(created.Association.AssociationId) ||
		out.PodIdentityAssociation.AssociationARN != aws.ToString(created.Association.AssociationArn) {
		t.Errorf("answered for association %+v, want the one Create returned (%s)", out.PodIdentityAssociation, aws.ToString(created.Association.AssociationId))
	}

	// The public API failing does not stop credentials.
	setFaults := func(f string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, api.URL+eksapi.AdminPrefix+"faults", strings.NewReader(f))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("arm faults %s: %s", f, resp.Status)
		}
	}
	setFaults(`{"serverErrors":1000}`)
	if _, err := client.ListClusters(t.Context(), &eks.ListClustersInput{}); err == nil {
		t.Error("the armed fault did not fail the EKS API")
	}
	if _, err := assumedRole(); err != nil {
		t.Errorf("with the EKS API failing, EKS Auth refused: %v", err)
	}
	setFaults(`{}`)

	if _, err := client.UpdatePodIdentityAssociation(t.Context(), &eks.UpdatePodIdentityAssociationInput{
		ClusterName: aws.String(testCluster), AssociationId: created.Association.AssociationId,
		RoleArn: aws.String("arn:aws:iam::123456789012:role/other"),
	}); err != nil {
		t.Fatal(err)
	}
	waitRole("took the Update's role", "other")

	if _, err := client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{
		ClusterName: aws.String(testCluster), AssociationId: created.Association.AssociationId,
	}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err := assumedRole()
		var apiErr *APIError
		return errors.As(err, &apiErr) && apiErr.Code == CodeResourceNotFound, nil
	})
	if err != nil {
		t.Fatalf("EKS Auth still answers for the deleted association: %v", err)
	}
}

// arnOfRole reports whether arn is a session of role (any account).
func arnOfRole(arn, role string) bool {
	_, rest, ok := strings.Cut(arn, ":assumed-role/")
	return ok && strings.HasPrefix(rest, role+"/")
}
