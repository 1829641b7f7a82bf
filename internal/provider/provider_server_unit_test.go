package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The provider's pure parts through its server, as Terraform calls them
// (GetProviderSchema, ConfigureProvider, ReadDataSource, CallFunction), with
// no environment: `go test ./...` runs these. The acceptance tests run the
// same through the real CLI.

// pureServer is a provider server configured with what config returns for
// the provider's schema type, for parts that make no call.
func pureServer(t *testing.T, config func(tftypes.Object) map[string]tftypes.Value) (tfprotov6.ProviderServer, *tfprotov6.GetProviderSchemaResponse) {
	t.Helper()
	server, err := providerserver.NewProtocol6WithError(New("test", "unit")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := server.GetProviderSchema(t.Context(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	providerType, ok := schemas.Provider.ValueType().(tftypes.Object)
	if !ok {
		t.Fatal("provider schema is not an object")
	}
	resp, err := server.ConfigureProvider(t.Context(), &tfprotov6.ConfigureProviderRequest{
		Config: dynamic(t, providerType, objectValue(t, providerType, config(providerType))),
	})
	if err != nil || hasErrors(resp.Diagnostics) {
		t.Fatalf("configure: %v %v", err, diagSummaries(resp.Diagnostics))
	}
	return server, schemas
}

func diagSummaries(diags []*tfprotov6.Diagnostic) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.Severity.String()+": "+d.Summary+": "+d.Detail)
	}
	return out
}

// attrString reads a string attribute of an object value.
func attrString(t *testing.T, v tftypes.Value, name string) string {
	t.Helper()
	var attrs map[string]tftypes.Value
	if err := v.As(&attrs); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := attrs[name].As(&s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func strList(ss ...string) tftypes.Value {
	vals := make([]tftypes.Value, len(ss))
	for i, s := range ss {
		vals[i] = str(s)
	}
	return tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, vals)
}

// The data source renders the partition it is asked for, and otherwise the
// one of the OIDC provider's ARN or the provider's region.
func TestTrustPolicyDataSource_partitionsThroughTheServer(t *testing.T) {
	t.Parallel()
	const issuer = "https://oidc.eks.us-gov-west-1.amazonaws.com/id/PARTITIONS"
	const host = "oidc.eks.us-gov-west-1.amazonaws.com/id/PARTITIONS"
	server, schemas := pureServer(t, func(provider tftypes.Object) map[string]tftypes.Value {
		awsType, ok := provider.AttributeTypes["aws"].(tftypes.Object)
		if !ok {
			t.Fatal("the aws block is not an object")
		}
		return map[string]tftypes.Value{
			"oidc_issuer": str(issuer),
			"aws":         objectValue(t, awsType, map[string]tftypes.Value{"region": str("cn-north-1")}),
		}
	})
	dsType, ok := schemas.DataSourceSchemas["irsa_trust_policy"].ValueType().(tftypes.Object)
	if !ok {
		t.Fatal("data source schema is not an object")
	}
	for _, tt := range []struct {
		name      string
		config    map[string]tftypes.Value
		partition string
	}{
		{"asked for", map[string]tftypes.Value{"account_id": str("210987654321"), "partition": str("aws-us-gov")}, "aws-us-gov"},
		{"asked for, commercial", map[string]tftypes.Value{"account_id": str("210987654321"), "partition": str("aws")}, "aws"},
		{"from the provider's region", map[string]tftypes.Value{"account_id": str("210987654321")}, "aws-cn"},
		{"from the OIDC provider's ARN", map[string]tftypes.Value{"oidc_provider_arn": str("arn:aws-iso-b:iam::210987654321:oidc-provider/" + host)}, "aws-iso-b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.config["service_accounts"] = strList("payments/api")
			resp, err := server.ReadDataSource(t.Context(), &tfprotov6.ReadDataSourceRequest{
				TypeName: "irsa_trust_policy",
				Config:   dynamic(t, dsType, objectValue(t, dsType, tt.config)),
			})
			if err != nil || hasErrors(resp.Diagnostics) {
				t.Fatalf("read: %v %v", err, diagSummaries(resp.Diagnostics))
			}
			state, err := resp.State.Unmarshal(dsType)
			if err != nil {
				t.Fatal(err)
			}
			arn := "arn:" + tt.partition + ":iam::210987654321:oidc-provider/" + host
			if got := attrString(t, state, "partition"); got != tt.partition {
				t.Errorf("partition %q, want %q", got, tt.partition)
			}
			if got := attrString(t, state, "oidc_provider_arn"); got != arn {
				t.Errorf("oidc_provider_arn %q, want %q", got, arn)
			}
			if doc := attrString(t, state, "json"); !strings.Contains(doc, `"Federated": "`+arn+`"`) || !strings.Contains(doc, "system:serviceaccount:payments:api") {
				t.Errorf("json does not federate %s for payments/api:\n%s", arn, doc)
			}
		})
	}
}

// The functions, called as Terraform calls them: their results and their
// argument errors.
func TestFunctions_throughTheServer(t *testing.T) {
	t.Parallel()
	server, _ := pureServer(t, func(tftypes.Object) map[string]tftypes.Value { return nil })
	call := func(t *testing.T, name string, args ...tftypes.Value) (string, *tfprotov6.FunctionError) {
		t.Helper()
		dvs := make([]*tfprotov6.DynamicValue, len(args))
		for i, a := range args {
			typ := a.Type()
			if name == "trust_policy" {
				typ = tftypes.DynamicPseudoType
			}
			dvs[i] = dynamic(t, typ, a)
		}
		resp, err := server.CallFunction(t.Context(), &tfprotov6.CallFunctionRequest{Name: name, Arguments: dvs})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Error != nil {
			return "", resp.Error
		}
		v, err := resp.Result.Unmarshal(tftypes.String)
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := v.As(&s); err != nil {
			t.Fatal(err)
		}
		return s, nil
	}

	if got, ferr := call(t, "service_account_subject", str("payments"), str("api")); ferr != nil || got != "system:serviceaccount:payments:api" {
		t.Errorf("service_account_subject = %q, %v", got, ferr)
	}
	if _, ferr := call(t, "service_account_subject", str("Payments"), str("api")); ferr == nil || !strings.Contains(ferr.Text, "is not a ServiceAccount") {
		t.Errorf("an upper-case namespace: %v, want it refused", ferr)
	}

	grant := func(attrs map[string]tftypes.Value) tftypes.Value {
		types := map[string]tftypes.Type{}
		for k, v := range attrs {
			types[k] = v.Type()
		}
		return tftypes.NewValue(tftypes.Object{AttributeTypes: types}, attrs)
	}
	doc, ferr := call(t, "trust_policy", grant(map[string]tftypes.Value{
		"service_accounts": strList("payments/api"), "oidc_issuer": str(testIssuer), "account_id": str("123456789012"),
	}))
	if ferr != nil || !strings.Contains(doc, "arn:aws:iam::123456789012:oidc-provider/") || !strings.Contains(doc, "system:serviceaccount:payments:api") {
		t.Errorf("trust_policy = %s, %v", doc, ferr)
	}
	if _, ferr := call(t, "trust_policy", grant(map[string]tftypes.Value{
		"service_accounts": strList("payments/api"), "oidc_issuer": str(testIssuer), "account_id": str("12345"),
	})); ferr == nil || !strings.Contains(ferr.Text, "12-digit account ID") {
		t.Errorf("a short account ID: %v, want it refused", ferr)
	}
}
