package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
)

// podIdentityModel is the pod_identity attribute: the association's
// settings beside role_arn.
type podIdentityModel struct {
	TargetRoleARN      types.String `tfsdk:"target_role_arn"`
	DisableSessionTags types.Bool   `tfsdk:"disable_session_tags"`
	SessionPolicy      types.String `tfsdk:"session_policy"`
	Tags               types.Map    `tfsdk:"tags"`
}

var podIdentityAttrTypes = map[string]attr.Type{
	"target_role_arn":      types.StringType,
	"disable_session_tags": types.BoolType,
	"session_policy":       types.StringType,
	"tags":                 types.MapType{ElemType: types.StringType},
}

// EKS's documented limits.
const (
	maxAssociationTags   = 50
	maxTagKeyLength      = 128
	maxTagValueLength    = 256
	maxSessionPolicySize = 2048
)

var mechanisms = []string{string(binding.MechanismIRSA), string(binding.MechanismPodIdentity)}

func mechanismSchema() schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: "How the role reaches pods. Default `irsa`.\n" +
			"  - `irsa`: the ServiceAccount's `eks.amazonaws.com/role-arn` annotation (IAM Roles for Service Accounts); " +
			"the role trusts the cluster's OIDC provider.\n" +
			"  - `pod_identity`: an [EKS Pod Identity](https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html) " +
			"association of (cluster, namespace, ServiceAccount); the role trusts `pods.eks.amazonaws.com`, the provider " +
			"needs `cluster_name`, and the cluster runs the EKS Pod Identity Agent. Not on Fargate, Windows nodes, Outposts " +
			"or EKS Anywhere.\n\n" +
			"Changing it on an existing binding migrates in place, without a pod ever running without credentials " +
			"(see the guide Migrating from IRSA to EKS Pod Identity, and back).",
		Optional:   true,
		Computed:   true,
		Default:    stringdefault.StaticString(string(binding.MechanismIRSA)),
		Validators: []validator.String{stringvalidator.OneOf(mechanisms...)},
	}
}

func podIdentitySchema() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		MarkdownDescription: "The Pod Identity association's settings beside `role_arn`, only with `mechanism = \"pod_identity\"`.",
		Optional:            true,
		Attributes: map[string]schema.Attribute{
			"target_role_arn": schema.StringAttribute{
				MarkdownDescription: "A role in another account that EKS assumes with the credentials of `role_arn` " +
					"(role chaining, for cross-account access). Its trust policy must let `role_arn` assume it and tag the session.",
				Optional:   true,
				Validators: []validator.String{roleARNValidator{}},
			},
			"disable_session_tags": schema.BoolAttribute{
				MarkdownDescription: "Turn off the session tags EKS adds (`kubernetes-namespace`, `kubernetes-service-account`, " +
					"`eks-cluster-name`, ...). Required by `session_policy`. Default `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"session_policy": schema.StringAttribute{
				MarkdownDescription: fmt.Sprintf("A session policy (JSON) narrowing what pods may do with the role: the "+
					"association's `policy`. Needs `disable_session_tags = true`. At most %d characters.", maxSessionPolicySize),
				Optional:   true,
				Validators: []validator.String{sessionPolicyValidator{}},
			},
			"tags": schema.MapAttribute{
				MarkdownDescription: fmt.Sprintf("Tags of the association (not of the pods' sessions). At most %d; keys of "+
					"1 to %d characters not starting with `aws:`, values of at most %d.", maxAssociationTags, maxTagKeyLength, maxTagValueLength),
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{
					mapvalidator.SizeAtMost(maxAssociationTags),
					mapvalidator.KeysAre(stringvalidator.LengthBetween(1, maxTagKeyLength), notAWSPrefix{}),
					mapvalidator.ValueStringsAre(stringvalidator.LengthAtMost(maxTagValueLength)),
				},
			},
		},
	}
}

// mechanism is the model's, IRSA when unset.
func (m serviceAccountBindingModel) mechanism() binding.Mechanism {
	if m.Mechanism.ValueString() == string(binding.MechanismPodIdentity) {
		return binding.MechanismPodIdentity
	}
	return binding.MechanismIRSA
}

// podIdentity is the association's settings beside the role.
func (m serviceAccountBindingModel) podIdentity(ctx context.Context) (awseks.Settings, diag.Diagnostics) {
	var s awseks.Settings
	if m.PodIdentity.IsNull() || m.PodIdentity.IsUnknown() {
		return s, nil
	}
	var pi podIdentityModel
	diags := m.PodIdentity.As(ctx, &pi, basetypes.ObjectAsOptions{})
	s.TargetRoleARN = pi.TargetRoleARN.ValueString()
	s.DisableSessionTags = pi.DisableSessionTags.ValueBool()
	s.Policy = pi.SessionPolicy.ValueString()
	if !pi.Tags.IsNull() && !pi.Tags.IsUnknown() {
		s.Tags = map[string]string{}
		diags.Append(pi.Tags.ElementsAs(ctx, &s.Tags, false)...)
	}
	return s, diags
}

