package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// checkTrust asks IAM whether the binding can work: the role exists, the
// cluster's OIDC provider exists in the role's account and accepts the
// audience, and the role's trust policy lets the ServiceAccount assume it.
// A failure is an error or a warning by the provider's trust_check; what
// prevents the check (no credentials, AccessDenied, no issuer) is a warning
// that says the check was skipped, never a silent pass. So is a role the
// credentials cannot see: in another account (a role is looked up by name,
// and a same-named role of the caller's account would answer) or another
// partition. Rejected credentials are errors of their own.
func (r *serviceAccountBindingResource) checkTrust(ctx context.Context, m serviceAccountBindingModel) diag.Diagnostics {
	var diags diag.Diagnostics
	d := r.data
	if d.trustCheck == trustCheckOff || d.awsUnknown {
		return diags
	}
	role, err := iamarn.ParseRole(m.RoleARN.ValueString())
	if err != nil {
		return diags // the validator reports it
	}
	ns, sa := m.Namespace.ValueString(), m.ServiceAccount.ValueString()
	fail := func(summary, detail string) {
		detail += "\n\nSet trust_check = \"warn\" or \"off\" in the provider to plan anyway."
		if d.trustCheck == trustCheckWarn {
			diags.AddAttributeWarning(path.Root("role_arn"), summary, detail)
		} else {
			diags.AddAttributeError(path.Root("role_arn"), summary, detail)
		}
	}
	skip := func(why string, err error) {
		msg := "The provider did not verify that " + role.String() + " can be assumed by ServiceAccount " + ns + "/" + sa + ": " + why
		if err != nil {
			msg += "\n\nError: " + err.Error()
		}
		diags.AddAttributeWarning(path.Root("role_arn"), "Trust Check Skipped", msg)
	}

	podIdentity := m.mechanism() == binding.MechanismPodIdentity
	var issuer string
	if !podIdentity {
		// Pod Identity involves no OIDC provider.
		var err error
		if issuer, err = d.issuer(ctx); err != nil {
			skip("the cluster's OIDC issuer is unknown. Set oidc_issuer in the provider.", err)
			return diags
		}
	}
	client, err := d.iamClient(ctx)
	if err != nil {
		skip("the AWS configuration could not be loaded.", err)
		return diags
	}
	if err := client.CheckCredentials(ctx); err != nil {
		if cd := credentialsRejected("retrieving the credentials", client.HomePartition(), err); cd != nil {
			diags.Append(cd)
			return diags
		}
		skip("no AWS credentials could be retrieved (environment, shared config and credential_process, SSO, or the "+
			"provider's aws block); the error names the source that failed.", err)
		return diags
	}
	d.redactCredentials(ctx, client)

	caller, ok := callerFor(ctx, client, role, &diags)
	if !ok {
		return diags
	}
	if od := outOfReach(role, caller, ns, sa); od != nil {
		diags.Append(od)
		return diags
	}

	iamRole, err := client.Role(ctx, role.Partition, role.Name)
	if cd := credentialsRejected("GetRole "+role.Name, role.Partition, err); cd != nil {
		diags.Append(cd)
		return diags
	}
	switch {
	case awsiam.IsNotFound(err):
		fail("IAM Role Does Not Exist", fmt.Sprintf("Role %q does not exist in account %s (looked up by GetRole, and again "+
			"for %s in case it was just created). Create it, or correct role_arn.", role.Name, role.AccountID, awsiam.DefaultNotFoundWindow))
		return diags
	case awsiam.IsAccessDenied(err):
		skip("IAM denied iam:GetRole to the provider's credentials; allow "+iamActions+" to enable the check.", err)
		return diags
	case err != nil:
		diags.AddAttributeError(path.Root("role_arn"), "Unable to Check the Role's Trust Policy",
			fmt.Sprintf("GetRole %s failed. Check the provider's aws settings and that IAM is reachable, or set trust_check = \"off\".\n\nError: %s", role.Name, err))
		return diags
	}

	if podIdentity {
		r.checkPodIdentityTrust(ctx, m, role, iamRole, fail, &diags)
		return diags
	}
	audience := m.Audience.ValueString()
	if audience == "" {
		audience = trust.DefaultAudience
	}
	providerARN := trust.ProviderARN(role.Partition, role.AccountID, issuer)
	provider, err := client.OIDCProvider(ctx, providerARN)
	if cd := credentialsRejected("GetOpenIDConnectProvider "+providerARN, role.Partition, err); cd != nil {
		diags.Append(cd)
		return diags
	}
	switch {
	case awsiam.IsNotFound(err):
		fail("OIDC Provider Does Not Exist", fmt.Sprintf("The cluster's issuer %s has no IAM OIDC provider in account %s: %s does not exist, "+
			"so pods get \"InvalidIdentityToken: No OpenIDConnect provider found\". Create it (eksctl utils "+
			"associate-iam-oidc-provider, or an aws_iam_openid_connect_provider resource with client ID %s).",
			issuer, role.AccountID, providerARN, audience))
		return diags
	case awsiam.IsAccessDenied(err):
		skip("IAM denied iam:GetOpenIDConnectProvider to the provider's credentials; allow "+iamActions+" to enable the check.", err)
		return diags
	case err != nil:
		diags.AddAttributeError(path.Root("role_arn"), "Unable to Check the OIDC Provider",
			fmt.Sprintf("GetOpenIDConnectProvider %s failed.\n\nError: %s", providerARN, err))
		return diags
	case !slices.Contains(provider.ClientIDList, audience):
		fail("OIDC Provider Does Not Accept the Audience", fmt.Sprintf("OIDC provider %s lists client IDs %v, not %q, the audience of "+
			"the pods' tokens. Add the client ID to the provider, or set audience to one it lists.", providerARN, provider.ClientIDList, audience))
		return diags
	}

	policyText, err := awsiam.TrustPolicy(iamRole)
	if err != nil {
		fail("Role Has No Readable Trust Policy", fmt.Sprintf("Role %s: %s.", role.Name, err))
		return diags
	}
	policy, err := trust.Parse(policyText)
	if err != nil {
		fail("Role Has No Readable Trust Policy", fmt.Sprintf("Role %s: %s.", role.Name, err))
		return diags
	}
	if size := trust.Size(policyText); size > 0 {
		if quota, near := trust.NearQuota(size); near {
			diags.Append(trustPolicyNearQuota(path.Root("role_arn"), "The trust policy of role "+role.Name, size, quota))
		}
	}
	subject := trust.Subject(ns, sa)
	v := trust.Check(policy, trust.Request{ProviderARN: providerARN, Issuer: issuer, Subject: subject, Audience: audience})
	switch v.Outcome {
	case trust.Allowed:
	case trust.Undetermined:
		diags.AddAttributeWarning(path.Root("role_arn"), "Trust Policy Could Not Be Fully Checked", trustDetail(role, subject, v))
	default:
		fail("Trust Policy Does Not Allow the Service Account", trustDetail(role, subject, v))
	}
	return diags
}

