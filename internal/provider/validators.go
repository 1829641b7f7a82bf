package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
)

// Validators the framework's own set does not cover: each says what the
// API server or the webhook would do with the value, and what to set instead.

// Token lifetimes, in seconds. The API server rejects a pod whose projected
// token asks for less than 10 minutes or more than 2^32 seconds
// (ValidateProjectedVolumeSource): the webhook would inject such a value
// and every pod of the ServiceAccount would fail to be created. EKS runs the
// API server with --service-account-max-token-expiration=24h, which
// shortens longer requests.
const (
	minTokenExpiration = 600
	maxTokenExpiration = 1 << 32
	eksTokenExpiration = 86400
)

// tokenExpirationValidator keeps token_expiration within what the API
// server accepts, and warns above what EKS issues.
type tokenExpirationValidator struct{}

func (tokenExpirationValidator) Description(context.Context) string {
	return fmt.Sprintf("must be between %d and %d seconds; at most %d on EKS", minTokenExpiration, int64(maxTokenExpiration), eksTokenExpiration)
}

func (v tokenExpirationValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (tokenExpirationValidator) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	n := req.ConfigValue.ValueInt64()
	switch {
	case n < minTokenExpiration || n > maxTokenExpiration:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Token Expiration", fmt.Sprintf(
			"token_expiration is %d seconds. The API server rejects pods whose projected token lives less than %d seconds "+
				"(10 minutes) or more than %d (2^32) seconds, so pods of the ServiceAccount would fail to be created. Set a "+
				"value between %d and %d (24 hours, the longest EKS issues), or remove token_expiration to use the webhook's "+
				"default of %d.", n, minTokenExpiration, int64(maxTokenExpiration), minTokenExpiration, eksTokenExpiration, eksTokenExpiration))
	case n > eksTokenExpiration:
		resp.Diagnostics.AddAttributeWarning(req.Path, "Token Expiration Above the EKS Maximum", fmt.Sprintf(
			"token_expiration is %d seconds, but EKS API servers issue projected tokens for at most %d seconds (24 hours, "+
				"--service-account-max-token-expiration) and shorten longer requests. Set at most %d on EKS; on a cluster "+
				"whose API server allows longer tokens, this warning can be ignored.", n, eksTokenExpiration, eksTokenExpiration))
	}
}

// fieldManagerValidator applies the API server's own check of a field
// manager, plus the one apply adds: it may not be empty.
type fieldManagerValidator struct{}

func (fieldManagerValidator) Description(context.Context) string {
	return fmt.Sprintf("must be 1 to %d printable characters", metav1validation.FieldManagerMaxLength)
}

func (v fieldManagerValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (fieldManagerValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	fm := req.ConfigValue.ValueString()
	var problems []string
	if fm == "" {
		problems = append(problems, "it is empty, and server-side apply requires a field manager")
	}
	// Each binding writes as fm, a slash and its 16-digit ID: that name
	// is what the API server must accept.
	for _, e := range metav1validation.ValidateFieldManager(irsa.BindingManager(fm, strings.Repeat("0", binding.IDLength)), field.NewPath("fieldManager")) {
		if e.Type == field.ErrorTypeTooLong {
			problems = append(problems, fmt.Sprintf("it is %d bytes long, and each binding writes as it, a slash and its %d-character ID", len(fm), binding.IDLength))
			continue
		}
		problems = append(problems, e.Detail)
	}
	if len(problems) == 0 {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Invalid Field Manager", fmt.Sprintf(
		"The API server would reject field_manager %q: %s. Set a name of 1 to %d printable characters, such as %s, "+
			"or remove field_manager to use that default.",
		fm, strings.Join(problems, "; "), maxFieldManagerLength, DefaultFieldManager))
}

// maxFieldManagerLength is what a binding's ID leaves of the API server's
// limit for field_manager.
var maxFieldManagerLength = metav1validation.FieldManagerMaxLength - 1 - binding.IDLength

// positiveDurationValidator rejects a timeout of zero or less: it would
// cancel the operation before its first request. The timeouts package
// already rejects what time.ParseDuration does not parse.
type positiveDurationValidator struct{}

func (positiveDurationValidator) Description(context.Context) string {
	return "must be a positive duration, such as 10m"
}

func (v positiveDurationValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (positiveDurationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d > 0 {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Invalid Timeout", fmt.Sprintf(
		"%s is %q: a timeout of zero or less would stop the operation before it starts. Set a positive duration "+
			"such as \"10m\", or remove it to use the default.", req.Path, req.ConfigValue.ValueString()))
}

// noNullServiceAccountsValidator rejects null elements of a list of strings, which
// the framework's element validators skip: a null in service_accounts
// (often an unset variable) would render the subject of no ServiceAccount.
type noNullServiceAccountsValidator struct{}

func (noNullServiceAccountsValidator) Description(context.Context) string {
	return "must not contain null elements"
}

func (v noNullServiceAccountsValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (noNullServiceAccountsValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for i, e := range req.ConfigValue.Elements() {
		if !e.IsNull() {
			continue
		}
		p := req.Path.AtListIndex(i)
		resp.Diagnostics.AddAttributeError(p, "Null Service Account", fmt.Sprintf(
			"%s is null. Every element must be a ServiceAccount as NAMESPACE/NAME, such as payments/api: remove the "+
				"null, or give it a value (a null usually comes from a variable or attribute that is not set).", p))
	}
}