// refreshFromAssociation copies the association's real settings into state,
// so one changed out of band is a diff. pod_identity stays null while the
// association has every default and the configuration set none.
func refreshFromAssociation(state *serviceAccountBindingModel, a *awseks.Association) {
	state.RoleARN = types.StringValue(a.RoleARN)
	state.AssociationID = types.StringValue(a.ID)
	state.AssociationARN = types.StringValue(a.ARN)
	if state.PodIdentity.IsNull() && a.TargetRoleARN == "" && !a.DisableSessionTags && a.Policy == "" && len(a.Tags) == 0 {
		return
	}
	str := func(v string) types.String {
		if v == "" {
			return types.StringNull()
		}
		return types.StringValue(v)
	}
	tags := types.MapNull(types.StringType)
	if len(a.Tags) > 0 || hadTags(state) {
		elems := map[string]attr.Value{}
		for k, v := range a.Tags {
			elems[k] = types.StringValue(v)
		}
		tags = types.MapValueMust(types.StringType, elems)
	}
	state.PodIdentity = types.ObjectValueMust(podIdentityAttrTypes, map[string]attr.Value{
		"target_role_arn":      str(a.TargetRoleARN),
		"disable_session_tags": types.BoolValue(a.DisableSessionTags),
		"session_policy":       str(a.Policy),
		"tags":                 tags,
	})
}

// hadTags reports whether state set tags (an empty map stays empty, not
// null, when the association has none).
func hadTags(state *serviceAccountBindingModel) bool {
	if state.PodIdentity.IsNull() || state.PodIdentity.IsUnknown() {
		return false
	}
	t, ok := state.PodIdentity.Attributes()["tags"].(types.Map)
	return ok && !t.IsNull()
}

// validateMechanism reports attributes of one mechanism set on a binding
// of the other, and a session policy with session tags on.
func (m serviceAccountBindingModel) validateMechanism(ctx context.Context) diag.Diagnostics {
	var diags diag.Diagnostics
	if m.Mechanism.IsUnknown() {
		return diags
	}
	if m.mechanism() == binding.MechanismPodIdentity {
		for name, v := range map[string]attr.Value{"audience": m.Audience, "sts_regional_endpoints": m.STSRegionalEndpoints, "token_expiration": m.TokenExpiration} {
			if !v.IsNull() {
				diags.AddAttributeError(path.Root(name), "Attribute Not Used by EKS Pod Identity",
					fmt.Sprintf("%s configures the IRSA token and environment the webhook injects; with mechanism = \"pod_identity\" "+
						"pods get container credentials from the EKS Pod Identity Agent instead, and nothing reads it. Remove %s, "+
						"or use mechanism = \"irsa\".", name, name))
			}
		}
		s, d := m.podIdentity(ctx)
		diags.Append(d...)
		if s.Policy != "" && !s.DisableSessionTags && !m.PodIdentity.IsUnknown() {
			diags.AddAttributeError(path.Root("pod_identity").AtName("session_policy"), "Session Policy Needs Session Tags Off",
				"EKS accepts a session policy only on an association with session tags disabled (its policy and session tags "+
					"together would exceed the session's packed size). Set pod_identity.disable_session_tags = true, or remove session_policy.")
		}
		return diags
	}
	if !m.PodIdentity.IsNull() {
		diags.AddAttributeError(path.Root("pod_identity"), "Pod Identity Settings Without Pod Identity",
			"pod_identity configures an EKS Pod Identity association, which this binding does not make: its mechanism is "+
				"\"irsa\" (the default). Set mechanism = \"pod_identity\", or remove pod_identity.")
	}
	return diags
}

// sessionPolicyValidator checks that session_policy is a JSON object of at
// most EKS's size.
type sessionPolicyValidator struct{}

func (sessionPolicyValidator) Description(context.Context) string {
	return fmt.Sprintf("must be an IAM policy document (a JSON object) of at most %d characters", maxSessionPolicySize)
}

func (v sessionPolicyValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (sessionPolicyValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	doc := req.ConfigValue.ValueString()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &obj); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Session Policy",
			"session_policy must be an IAM policy document, a JSON object such as jsonencode({Version = \"2012-10-17\", "+
				"Statement = [...]}) or data.aws_iam_policy_document.x.json: "+err.Error())
		return
	}
	if _, ok := obj["Statement"]; !ok {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Session Policy",
			"session_policy has no Statement: an IAM policy document lists what it allows or denies under \"Statement\".")
	}
	if n := len(doc); n > maxSessionPolicySize {
		resp.Diagnostics.AddAttributeError(req.Path, "Session Policy Too Long",
			fmt.Sprintf("session_policy is %d characters; EKS accepts at most %d. Narrow it, or attach the permissions to the role instead.", n, maxSessionPolicySize))
	}
}

// notAWSPrefix refuses tag keys AWS reserves.
type notAWSPrefix struct{}

func (notAWSPrefix) Description(context.Context) string { return "must not start with aws:" }

func (v notAWSPrefix) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (notAWSPrefix) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if strings.HasPrefix(strings.ToLower(req.ConfigValue.ValueString()), "aws:") {
		resp.Diagnostics.AddAttributeError(req.Path, "Reserved Tag Key",
			fmt.Sprintf("Tag key %q starts with aws:, which AWS reserves for its own tags. Use another prefix.", req.ConfigValue.ValueString()))
	}
}

// ValidateConfig checks what no single attribute's validator can: which
// attributes go with which mechanism.
func (r *serviceAccountBindingResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg serviceAccountBindingModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(cfg.validateMechanism(ctx)...)
}
