package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// checkTrust asks IAM whether the binding can work: the role exists, the
// cluster's OIDC provider exists in the role's account and accepts the
// audience, and the role's trust policy lets the ServiceAccount assume it.
// A failure is an error or a warning by the provider's trust_check; what
// prevents the check (no credentials, AccessDenied, no issuer) is a warning
// that says the check was skipped, never a silent pass.
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

	issuer, err := d.issuer(ctx)
	if err != nil {
		skip("the cluster's OIDC issuer is unknown. Set oidc_issuer in the provider.", err)
		return diags
	}
	client, err := d.iamClient(ctx)
	if err != nil {
		skip("the AWS configuration could not be loaded.", err)
		return diags
	}
	if err := client.CheckCredentials(ctx); err != nil {
		skip("no AWS credentials were found (environment, shared config, or the provider's aws block).", err)
		return diags
	}

	iamRole, err := client.Role(ctx, role.Name)
	switch {
	case awsiam.IsNotFound(err):
		fail("IAM Role Does Not Exist", fmt.Sprintf("Role %q does not exist in account %s (looked up by GetRole). "+
			"Create it, or correct role_arn.", role.Name, role.AccountID))
		return diags
	case awsiam.IsAccessDenied(err):
		skip("IAM denied GetRole to the provider's credentials; allow iam:GetRole and iam:GetOpenIDConnectProvider to enable the check.", err)
		return diags
	case err != nil:
		diags.AddAttributeError(path.Root("role_arn"), "Unable to Check the Role's Trust Policy",
			fmt.Sprintf("GetRole %s failed. Check the provider's aws settings and that IAM is reachable, or set trust_check = \"off\".\n\nError: %s", role.Name, err))
		return diags
	}

	audience := m.Audience.ValueString()
	if audience == "" {
		audience = trust.DefaultAudience
	}
	providerARN := trust.ProviderARN(role.Partition, role.AccountID, issuer)
	provider, err := client.OIDCProvider(ctx, providerARN)
	switch {
	case awsiam.IsNotFound(err):
		fail("OIDC Provider Does Not Exist", fmt.Sprintf("The cluster's issuer %s has no IAM OIDC provider in account %s: %s does not exist, "+
			"so pods get \"InvalidIdentityToken: No OpenIDConnect provider found\". Create it (eksctl utils "+
			"associate-iam-oidc-provider, or an aws_iam_openid_connect_provider resource with client ID %s).",
			issuer, role.AccountID, providerARN, audience))
		return diags
	case awsiam.IsAccessDenied(err):
		skip("IAM denied GetOpenIDConnectProvider to the provider's credentials.", err)
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
	subject := trust.Subject(ns, sa)
	v := trust.Check(policy, trust.Request{ProviderARN: providerARN, Issuer: issuer, Subject: subject, Audience: audience})
	switch v.Outcome {
	case trust.Allowed:
		return diags
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
