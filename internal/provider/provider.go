// Package provider implements the irsa Terraform provider: its configuration,
// resources, data sources and functions. It reads plans and state, calls the
// domain packages (binding, kube, trust, awsiam, iamarn) and writes state;
// cluster and AWS logic lives in those packages, not here.
package provider

import (
	"context"
	"fmt"

	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/redact"
)

// DefaultFieldManager is the server-side apply field manager the provider
// writes annotations as.
const DefaultFieldManager = "terraform-provider-irsa"

var (
	_ provider.Provider              = (*irsaProvider)(nil)
	_ provider.ProviderWithFunctions = (*irsaProvider)(nil)
)

// New returns a constructor for the provider, as providerserver.Serve wants.
func New(version, commit string) func() provider.Provider {
	return func() provider.Provider {
		return &irsaProvider{version: version, commit: commit}
	}
}

type irsaProvider struct {
	version string
	commit  string
}

type providerModel struct {
	// The blocks stay framework objects so that a wholly unknown value
	// (a module output, an object computed in the same apply) decodes.
	Kubernetes   types.Object `tfsdk:"kubernetes"`
	AWS          types.Object `tfsdk:"aws"`
	OIDCIssuer   types.String `tfsdk:"oidc_issuer"`
	TrustCheck   types.String `tfsdk:"trust_check"`
	FieldManager types.String `tfsdk:"field_manager"`
	ClusterName  types.String `tfsdk:"cluster_name"`
}

func (p *irsaProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "irsa"
	resp.Version = p.version
}

