package testenv

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

func (e *Env) iam() *iam.Client { return iamAt(e.MotoURL) }

func iamAt(url string) *iam.Client {
	return iam.New(iam.Options{
		Region:       Region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
}

// PodIdentityTrustPolicy is the trust policy AWS documents for an EKS Pod
// Identity role: the pods.eks.amazonaws.com service may AssumeRole and
// TagSession. The EKS API (and its emulator) refuses an association whose
// role lacks it.
const PodIdentityTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`

// CreatePodIdentityRole creates (or resets the trust policy of) role name
// in the exported environment's moto, trusting EKS Pod Identity, and
// returns its ARN.
func CreatePodIdentityRole(ctx context.Context, name string) (string, error) {
	url := os.Getenv("IRSA_TESTENV_MOTO_URL")
	if url == "" {
		return "", errors.New("IRSA_TESTENV_MOTO_URL is not set: run against `make testenv-up` or from testenv.Main")
	}
	return putRole(ctx, iamAt(url), name, PodIdentityTrustPolicy)
}

// CreatePodIdentityRole is the package function for this environment's
// moto, for a process (the benchmark) that holds the Env.
func (e *Env) CreatePodIdentityRole(ctx context.Context, name string) (string, error) {
	return putRole(ctx, e.iam(), name, PodIdentityTrustPolicy)
}

// CreateRole creates (or updates) a role in the emulated account whose trust
// policy lets ServiceAccount namespace/serviceAccount of this cluster assume
// it, as a platform team's IAM module would. It returns the role ARN.
func (e *Env) CreateRole(ctx context.Context, name, namespace, serviceAccount string) (string, error) {
	policy, err := trust.Render(trust.Grant{
		ProviderARN: trust.ProviderARN("aws", AccountID, e.Issuer),
		Issuer:      e.Issuer,
		Subjects:    []string{trust.Subject(namespace, serviceAccount)},
	})
	if err != nil {
		return "", err
	}
	return putRole(ctx, e.iam(), name, policy)
}

// CreateRoleForBoth is CreateRole for a role in migration: its trust
// policy admits the ServiceAccount through IRSA and through EKS Pod
// Identity (narrowed to it and this cluster by session tags).
func (e *Env) CreateRoleForBoth(ctx context.Context, name, namespace, serviceAccount string) (string, error) {
	irsa, err := trust.Grant{
		ProviderARN: trust.ProviderARN("aws", AccountID, e.Issuer),
		Issuer:      e.Issuer,
		Subjects:    []string{trust.Subject(namespace, serviceAccount)},
	}.Statement()
	if err != nil {
		return "", err
	}
	policy, err := trust.RenderDocument(append([]trust.Statement{irsa}, trust.PodIdentityStatements(ClusterName, []string{namespace + "/" + serviceAccount}, false)...)...)
	if err != nil {
		return "", err
	}
	return putRole(ctx, e.iam(), name, policy)
}

// putRole creates role name with trust policy, or gives an existing one
// that policy, and returns its ARN.
func putRole(ctx context.Context, client *iam.Client, name, policy string) (string, error) {
	out, err := client.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(policy)})
	var exists *types.EntityAlreadyExistsException
	if errors.As(err, &exists) {
		if _, err := client.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(policy)}); err != nil {
			return "", err
		}
		got, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			return "", err
		}
		return aws.ToString(got.Role.Arn), nil
	}
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Role.Arn), nil
}