func trustDetail(role iamarn.Role, subject string, v trust.Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The trust policy of role %s does not let %s assume it, so its pods would get "+
		"\"Not authorized to perform sts:AssumeRoleWithWebIdentity\":\n", role.Name, subject)
	for _, reason := range v.Reasons {
		fmt.Fprintf(&b, "  - %s\n", reason)
	}
	if len(v.AllowedSubjects) > 0 {
		fmt.Fprintf(&b, "\nThe policy allows these subjects: %s\n", strings.Join(v.AllowedSubjects, ", "))
	}
	if v.StatementToAdd != "" {
		fmt.Fprintf(&b, "\nAdd this statement to the role's trust policy (or use the irsa_trust_policy data source):\n%s", v.StatementToAdd)
	}
	return b.String()
}

// callerFor returns who the credentials are in the role's partition. Keys
// of another partition are rejected there as InvalidClientTokenId; when
// the home partition accepts them, the answer is the home identity, which
// outOfReach then reports as another partition rather than bad keys.
func callerFor(ctx context.Context, client *awsiam.Client, role iamarn.Role, diags *diag.Diagnostics) (awsiam.Identity, bool) {
	caller, err := client.Caller(ctx, role.Partition)
	if awsiam.IsInvalidCredentials(err) && role.Partition != client.HomePartition() {
		if home, homeErr := client.Caller(ctx, client.HomePartition()); homeErr == nil {
			return home, true
		}
	}
	if err == nil {
		return caller, true
	}
	if cd := credentialsRejected("GetCallerIdentity", role.Partition, err); cd != nil {
		diags.Append(cd)
	} else {
		diags.AddAttributeError(path.Root("role_arn"), "Unable to Check the Role's Trust Policy",
			fmt.Sprintf("STS GetCallerIdentity failed, so the provider cannot tell which account its credentials belong to. "+
				"Check the provider's aws settings (sts_endpoint, region) and that STS is reachable, or set trust_check = \"off\".\n\nError: %s", err))
	}
	return awsiam.Identity{}, false
}

// checkPodIdentityTrust is the trust check of a pod_identity binding, on
// the role IAM returned: the trust policy must let pods.eks.amazonaws.com
// call sts:AssumeRole and sts:TagSession, with every aws:RequestTag
// condition admitting this binding's cluster, namespace and ServiceAccount.
// The IRSA statement of a role in migration is left alone: it is neither
// needed nor in the way.
func (r *serviceAccountBindingResource) checkPodIdentityTrust(ctx context.Context, m serviceAccountBindingModel, role iamarn.Role, iamRole *iamtypes.Role, fail func(summary, detail string), diags *diag.Diagnostics) {
	policyText, err := awsiam.TrustPolicy(iamRole)
	var policy trust.Document
	if err == nil {
		policy, err = trust.Parse(policyText)
	}
	if err != nil {
		fail("Role Has No Readable Trust Policy", fmt.Sprintf("Role %s: %s.", role.Name, err))
		return
	}
	settings, d := m.podIdentity(ctx)
	diags.Append(d...)
	req := trust.PodIdentityRequest{
		ClusterName: r.data.clusterName, Namespace: m.Namespace.ValueString(), ServiceAccount: m.ServiceAccount.ValueString(),
		NoSessionTags: settings.DisableSessionTags,
	}
	if client, err := r.data.eksClient(ctx); err == nil {
		req.ClusterARN, _ = client.ARN(ctx)
	}
	v := trust.CheckPodIdentity(policy, req)
	detail := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "The trust policy of role %s does not let EKS Pod Identity assume it for ServiceAccount %s/%s of cluster %s, "+
			"so EKS refuses the association or its pods get AccessDenied from the agent:\n", role.Name, req.Namespace, req.ServiceAccount, req.ClusterName)
		for _, reason := range v.Reasons {
			fmt.Fprintf(&b, "  - %s\n", reason)
		}
		fmt.Fprintf(&b, "\nAdd this statement to the role's trust policy (or use the irsa_trust_policy data source, which can narrow it to "+
			"this ServiceAccount with aws:RequestTag conditions):\n%s", v.StatementToAdd)
		return b.String()
	}
	switch v.Outcome {
	case trust.Allowed:
	case trust.Undetermined:
		diags.AddAttributeWarning(path.Root("role_arn"), "Trust Policy Could Not Be Fully Checked", detail())
	default:
		fail("Trust Policy Does Not Allow EKS Pod Identity", detail())
	}
}
