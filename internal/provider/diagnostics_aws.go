package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// The IAM actions the trust check needs, named in every message about
// permissions and in the provider's documentation.
const iamActions = "iam:GetRole and iam:GetOpenIDConnectProvider"

// credentialsRejected explains AWS refusing the credentials themselves,
// as opposed to refusing an action to valid credentials. It returns nil for
// any other error. call names what was being done ("GetRole payments-api").
func credentialsRejected(call, partition string, err error) diag.Diagnostic {
	switch {
	case awsiam.IsExpiredCredentials(err):
		return diag.NewAttributeErrorDiagnostic(path.Root("role_arn"), "AWS Credentials Expired", fmt.Sprintf(
			"The AWS credentials of the provider have expired (%s). Refresh them: run aws sso login (with "+
				"the profile the provider uses) for an SSO profile; for temporary keys in the environment, start a new "+
				"session, and check that no stale AWS_SESSION_TOKEN is left over. Set trust_check = \"off\" in the provider "+
				"to plan without IAM.\n\nError: %s", call, err))
	case awsiam.IsInvalidCredentials(err):
		return diag.NewAttributeErrorDiagnostic(path.Root("role_arn"), "AWS Credentials Invalid", fmt.Sprintf(
			"AWS did not accept the provider's credentials in partition %s (%s): the access key does not exist "+
				"(deleted, or mistyped), the secret key does not belong to it, or the keys are for another partition "+
				"(GovCloud and China keys need aws.region set to a region of their partition). Check the profile "+
				"(aws.profile, AWS_PROFILE) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; aws sts get-caller-identity with "+
				"the same settings shows what AWS makes of them. Set trust_check = \"off\" in the provider to plan without "+
				"IAM.\n\nError: %s", partition, call, err))
	}
	return nil
}

// outOfReach says why the credentials cannot check role, or returns nil when
// they can: a role is looked up by name, so credentials of another account
// would find a same-named role of their own account, and credentials are
// valid in one partition only.
func outOfReach(role iamarn.Role, caller awsiam.Identity, ns, sa string) diag.Diagnostic {
	switch {
	case caller.Partition != role.Partition:
		return diag.NewAttributeWarningDiagnostic(path.Root("role_arn"), "Trust Check Skipped: Role in Another Partition", fmt.Sprintf(
			"Role %s is in partition %s, but the provider's AWS credentials (%s) are for partition %s, and credentials are "+
				"valid in one partition only. The provider did not check that ServiceAccount %s/%s can assume the role. To "+
				"check it, give its bindings a provider configuration (an alias) whose aws block sets a region of %s (for "+
				"example %s) and credentials for that partition.",
			role, role.Partition, caller.ARN, caller.Partition, ns, sa, role.Partition, awsiam.RegionFor(role.Partition, "")))
	case caller.Account != role.AccountID:
		return diag.NewAttributeWarningDiagnostic(path.Root("role_arn"), "Trust Check Skipped: Role in Another Account", fmt.Sprintf(
			"Role %s is in account %s, but the provider's AWS credentials (%s) are for account %s. IAM looks roles up by "+
				"name in the caller's own account, so the provider did not check that ServiceAccount %s/%s can assume the "+
				"role. To check it, set aws.assume_role.role_arn to a role in account %s that the credentials may assume and "+
				"that allows %s; bindings of roles in several accounts each need a provider configuration (an alias) for "+
				"their account.",
			role, role.AccountID, caller.ARN, caller.Account, ns, sa, role.AccountID, iamActions))
	}
	return nil
}

// trustPolicyNearQuota warns that a trust policy has little room left:
// the next ServiceAccount added to it may not fit.
func trustPolicyNearQuota(at path.Path, what string, size, quota int) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(at, "Trust Policy Near the IAM Size Quota", fmt.Sprintf(
		"%s is %d characters long as IAM counts them (white space excluded), within 10%% of the %d-character quota "+
			"on role trust policies (IAM's default is %d; a Service Quotas request raises it to at most %d). Adding "+
			"ServiceAccounts will soon fail with LimitExceeded. Make room: one StringLike condition with a wildcard "+
			"(\"system:serviceaccount:NAMESPACE:*\") instead of a subject per ServiceAccount, one statement per namespace, "+
			"or a role per namespace; or request a higher quota.",
		what, size, quota, trust.SizeQuota, trust.MaxSizeQuota))
}
