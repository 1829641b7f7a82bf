package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

var (
	_ datasource.DataSource              = (*trustPolicyDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*trustPolicyDataSource)(nil)
)

// NewTrustPolicyDataSource is the irsa_trust_policy data source.
func NewTrustPolicyDataSource() datasource.DataSource {
	return &trustPolicyDataSource{}
}

type trustPolicyDataSource struct {
	data *providerData
}

type trustPolicyModel struct {
	ServiceAccounts []types.String `tfsdk:"service_accounts"`
	Audience        types.String   `tfsdk:"audience"`
	OIDCIssuer      types.String   `tfsdk:"oidc_issuer"`
	OIDCProviderARN types.String   `tfsdk:"oidc_provider_arn"`
	AccountID       types.String   `tfsdk:"account_id"`
	Partition       types.String   `tfsdk:"partition"`
	JSON            types.String   `tfsdk:"json"`
	ID              types.String   `tfsdk:"id"`
	Mechanisms      []types.String `tfsdk:"mechanisms"`
	ClusterName     types.String   `tfsdk:"cluster_name"`
	SessionTags     types.Bool     `tfsdk:"pod_identity_session_tags"`
}

// serviceAccountPattern is NAMESPACE/NAME, where either may use * and ?.
var serviceAccountPattern = regexp.MustCompile(`^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?/[a-z0-9*?]([-a-z0-9.*?]*[a-z0-9*?])?$`)

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

var oidcProviderARNPattern = regexp.MustCompile(`^arn:aws[a-z0-9-]*:iam::[0-9]{12}:oidc-provider/\S+$`)

func (d *trustPolicyDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_trust_policy"
}

func (d *trustPolicyDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Renders the assume-role (trust) policy that lets ServiceAccounts of the cluster assume a " +
			"role, ready for `aws_iam_role.assume_role_policy`: through its OIDC provider (IRSA), through EKS Pod Identity, " +
			"or both in one document for a migration. The policy passes the provider's own trust check for every " +
			"ServiceAccount it names; its JSON is stable across plans.",
		Attributes: map[string]schema.Attribute{
			"mechanisms": schema.ListAttribute{
				MarkdownDescription: "Which mechanisms the policy trusts: `irsa` (the OIDC provider's " +
					"`sts:AssumeRoleWithWebIdentity`), `pod_identity` (`pods.eks.amazonaws.com` with `sts:AssumeRole` and " +
					"`sts:TagSession`), or both, for a role in migration. Default `[\"irsa\"]`. The Pod Identity statements are " +
					"narrowed to each ServiceAccount (and the cluster) by `aws:RequestTag` conditions unless " +
					"`pod_identity_session_tags = false`. With only `pod_identity`, no OIDC issuer or account is needed.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{
					listvalidator.SizeBetween(1, 2), listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(stringvalidator.OneOf(mechanisms...)),
				},
			},
			"cluster_name": schema.StringAttribute{
				MarkdownDescription: "EKS cluster the Pod Identity statements are narrowed to (`aws:RequestTag/eks-cluster-name`). " +
					"Default: the provider's `cluster_name`; unset, they admit any cluster of the account.",
				Optional: true,
			},
			"pod_identity_session_tags": schema.BoolAttribute{
				MarkdownDescription: "Narrow the Pod Identity statements by the session tags EKS sets. Set `false` for " +
					"associations with `disable_session_tags = true`, which pass no tags: the policy is then AWS's one " +
					"unconditioned statement. Default `true`.",
				Optional: true,
			},
			"service_accounts": schema.ListAttribute{
				MarkdownDescription: "ServiceAccounts as `NAMESPACE/NAME`. `*` and `?` are allowed (`payments/worker-*`) and " +
					"make the subject condition `StringLike` instead of `StringEquals`.",
				ElementType: types.StringType,
				Required:    true,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					noNullServiceAccountsValidator{},
					listvalidator.ValueStringsAre(stringvalidator.RegexMatches(serviceAccountPattern,
						"must be NAMESPACE/NAME, for example payments/api (wildcards * and ? allowed)")),
				},
			},
			"audience": schema.StringAttribute{
				MarkdownDescription: "Token audience the policy requires. Default `" + trust.DefaultAudience + "`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"oidc_issuer": schema.StringAttribute{
				MarkdownDescription: "The cluster's OIDC issuer URL. Default: the provider's `oidc_issuer`, or the one the API server announces.",
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^https://\S+$`), "must be an https:// URL")},
			},
			"oidc_provider_arn": schema.StringAttribute{
				MarkdownDescription: "ARN of the IAM OIDC provider. Default: built from `account_id` and the issuer.",
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{stringvalidator.RegexMatches(oidcProviderARNPattern, "must be an IAM OIDC provider ARN")},
			},
			"account_id": schema.StringAttribute{
				MarkdownDescription: "Account of the OIDC provider. Default: the caller's account (STS GetCallerIdentity). " +
					"Not used when `oidc_provider_arn` is set.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.RegexMatches(accountIDPattern, "must be a 12-digit account ID")},
			},
			"partition": schema.StringAttribute{
				MarkdownDescription: "AWS partition of the OIDC provider ARN, one of " + backtickList(iamarn.Partitions) + ". " +
					"Default: the caller's partition when `account_id` is unset, else the partition of the provider's AWS " +
					"region (`aws` without one). Not used when `oidc_provider_arn` is set, which carries its own.",
				Optional: true,
				Computed: true,
				Validators: []validator.String{
					stringvalidator.OneOf(iamarn.Partitions...),
					stringvalidator.ConflictsWith(path.MatchRoot("oidc_provider_arn")),
				},
			},
			"json": schema.StringAttribute{
				MarkdownDescription: "The policy document.",
				Computed:            true,
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "The OIDC provider ARN and the subjects, for Terraform's bookkeeping.",
				Computed:            true,
			},
		},
	}
}

