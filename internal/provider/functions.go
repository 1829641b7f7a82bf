package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// Provider functions are pure: no API call, so modules can build a role's
// trust policy at plan time, before the cluster or the role exists. They
// render with the same code as the irsa_trust_policy data source.

var (
	_ function.Function = (*serviceAccountSubjectFunction)(nil)
	_ function.Function = (*trustPolicyFunction)(nil)
)

// NewServiceAccountSubjectFunction is provider::irsa::service_account_subject.
func NewServiceAccountSubjectFunction() function.Function { return &serviceAccountSubjectFunction{} }

type serviceAccountSubjectFunction struct{}

func (f *serviceAccountSubjectFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "service_account_subject"
}

func (f *serviceAccountSubjectFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "The OIDC subject of a ServiceAccount",
		MarkdownDescription: "Returns `system:serviceaccount:NAMESPACE:NAME`, the `sub` claim of the ServiceAccount's tokens and " +
			"the value a trust policy's `:sub` condition must match. `*` and `?` are allowed, for `StringLike` conditions.",
		Parameters: []function.Parameter{
			function.StringParameter{Name: "namespace", MarkdownDescription: "Namespace of the ServiceAccount."},
			function.StringParameter{Name: "name", MarkdownDescription: "Name of the ServiceAccount."},
		},
		Return: function.StringReturn{},
	}
}

func (f *serviceAccountSubjectFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var ns, name string
	resp.Error = req.Arguments.Get(ctx, &ns, &name)
	if resp.Error != nil {
		return
	}
	if !serviceAccountPattern.MatchString(ns + "/" + name) {
		resp.Error = function.NewFuncError(fmt.Sprintf("%q/%q is not a ServiceAccount: the namespace must be a DNS label and "+
			"the name a DNS subdomain (lower-case letters, digits, '-', and '.' in the name; * and ? allowed)", ns, name))
		return
	}
	resp.Error = resp.Result.Set(ctx, trust.Subject(ns, name))
}

// NewTrustPolicyFunction is provider::irsa::trust_policy.
func NewTrustPolicyFunction() function.Function { return &trustPolicyFunction{} }

type trustPolicyFunction struct{}

func (f *trustPolicyFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "trust_policy"
}

// trustPolicyArgument is one attribute of the function's object.
type trustPolicyArgument struct {
	name, description string
	required          bool
}

// trustPolicyArguments are the attributes the function's object takes.
var trustPolicyArguments = []trustPolicyArgument{
	{"service_accounts", "list of `NAMESPACE/NAME` (`*` and `?` allowed, for `StringLike`)", true},
	{"oidc_issuer", "the cluster's OIDC issuer URL (`https://oidc.eks.REGION.amazonaws.com/id/ID`); required with `irsa`", false},
	{"account_id", "the account of the IAM OIDC provider; required unless `oidc_provider_arn` is given", false},
	{"partition", "the account's partition: `aws` (default), `aws-cn`, `aws-us-gov`, ...", false},
	{"oidc_provider_arn", "the IAM OIDC provider's ARN, instead of `account_id` and `partition`", false},
	{"audience", "the token audience the policy requires; default `" + trust.DefaultAudience + "`", false},
	{"mechanisms", "list of `irsa` and `pod_identity`, which mechanisms the policy trusts; default `[\"irsa\"]`. " +
		"With only `pod_identity`, `oidc_issuer` and the account are not needed", false},
	{"cluster_name", "the EKS cluster the Pod Identity statements are narrowed to (`aws:RequestTag/eks-cluster-name`)", false},
	{"pod_identity_session_tags", "`false` renders AWS's unconditioned Pod Identity statement, for associations that " +
		"disable session tags; default `true`, one statement per ServiceAccount narrowed by its session tags", false},
}

// nonStringArguments are the function's attributes that are not strings.
var nonStringArguments = []string{"service_accounts", "mechanisms", "pod_identity_session_tags"}

func (f *trustPolicyFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	var attrs strings.Builder
	for _, a := range trustPolicyArguments {
		req := "optional"
		if a.required {
			req = "required"
		}
		fmt.Fprintf(&attrs, "\n  - `%s` (%s): %s.", a.name, req, a.description)
	}
	resp.Definition = function.Definition{
		Summary: "The trust policy that lets ServiceAccounts assume a role",
		MarkdownDescription: "Renders the same assume-role policy as the `irsa_trust_policy` data source, without any API " +
			"call: give the account (and partition) or the OIDC provider's ARN. The argument is an object with:" + attrs.String(),
		Parameters: []function.Parameter{
			function.DynamicParameter{Name: "grant", MarkdownDescription: "An object with the attributes above."},
		},
		Return: function.StringReturn{},
	}
}

var partitionPattern = regexp.MustCompile(`^aws(-[a-z]+)*$`)

