package eksapi_test

import (
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestIAMRoles_AgainstMoto checks roles the way the environment's emulator
// does, through the real IAM API of moto_server: a role moto has and that
// trusts EKS Pod Identity is accepted; a missing one, one of the same name
// under another path, and a web-identity-only one are refused with AWS's
// InvalidParameterException.
func TestIAMRoles_AgainstMoto(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("needs the local environment's moto_server: set TF_ACC=1 (make test does)")
	}
	t.Parallel()
	ctx := t.Context()
	iamClient := iam.New(iam.Options{
		Region:       testenv.Region,
		BaseEndpoint: aws.String(os.Getenv("IRSA_TESTENV_MOTO_URL")),
		Credentials:  credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretAccessKey, ""),
	})
	suffix := rand.String(6)
	podRole, err := testenv.CreatePodIdentityRole(ctx, "eksapi-pod-"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	const webIdentity = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
	irsa, err := iamClient.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("eksapi-irsa-" + suffix), AssumeRolePolicyDocument: aws.String(webIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"eksapi-pod-" + suffix, "eksapi-irsa-" + suffix} {
			_, _ = iamClient.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
		}
	})

	srv, err := eksapi.New(eksapi.Config{
		ClusterName: testenv.ClusterName, Region: testenv.Region, AccountID: testenv.AccountID,
		Roles: eksapi.IAMRoles{Client: iamClient},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	client := eks.New(eks.Options{
		Region: testenv.Region, BaseEndpoint: aws.String(ts.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretAccessKey, ""),
	})
	create := func(sa, role string) error {
		_, err := client.CreatePodIdentityAssociation(ctx, &eks.CreatePodIdentityAssociationInput{
			ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String("default"), ServiceAccount: aws.String(sa), RoleArn: aws.String(role),
		})
		return err
	}

	if err := create("accepted", podRole); err != nil {
		t.Fatalf("a role moto has, trusting pods.eks.amazonaws.com: %v", err)
	}
	for _, tc := range []struct{ name, role, msg string }{
		{"missing", "arn:aws:iam::123456789012:role/eksapi-missing-" + suffix, "Role provided in the request does not exist"},
		{"another path", "arn:aws:iam::123456789012:role/elsewhere/eksapi-pod-" + suffix, "Role provided in the request does not exist"},
		{"web identity only", aws.ToString(irsa.Role.Arn), "Trust policy of the role provided is invalid"},
	} {
		err := create(tc.name+"-sa", tc.role)
		var ipe *types.InvalidParameterException
		if !errors.As(err, &ipe) || !strings.HasPrefix(ipe.ErrorMessage(), tc.msg) {
			t.Errorf("%s role: error %v, want InvalidParameterException %q", tc.name, err, tc.msg)
		}
	}
}
