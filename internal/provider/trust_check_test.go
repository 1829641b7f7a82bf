package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/trust"
)

// These call checkTrust directly against the IAM emulator, to assert what
// terraform-plugin-testing cannot: the severity of each diagnostic, and how
// many IAM calls a set of bindings costs.

func trustTestResource(t *testing.T, mode string) *serviceAccountBindingResource {
	t.Helper()
	client, err := awsiam.New(t.Context(), awsiam.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	d := &providerData{trustCheck: mode, oidcIssuer: clusterIssuer(), iam: client}
	d.iamOnce.Do(func() {}) // the client above is the instance's
	return &serviceAccountBindingResource{data: d}
}

func bindingModel(ns, sa, role string) serviceAccountBindingModel {
	return serviceAccountBindingModel{
		Namespace: types.StringValue(ns), ServiceAccount: types.StringValue(sa),
		RoleARN: types.StringValue(role), Audience: types.StringNull(),
	}
}

func summaries(diags diag.Diagnostics, sev diag.Severity) []string {
	var out []string
	for _, d := range diags {
		if d.Severity() == sev {
			out = append(out, d.Summary())
		}
	}
	return out
}

func TestCheckTrust_severityFollowsTheMode(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	role := trustedRole(t, trust.Subject("payments", "api-v2"))
	m := bindingModel("payments", "api", role)

	diags := trustTestResource(t, trustCheckError).checkTrust(t.Context(), m)
	if got := summaries(diags, diag.SeverityError); len(got) != 1 || got[0] != "Trust Policy Does Not Allow the Service Account" {
		t.Errorf("error mode: errors = %v", got)
	}
	diags = trustTestResource(t, trustCheckWarn).checkTrust(t.Context(), m)
	if diags.HasError() {
		t.Errorf("warn mode produced errors: %v", diags)
	}
	if got := summaries(diags, diag.SeverityWarning); len(got) != 1 || got[0] != "Trust Policy Does Not Allow the Service Account" {
		t.Errorf("warn mode: warnings = %v", got)
	}
	if diags := trustTestResource(t, trustCheckOff).checkTrust(t.Context(), m); len(diags) != 0 {
		t.Errorf("off mode: %v", diags)
	}
}

func TestCheckTrust_callsPerDistinctRoleAndProvider(t *testing.T) {
	requireEnv(t)
	t.Parallel()
	shared := trustedRole(t, "system:serviceaccount:payments:*")
	other := trustedRole(t, "system:serviceaccount:billing:api")
	r := trustTestResource(t, trustCheckError)
	for _, m := range []serviceAccountBindingModel{
		bindingModel("payments", "api", shared),
		bindingModel("payments", "worker", shared),
		bindingModel("payments", "cron", shared),
		bindingModel("billing", "api", other),
	} {
		if diags := r.checkTrust(t.Context(), m); diags.HasError() {
			t.Fatalf("%s/%s: %v", m.Namespace.ValueString(), m.ServiceAccount.ValueString(), diags)
		}
	}
	// 1 caller identity + 2 roles + 1 OIDC provider.
	if got := r.data.iam.Calls.Load(); got != 4 {
		t.Errorf("IAM and STS calls = %d, want 4 (the caller once, then one per distinct role and OIDC provider)", got)
	}
}

func TestCheckTrust_noCredentialsSkipsWithAWarning(t *testing.T) {
	requireEnv(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	r := trustTestResource(t, trustCheckError)
	diags := r.checkTrust(t.Context(), bindingModel("payments", "api", "arn:aws:iam::123456789012:role/missing"))
	if diags.HasError() {
		t.Fatalf("errors without credentials: %v", diags)
	}
	if got := summaries(diags, diag.SeverityWarning); len(got) != 1 || got[0] != "Trust Check Skipped" {
		t.Errorf("warnings = %v, want [Trust Check Skipped]", got)
	}
	if r.data.iam.Calls.Load() != 0 {
		t.Errorf("IAM was called without credentials")
	}
}