func (f *trustPolicyFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var arg types.Dynamic
	resp.Error = req.Arguments.Get(ctx, &arg)
	if resp.Error != nil {
		return
	}
	obj, ok := arg.UnderlyingValue().(basetypes.ObjectValue)
	if !ok || obj.IsNull() || obj.IsUnknown() {
		resp.Error = function.NewArgumentFuncError(0, "trust_policy takes an object, for example { service_accounts = [\"payments/api\"], oidc_issuer = \"https://...\", account_id = \"123456789012\" }")
		return
	}
	attrs := obj.Attributes()
	for name := range attrs {
		if !slices.ContainsFunc(trustPolicyArguments, func(a trustPolicyArgument) bool { return a.name == name }) {
			resp.Error = function.NewArgumentFuncError(0, fmt.Sprintf("unknown attribute %q; trust_policy takes service_accounts, oidc_issuer, account_id, partition, oidc_provider_arn, audience, mechanisms, cluster_name and pod_identity_session_tags", name))
			return
		}
	}
	str := func(name string) (string, *function.FuncError) {
		v, ok := attrs[name]
		if !ok || v.IsNull() {
			return "", nil
		}
		s, ok := v.(basetypes.StringValue)
		if !ok {
			return "", function.NewArgumentFuncError(0, name+" must be a string")
		}
		return s.ValueString(), nil
	}
	values := map[string]string{}
	for _, a := range trustPolicyArguments {
		if slices.Contains(nonStringArguments, a.name) {
			continue
		}
		v, ferr := str(a.name)
		if ferr != nil {
			resp.Error = ferr
			return
		}
		values[a.name] = v
	}
	accounts, ferr := stringList(attrs["service_accounts"])
	if ferr != nil || len(accounts) == 0 {
		resp.Error = function.NewArgumentFuncError(0, "service_accounts must be a non-empty list of NAMESPACE/NAME")
		return
	}

	want := map[string]bool{}
	if v, ok := attrs["mechanisms"]; ok && !v.IsNull() {
		list, ferr := stringList(v)
		if ferr != nil || len(list) == 0 {
			resp.Error = function.NewArgumentFuncError(0, `mechanisms must be a non-empty list of "irsa" and "pod_identity"`)
			return
		}
		for _, m := range list {
			if !slices.Contains(mechanisms, m) {
				resp.Error = function.NewArgumentFuncError(0, fmt.Sprintf(`mechanism %q is neither "irsa" nor "pod_identity"`, m))
				return
			}
			want[m] = true
		}
	} else {
		want[string(binding.MechanismIRSA)] = true
	}
	untagged := false
	if v, ok := attrs["pod_identity_session_tags"]; ok && !v.IsNull() {
		b, ok := v.(basetypes.BoolValue)
		if !ok {
			resp.Error = function.NewArgumentFuncError(0, "pod_identity_session_tags must be a bool")
			return
		}
		untagged = !b.ValueBool()
	}
	for _, sa := range accounts {
		if !serviceAccountPattern.MatchString(sa) {
			resp.Error = function.NewArgumentFuncError(0, fmt.Sprintf("service account %q must be NAMESPACE/NAME, for example payments/api", sa))
			return
		}
	}
	var statements []trust.Statement
	if want[string(binding.MechanismPodIdentity)] {
		statements = trust.PodIdentityStatements(values["cluster_name"], accounts, untagged)
	}
	if !want[string(binding.MechanismIRSA)] {
		policy, err := trust.RenderDocument(statements...)
		if err != nil {
			resp.Error = function.NewFuncError("rendering the trust policy failed; this is always a bug in the provider: " + err.Error())
			return
		}
		resp.Error = resp.Result.Set(ctx, policy)
		return
	}

	issuer := values["oidc_issuer"]
	if !strings.HasPrefix(issuer, "https://") {
		resp.Error = function.NewArgumentFuncError(0, "oidc_issuer must be the cluster's https:// issuer URL")
		return
	}
	providerARN := values["oidc_provider_arn"]
	switch {
	case providerARN != "" && !oidcProviderARNPattern.MatchString(providerARN):
		resp.Error = function.NewArgumentFuncError(0, "oidc_provider_arn must be an IAM OIDC provider ARN")
		return
	case providerARN == "":
		account, partition := values["account_id"], values["partition"]
		if partition == "" {
			partition = "aws"
		}
		if !accountIDPattern.MatchString(account) {
			resp.Error = function.NewArgumentFuncError(0, "account_id must be a 12-digit account ID (or give oidc_provider_arn)")
			return
		}
		if !partitionPattern.MatchString(partition) {
			resp.Error = function.NewArgumentFuncError(0, fmt.Sprintf("partition %q is not an AWS partition (aws, aws-cn, aws-us-gov, ...)", partition))
			return
		}
		providerARN = trust.ProviderARN(partition, account, issuer)
	}
	var subjects []string
	for _, sa := range accounts {
		if !serviceAccountPattern.MatchString(sa) {
			resp.Error = function.NewArgumentFuncError(0, fmt.Sprintf("service account %q must be NAMESPACE/NAME, for example payments/api", sa))
			return
		}
		ns, name, _ := strings.Cut(sa, "/")
		subjects = append(subjects, trust.Subject(ns, name))
	}
	irsaStatement, err := trust.Grant{ProviderARN: providerARN, Issuer: issuer, Audience: values["audience"], Subjects: subjects}.Statement()
	var policy string
	if err == nil {
		policy, err = trust.RenderDocument(append([]trust.Statement{irsaStatement}, statements...)...)
	}
	if err != nil {
		resp.Error = function.NewFuncError("rendering the trust policy failed; this is always a bug in the provider: " + err.Error())
		return
	}
	resp.Error = resp.Result.Set(ctx, policy)
}

// stringList reads a list, tuple or set of strings.
func stringList(v attr.Value) ([]string, *function.FuncError) {
	var elems []attr.Value
	switch l := v.(type) {
	case basetypes.ListValue:
		elems = l.Elements()
	case basetypes.TupleValue:
		elems = l.Elements()
	case basetypes.SetValue:
		elems = l.Elements()
	default:
		return nil, function.NewFuncError("not a list")
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, ok := e.(basetypes.StringValue)
		if !ok || s.IsNull() || s.IsUnknown() {
			return nil, function.NewFuncError("not a list of strings")
		}
		out = append(out, s.ValueString())
	}
	return out, nil
}
