package provider

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/iamarn"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

// serviceAccountBindingModel is the resource's state and plan.
type serviceAccountBindingModel struct {
	ID                    types.String   `tfsdk:"id"`
	Namespace             types.String   `tfsdk:"namespace"`
	ServiceAccount        types.String   `tfsdk:"service_account"`
	RoleARN               types.String   `tfsdk:"role_arn"`
	CreateServiceAccount  types.Bool     `tfsdk:"create_service_account"`
	ServiceAccountCreated types.Bool     `tfsdk:"service_account_created"`
	Audience              types.String   `tfsdk:"audience"`
	STSRegionalEndpoints  types.Bool     `tfsdk:"sts_regional_endpoints"`
	TokenExpiration       types.Int64    `tfsdk:"token_expiration"`
	ForceConflicts        types.Bool     `tfsdk:"force_conflicts"`
	Restart               types.Object   `tfsdk:"restart"`
	Timeouts              timeouts.Value `tfsdk:"timeouts"`
	StalePods             types.List     `tfsdk:"stale_pods"`
	OIDCIssuer            types.String   `tfsdk:"oidc_issuer"`
	Mechanism             types.String   `tfsdk:"mechanism"`
	PodIdentity           types.Object   `tfsdk:"pod_identity"`
	AssociationID         types.String   `tfsdk:"association_id"`
	AssociationARN        types.String   `tfsdk:"association_arn"`
}

// sameModel reports whether a and b hold equal values in every attribute.
// A Read whose refresh changed nothing leaves the response state as the
// framework starts it, the prior state, instead of setting it again: the
// framework's Set reflects over the model (compiling a regexp for each of its
// fields) and rebuilds the whole value, per binding per refresh.
func sameModel(a, b serviceAccountBindingModel) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		x, ok := va.Field(i).Interface().(attr.Value)
		y, _ := vb.Field(i).Interface().(attr.Value)
		if !ok || !x.Equal(y) {
			return false
		}
	}
	return true
}

// binding is the desired annotations of the model.
func (m serviceAccountBindingModel) binding() irsa.Binding {
	b := irsa.Binding{RoleARN: m.RoleARN.ValueString()}
	if !m.Audience.IsNull() {
		b.Audience = m.Audience.ValueStringPointer()
	}
	if !m.STSRegionalEndpoints.IsNull() {
		b.STSRegionalEndpoints = m.STSRegionalEndpoints.ValueBoolPointer()
	}
	if !m.TokenExpiration.IsNull() {
		b.TokenExpiration = m.TokenExpiration.ValueInt64Pointer()
	}
	return b
}

