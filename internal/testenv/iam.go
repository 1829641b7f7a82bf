package testenv

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

func (e *Env) iam() *iam.Client {
	return iam.New(iam.Options{
		Region:       Region,
		BaseEndpoint: aws.String(e.MotoURL),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
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
	client := e.iam()
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
