package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestParseImportID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id       string
		ns, name string
		wantErr  string
	}{
		{id: "payments/api", ns: "payments", name: "api"},
		{id: "payments/api.v2", ns: "payments", name: "api.v2"},
		{id: "a/b", ns: "a", name: "b"},
		{id: strings.Repeat("n", 63) + "/" + strings.Repeat("s", 253), ns: strings.Repeat("n", 63), name: strings.Repeat("s", 253)},
		{id: "payments", wantErr: "no '/'"},
		{id: "", wantErr: "no '/'"},
		{id: "/api", wantErr: `namespace ""`},
		{id: "payments/", wantErr: `ServiceAccount name ""`},
		{id: "Payments/api", wantErr: `namespace "Payments"`},
		{id: "pay.ments/api", wantErr: `namespace "pay.ments"`},
		{id: strings.Repeat("n", 64) + "/api", wantErr: "no more than 63"},
		{id: "payments/" + strings.Repeat("s", 254), wantErr: "no more than 253"},
		{id: "payments/api/v2", wantErr: `ServiceAccount name "api/v2"`},
		{id: "payments/API", wantErr: `ServiceAccount name "API"`},
		{id: " payments/api", wantErr: `namespace " payments"`},
	}
	for _, tt := range tests {
		ns, name, err := parseImportID(tt.id)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parseImportID(%q): %v", tt.id, err)
		case tt.wantErr == "" && (ns != tt.ns || name != tt.name):
			t.Errorf("parseImportID(%q) = %q, %q, want %q, %q", tt.id, ns, name, tt.ns, tt.name)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseImportID(%q) error = %v, want one containing %q", tt.id, err, tt.wantErr)
		}
	}
}

// schemaAccepts runs the resource schema's own validators of a string
// attribute on v.
func schemaAccepts(t *testing.T, s schema.Schema, attr, v string) bool {
	t.Helper()
	a, ok := s.Attributes[attr].(schema.StringAttribute)
	if !ok {
		t.Fatalf("%s is not a string attribute", attr)
	}
	for _, val := range a.Validators {
		var resp validator.StringResponse
		val.ValidateString(context.Background(), validator.StringRequest{Path: path.Root(attr), ConfigValue: types.StringValue(v)}, &resp)
		if resp.Diagnostics.HasError() {
			return false
		}
	}
	return true
}

// An import ID is accepted exactly when its two halves are names the
// resource's schema accepts, so an imported binding never fails the next
// plan's validation, and its ID is the namespace and name it was split into.
func FuzzParseImportID(f *testing.F) {
	for _, id := range []string{
		"payments/api", "payments/api.v2", "payments", "/", "a/b/c", "Payments/api",
		strings.Repeat("n", 64) + "/api", "payments/" + strings.Repeat("s", 254), "ns/-api", "ns/api.",
		"ns/a..b", "é/api", "ns/api\n",
	} {
		f.Add(id)
	}
	var resp resource.SchemaResponse
	NewServiceAccountBindingResource().Schema(context.Background(), resource.SchemaRequest{}, &resp)
	s := resp.Schema
	f.Fuzz(func(t *testing.T, id string) {
		ns, name, err := parseImportID(id)
		wantNS, wantName, found := strings.Cut(id, "/")
		schemaOK := found && schemaAccepts(t, s, "namespace", wantNS) && schemaAccepts(t, s, "service_account", wantName)
		if (err == nil) != schemaOK {
			t.Fatalf("parseImportID(%q) error = %v, but the schema accepts the names: %v", id, err, schemaOK)
		}
		if err == nil && ns+"/"+name != id {
			t.Fatalf("parseImportID(%q) = %q, %q", id, ns, name)
		}
	})
}