var (
	// DNS-1123 label: namespaces.
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// DNS-1123 subdomain: ServiceAccount names.
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func (r *serviceAccountBindingResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: 0,
		MarkdownDescription: "Binds an IAM role to a Kubernetes ServiceAccount (IRSA): sets the `" + irsa.RoleARNAnnotation +
			"` annotation and its companions with server-side apply, as the provider's own field manager, leaving every " +
			"other annotation and label of the ServiceAccount as it is.\n\n" +
			"The webhook only mutates pods when they are created, so after annotating, the binding recycles the pods " +
			"that run without the role's credentials (see `restart`) and waits until their replacements carry them.\n\n" +
			"Refresh reports a changed or removed annotation, and pods still running without the credentials " +
			"(`stale_pods`), as drift. Destroy removes only the annotations this binding set.\n\n" +
			"Before touching any pod, apply checks with a server-side dry-run pod that the pod identity webhook would " +
			"inject the new role; if it would not, no pod is touched. When recycling does not finish (the webhook check " +
			"fails, a timeout, an eviction a PodDisruptionBudget blocks, an interrupt), the annotations stay, state is " +
			"saved with the pods still to recycle in `stale_pods`, and the next apply is an in-place update that " +
			"recycles them: the binding is never replaced for it. Apply reports it as an error on update and as a " +
			"warning on create (an error there would make Terraform taint the binding and replace it).",
		Attributes: map[string]schema.Attribute{
			// Required.
			"namespace": schema.StringAttribute{
				MarkdownDescription: "Namespace of the ServiceAccount. Changing it replaces the binding.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{
					stringvalidator.LengthBetween(1, 63),
					stringvalidator.RegexMatches(dns1123Label, "must be a DNS-1123 label: lower-case letters, digits and '-', "+
						"starting and ending with a letter or digit (for example payments)"),
				},
			},
			"service_account": schema.StringAttribute{
				MarkdownDescription: "Name of the ServiceAccount. Changing it replaces the binding.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{
					stringvalidator.LengthBetween(1, 253),
					stringvalidator.RegexMatches(dns1123Subdomain, "must be a DNS-1123 subdomain: lower-case letters, digits, '-' "+
						"and '.', starting and ending with a letter or digit (for example api)"),
				},
			},
			"role_arn": schema.StringAttribute{
				MarkdownDescription: "ARN of the IAM role pods of the ServiceAccount assume, `" + iamarn.Shape + "`. " +
					"Role paths and every partition (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso*`) are accepted. Sets `" +
					irsa.RoleARNAnnotation + "`.",
				Required:   true,
				Validators: []validator.String{roleARNValidator{}},
			},

			// Optional.
			"create_service_account": schema.BoolAttribute{
				MarkdownDescription: "Create the ServiceAccount when it does not exist. A ServiceAccount created this way " +
					"is deleted on destroy (only that very one; not when a create_before_destroy replacement holds it, which " +
					"leaves it in place); one that existed " +
					"before is never deleted. Default `false`: a ServiceAccount missing at plan time is a warning (it may be " +
					"created earlier in the same apply), and one still missing at apply fails it, changing nothing.",
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"audience": schema.StringAttribute{
				MarkdownDescription: "Audience of the projected token, `" + irsa.AudienceAnnotation + "`. " +
					"Unset, the webhook's default applies (`sts.amazonaws.com` on EKS).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"sts_regional_endpoints": schema.BoolAttribute{
				MarkdownDescription: "Whether pods use the regional STS endpoint (`AWS_STS_REGIONAL_ENDPOINTS=regional`), `" +
					irsa.STSRegionalEndpointsAnnotation + "`.",
				Optional: true,
			},
			"token_expiration": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Lifetime of the projected token in seconds, `%s`. Between %d and %d "+
					"(2^32), the range the API server accepts in a pod; EKS issues tokens for at most %d seconds and "+
					"shortens longer ones, so a longer value is a warning. Unset, the webhook's default applies (86400).",
					irsa.TokenExpirationAnnotation, minTokenExpiration, int64(maxTokenExpiration), eksTokenExpiration),
				Optional:   true,
				Validators: []validator.Int64{tokenExpirationValidator{}},
			},
			"force_conflicts": schema.BoolAttribute{
				MarkdownDescription: "Take the annotations over when another field manager (Helm, eksctl, " +
					"`kubectl annotate`) owns them with a different value. Default `false`: such a conflict is a warning " +
					"in plan and fails the apply, naming the other manager, and changes nothing.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"mechanism":    mechanismSchema(),
			"pod_identity": podIdentitySchema(),
			"restart":      restartSchema(),
			"timeouts":     positiveTimeouts(timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true})),

			// Computed.
			"id": schema.StringAttribute{
				MarkdownDescription: "`NAMESPACE/SERVICE_ACCOUNT`; also the import ID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"service_account_created": schema.BoolAttribute{
				MarkdownDescription: "Whether this binding created the ServiceAccount (and so deletes it on destroy).",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"stale_pods": stalePodsSchema(),
			"oidc_issuer": schema.StringAttribute{
				MarkdownDescription: "The cluster's OIDC issuer the trust check used: the provider's `oidc_issuer`, or the one the API server announces.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"association_id": schema.StringAttribute{
				MarkdownDescription: "ID of the EKS Pod Identity association (`a-` and 17 characters) the binding created or " +
					"imported, and deletes on destroy. Null under `irsa`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"association_arn": schema.StringAttribute{
				MarkdownDescription: "ARN of the EKS Pod Identity association. Null under `irsa`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

// roleARNValidator checks role_arn with iamarn.ParseRole, whose messages show
// the expected shape.
type roleARNValidator struct{}

func (roleARNValidator) Description(context.Context) string {
	return "must be an IAM role ARN: " + iamarn.Shape
}

func (v roleARNValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (roleARNValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := iamarn.ParseRole(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid IAM Role ARN", err.Error())
	}
}

// positiveTimeouts adds to each duration of the timeouts attribute a check
// that it is positive: the timeouts package checks only that it parses.
func positiveTimeouts(a schema.Attribute) schema.Attribute {
	nested, ok := a.(schema.SingleNestedAttribute)
	if !ok {
		return a
	}
	attrs := make(map[string]schema.Attribute, len(nested.Attributes))
	for name, attr := range nested.Attributes {
		if s, ok := attr.(schema.StringAttribute); ok {
			s.Validators = append(slices.Clone(s.Validators), positiveDurationValidator{})
			attr = s
		}
		attrs[name] = attr
	}
	nested.Attributes = attrs
	return nested
}