func (p *irsaProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Binds AWS IAM roles to Kubernetes ServiceAccounts on Amazon EKS " +
			"([IRSA](https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html)). " +
			"Every setting is optional: without kubernetes settings (or `KUBE_CONFIG_PATH`, `KUBECONFIG`) the provider uses the in-cluster " +
			"configuration (when it runs in a pod); it never falls back to `~/.kube/config` on its own.",
		Attributes: map[string]schema.Attribute{
			"kubernetes": kubernetesSchema(),
			"aws":        awsSchema(),
			"oidc_issuer": schema.StringAttribute{
				MarkdownDescription: "The cluster's OIDC issuer URL, for example `https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE`. " +
					"Default: read once from the API server's `/.well-known/openid-configuration`. Any issuer is accepted, " +
					"not only EKS's (self-managed clusters).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^https://\S+$`), "must be an https:// URL")},
			},
			"trust_check": schema.StringAttribute{
				MarkdownDescription: "What to do when IAM says a binding cannot work: the role does not exist, the cluster's " +
					"OIDC provider does not exist in the role's account (or lacks the audience), or the role's trust policy " +
					"does not let the ServiceAccount assume it. Missing credentials, an IAM AccessDenied, or a role in another " +
					"account or partition than the credentials' skip the check with a warning; expired or invalid credentials " +
					"are errors." + trustCheckModesDescription(),
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(trustCheckModes...)},
			},
			"cluster_name": schema.StringAttribute{
				MarkdownDescription: "Name of the EKS cluster the kubernetes connection reaches, for `mechanism = \"pod_identity\"` " +
					"bindings (required by them; IRSA bindings never call EKS, except that an import with cluster_name set looks for an association first). Checked once per run: the EKS cluster of this name " +
					"must report the OIDC issuer the API server announces, so a kubeconfig of one cluster and the name of another " +
					"stop the plan. The EKS endpoint follows the `aws` block (`eks_endpoint`, else `AWS_ENDPOINT_URL_EKS`).",
				Optional: true,
				Validators: []validator.String{
					stringvalidator.LengthBetween(1, 100),
					stringvalidator.RegexMatches(regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9\-_]*$`),
						"must be an EKS cluster name: letters, digits, '-' and '_', starting with a letter or digit"),
				},
			},
			"field_manager": schema.StringAttribute{
				MarkdownDescription: "The server-side apply field manager the provider writes as. Each binding " +
					"writes its annotations as a manager of its own, this name, a slash and the binding's ID " +
					"(`" + DefaultFieldManager + "/3f9c0a1b2c3d4e5f`), which is how the API server keeps who holds a " +
					"ServiceAccount. Defaults to `" + DefaultFieldManager + "`. Changing it on existing bindings makes them " +
					"conflict with themselves: the old managers still own the annotations. 1 to 111 printable characters " +
					"(the API server's 128, less the binding's ID).",
				Optional:   true,
				Validators: []validator.String{fieldManagerValidator{}},
			},
		},
	}
}

func (p *irsaProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	if err := redact.FilterStderr(); err != nil {
		tflog.Warn(ctx, "cannot filter secrets out of credential helpers' stderr", map[string]any{"error": err.Error()})
	}
	registerAWSEnvSecrets()
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	data := &providerData{fieldManager: DefaultFieldManager, trustCheck: trustCheckError, oidcIssuer: cfg.OIDCIssuer.ValueString()}
	if !cfg.FieldManager.IsNull() && !cfg.FieldManager.IsUnknown() {
		data.fieldManager = cfg.FieldManager.ValueString()
	}
	if !cfg.TrustCheck.IsNull() && !cfg.TrustCheck.IsUnknown() {
		data.trustCheck = cfg.TrustCheck.ValueString()
	}
	awsUnknown := valueHasUnknown(ctx, cfg.AWS)
	kubeUnknown := valueHasUnknown(ctx, cfg.Kubernetes)
	var awsCfg *awsModel
	var kubeCfg *kubernetesModel
	if !awsUnknown && !cfg.AWS.IsNull() {
		resp.Diagnostics.Append(cfg.AWS.As(ctx, &awsCfg, basetypes.ObjectAsOptions{})...)
	}
	if !kubeUnknown && !cfg.Kubernetes.IsNull() {
		resp.Diagnostics.Append(cfg.Kubernetes.As(ctx, &kubeCfg, basetypes.ObjectAsOptions{})...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	data.awsUnknown = awsUnknown || cfg.TrustCheck.IsUnknown() || cfg.OIDCIssuer.IsUnknown() || cfg.ClusterName.IsUnknown()
	data.clusterName = cfg.ClusterName.ValueString()
	data.awsSettings = awsCfg.settings()
	if !data.awsUnknown {
		resp.Diagnostics.Append(awsCleartextWarnings(awsCfg)...)
	}

	if kubeUnknown || cfg.FieldManager.IsUnknown() {
		// A cluster created in the same apply: nothing can be checked
		// against it during plan. Apply configures the provider again with
		// the values known.
		tflog.Info(ctx, "kubernetes settings are unknown until apply; cluster checks are deferred")
		data.kubeUnknown = true
	} else {
		conn := kubeCfg.connectionConfig()
		conn.UserAgent = fmt.Sprintf("terraform-provider-irsa/%s (%s)", p.version, p.commit)
		registerKubeSecrets(conn)
		rest, err := conn.RESTConfig()
		if err == nil {
			registerRESTSecrets(rest)
			resp.Diagnostics.Append(kubeCleartextWarning(rest)...)
			data.kube, err = kubernetes.NewForConfig(rest)
			data.kubeHost = rest.Host
		}
		if err == nil {
			data.reads = kube.NewSnapshot(data.kube, 0)
		}
		// Kept, not reported here: configurations that only read the
		// trust-policy data source do not need a cluster.
		data.kubeErr = err
	}

	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *irsaProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewServiceAccountBindingResource,
	}
}

// Functions are pure: no provider configuration, no API call.
func (p *irsaProvider) Functions(_ context.Context) []func() function.Function {
	return []func() function.Function{NewServiceAccountSubjectFunction, NewTrustPolicyFunction}
}

func (p *irsaProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewTrustPolicyDataSource,
	}
}

// valueHasUnknown reports whether v, or any value nested in it at any depth,
// is unknown. It walks the Terraform value, so it covers every attribute of a
// block without a list of them.
func valueHasUnknown(ctx context.Context, v attr.Value) bool {
	if v == nil || v.IsNull() {
		return false
	}
	if v.IsUnknown() {
		return true
	}
	tv, err := v.ToTerraformValue(ctx)
	if err != nil {
		return true
	}
	return !tv.IsFullyKnown()
}
