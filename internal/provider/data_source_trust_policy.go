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
	JSON            types.String   `tfsdk:"json"`
	ID              types.String   `tfsdk:"id"`
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
			"role through its OIDC provider, ready for `aws_iam_role.assume_role_policy`. The policy passes the " +
			"provider's own trust check for every ServiceAccount it names; its JSON is stable across plans.",
		Attributes: map[string]schema.Attribute{
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
	var m trustPolicyModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}

	issuer := m.OIDCIssuer.ValueString()
	if issuer == "" {
		var err error
		if issuer, err = d.data.issuer(ctx); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("oidc_issuer"), "Unable to Determine the OIDC Issuer",
				"Set oidc_issuer here or in the provider, or give the provider a Kubernetes connection to discover it from.\n\nError: "+err.Error())
			return
		}
	}
	providerARN := m.OIDCProviderARN.ValueString()
	if providerARN == "" {
		account, partition := m.AccountID.ValueString(), "aws"
		if account == "" {
			client, err := d.data.iamClient(ctx)
			if err == nil {
				account, partition, err = client.Caller(ctx)
			}
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("account_id"), "Unable to Determine the Account",
					"Set account_id or oidc_provider_arn, or give the provider AWS credentials for STS GetCallerIdentity.\n\nError: "+err.Error())
				return
			}
		}
		providerARN = trust.ProviderARN(partition, account, issuer)
	}

	var subjects []string
	for _, sa := range m.ServiceAccounts {
		ns, name, _ := strings.Cut(sa.ValueString(), "/")
		subjects = append(subjects, trust.Subject(ns, name))
	}
	policy, err := trust.Render(trust.Grant{ProviderARN: providerARN, Issuer: issuer, Audience: m.Audience.ValueString(), Subjects: subjects})
	if err != nil {
		resp.Diagnostics.AddError("Unable to Render the Trust Policy", "This is always a bug in the provider; please report it.\n\nError: "+err.Error())
		return
	}
	m.OIDCIssuer = types.StringValue(issuer)
	m.OIDCProviderARN = types.StringValue(providerARN)
	m.JSON = types.StringValue(policy)
	m.ID = types.StringValue(fmt.Sprintf("%s|%s", providerARN, strings.Join(subjects, ",")))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