func (d *trustPolicyDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	var diags diag.Diagnostics
	d.data, diags = providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
}

func (d *trustPolicyDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var m trustPolicyModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}

	want := map[string]bool{string(binding.MechanismIRSA): len(m.Mechanisms) == 0}
	for _, v := range m.Mechanisms {
		want[v.ValueString()] = true
	}
	var statements []trust.Statement
	var accounts []string
	for _, sa := range m.ServiceAccounts {
		accounts = append(accounts, sa.ValueString())
	}
	cluster := m.ClusterName.ValueString()
	if cluster == "" && d.data != nil {
		cluster = d.data.clusterName
	}
	if want[string(binding.MechanismPodIdentity)] {
		statements = append(statements, trust.PodIdentityStatements(cluster, accounts, !m.SessionTags.IsNull() && !m.SessionTags.ValueBool())...)
	}
	if !want[string(binding.MechanismIRSA)] {
		policy, err := trust.RenderDocument(statements...)
		if err != nil {
			resp.Diagnostics.AddError("Unable to Render the Trust Policy", "This is always a bug in the provider; please report it.\n\nError: "+err.Error())
			return
		}
		m.JSON = types.StringValue(policy)
		m.ID = types.StringValue("pod_identity|" + cluster + "|" + strings.Join(accounts, ","))
		if m.OIDCIssuer.IsUnknown() {
			m.OIDCIssuer = types.StringNull()
		}
		m.OIDCProviderARN, m.Partition = types.StringNull(), types.StringNull()
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		return
	}

	issuer := m.OIDCIssuer.ValueString()
	if issuer == "" {
		var err error
		if issuer, err = d.data.issuer(ctx); err != nil {
			fix := "Set oidc_issuer here or in the provider, or give the provider a Kubernetes connection to discover it from."
			if p, ok := kube.DeniedPermission(err); ok {
				fix = "Set oidc_issuer here or in the provider, which needs no permission, or let the provider read it: " +
					"Kubernetes' default RBAC grants this URL to service accounts only, not to users. " + deniedDetail(p)
			}
			resp.Diagnostics.AddAttributeError(path.Root("oidc_issuer"), "Unable to Determine the OIDC Issuer", fix+"\n\nError: "+err.Error())
			return
		}
	}
	providerARN := m.OIDCProviderARN.ValueString()
	if providerARN == "" {
		account, partition, diags := d.accountAndPartition(ctx, m)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		providerARN = trust.ProviderARN(partition, account, issuer)
	}
	m.Partition = types.StringValue(strings.SplitN(providerARN, ":", 3)[1])

	var subjects []string
	for _, sa := range m.ServiceAccounts {
		ns, name, _ := strings.Cut(sa.ValueString(), "/")
		subjects = append(subjects, trust.Subject(ns, name))
	}
	irsaStatement, err := trust.Grant{ProviderARN: providerARN, Issuer: issuer, Audience: m.Audience.ValueString(), Subjects: subjects}.Statement()
	var policy string
	if err == nil {
		policy, err = trust.RenderDocument(append([]trust.Statement{irsaStatement}, statements...)...)
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to Render the Trust Policy", "This is always a bug in the provider; please report it.\n\nError: "+err.Error())
		return
	}
	size := trust.Size(policy)
	if quota, near := trust.NearQuota(size); near {
		resp.Diagnostics.Append(trustPolicyNearQuota(path.Root("json"), "The rendered policy", size, quota))
	}
	m.OIDCIssuer = types.StringValue(issuer)
	m.OIDCProviderARN = types.StringValue(providerARN)
	m.JSON = types.StringValue(policy)
	m.ID = types.StringValue(fmt.Sprintf("%s|%s", providerARN, strings.Join(subjects, ",")))
	if len(statements) > 0 {
		m.ID = types.StringValue(m.ID.ValueString() + "|pod_identity|" + cluster)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// accountAndPartition are those of the OIDC provider to render: as
// configured, else the caller's (STS GetCallerIdentity in the partition
// asked for), else the partition of the provider's region.
func (d *trustPolicyDataSource) accountAndPartition(ctx context.Context, m trustPolicyModel) (string, string, diag.Diagnostics) {
	var diags diag.Diagnostics
	account, partition := m.AccountID.ValueString(), m.Partition.ValueString()
	if account != "" && partition != "" {
		return account, partition, diags
	}
	client, err := d.data.iamClient(ctx)
	if err == nil && partition == "" {
		partition = client.HomePartition()
	}
	if err == nil && account == "" {
		d.data.redactCredentials(ctx, client)
		var caller awsiam.Identity
		if caller, err = client.Caller(ctx, partition); err == nil {
			account, partition = caller.Account, caller.Partition
		}
	}
	if err != nil {
		diags.AddAttributeError(path.Root("account_id"), "Unable to Determine the Account",
			"Set account_id (and partition) or oidc_provider_arn, or give the provider AWS credentials for STS GetCallerIdentity.\n\nError: "+err.Error())
	}
	return account, partition, diags
}

// backtickList renders values as `a`, `b`, `c` for schema descriptions.
func backtickList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + v + "`"
	}
	return strings.Join(quoted, ", ")
}
