package provider

import (
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
)

// awsModel is the provider's aws block, used only by the trust check and
// the trust-policy data source.
type awsModel struct {
	Region      types.String     `tfsdk:"region"`
	Profile     types.String     `tfsdk:"profile"`
	IAMEndpoint types.String     `tfsdk:"iam_endpoint"`
	STSEndpoint types.String     `tfsdk:"sts_endpoint"`
	EKSEndpoint types.String     `tfsdk:"eks_endpoint"`
	AssumeRole  *assumeRoleModel `tfsdk:"assume_role"`
}

type assumeRoleModel struct {
	RoleARN     types.String `tfsdk:"role_arn"`
	SessionName types.String `tfsdk:"session_name"`
	ExternalID  types.String `tfsdk:"external_id"`
}

// Trust check modes.
const (
	trustCheckError = "error"
	trustCheckWarn  = "warn"
	trustCheckOff   = "off"
)

var trustCheckModes = []string{trustCheckError, trustCheckWarn, trustCheckOff}

var trustCheckModeDescriptions = map[string]string{
	trustCheckError: "fail the plan (the default)",
	trustCheckWarn:  "warn, and plan anyway",
	trustCheckOff:   "make no IAM call",
}

// trustCheckModesDescription documents the modes from the slice the
// validator accepts.
func trustCheckModesDescription() string {
	var b strings.Builder
	for _, m := range trustCheckModes {
		fmt.Fprintf(&b, "\n  - `%s`: %s.", m, trustCheckModeDescriptions[m])
	}
	return b.String()
}

func awsSchema() schema.SingleNestedAttribute {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true}
	}
	return schema.SingleNestedAttribute{
		MarkdownDescription: "How to reach AWS: IAM for the trust check, EKS for `pod_identity` bindings. Unset settings come from the standard AWS " +
			"environment variables, config files and credential chain.",
		Optional: true,
		Attributes: map[string]schema.Attribute{
			"region": str("AWS region. IAM is global within a partition: the region picks the partition the credentials " +
				"belong to. Roles of another partition are looked up at that partition's endpoint. Else `AWS_REGION`."),
			"profile": str("Shared config profile. Else `AWS_PROFILE`."),
			"iam_endpoint": str("IAM endpoint URL, for example a VPC endpoint, used for roles of every partition. Else " +
				"`AWS_ENDPOINT_URL_IAM`, else the endpoint of the role's partition."),
			"sts_endpoint": str("STS endpoint URL. Else `AWS_ENDPOINT_URL_STS`."),
			"eks_endpoint": str("EKS endpoint URL, for `pod_identity` bindings. Else `AWS_ENDPOINT_URL_EKS`, else the region's."),
			"assume_role": schema.SingleNestedAttribute{
				MarkdownDescription: "A role to assume for the IAM calls. The trust check only checks roles in the account " +
					"of the credentials it ends up with: to check roles of another account, assume a role in that account " +
					"that allows `iam:GetRole` and `iam:GetOpenIDConnectProvider` (one provider alias per account).",
				Optional: true,
				Attributes: map[string]schema.Attribute{
					"role_arn":     schema.StringAttribute{MarkdownDescription: "ARN of the role to assume.", Required: true},
					"session_name": str("Session name."),
					"external_id":  str("External ID the role's trust policy requires."),
				},
			},
		},
	}
}

func (m *awsModel) settings() awsiam.Settings {
	if m == nil {
		return awsiam.Settings{}
	}
	s := awsiam.Settings{
		Region:      m.Region.ValueString(),
		Profile:     m.Profile.ValueString(),
		IAMEndpoint: m.IAMEndpoint.ValueString(),
		STSEndpoint: m.STSEndpoint.ValueString(),
		EKSEndpoint: m.EKSEndpoint.ValueString(),
	}
	if m.AssumeRole != nil {
		s.AssumeRole = &awsiam.AssumeRole{
			RoleARN:     m.AssumeRole.RoleARN.ValueString(),
			SessionName: m.AssumeRole.SessionName.ValueString(),
			ExternalID:  m.AssumeRole.ExternalID.ValueString(),
		}
	}
	return s
}
