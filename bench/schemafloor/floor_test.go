package main

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/provider"
)

// The floor is a floor for this provider only if Terraform sees the same
// schemas: the same attributes, types, plan modifiers' effects and
// validators' costs.
func TestFloor_servesTheProvidersSchemas(t *testing.T) {
	ctx := context.Background()
	schemas := func(s tfprotov6.ProviderServer) *tfprotov6.GetProviderSchemaResponse {
		resp, err := s.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	irsa := schemas(providerserver.NewProtocol6(provider.New("test", "none")())())
	floor := schemas(providerserver.NewProtocol6(newFloor(provider.New("test", "none")()))())
	if len(irsa.ResourceSchemas) == 0 {
		t.Fatal("the provider has no resources")
	}
	if diff := cmp.Diff(irsa.Provider, floor.Provider); diff != "" {
		t.Errorf("provider schema differs (-provider +floor):\n%s", diff)
	}
	if diff := cmp.Diff(irsa.ResourceSchemas, floor.ResourceSchemas); diff != "" {
		t.Errorf("resource schemas differ (-provider +floor):\n%s", diff)
	}
}

func TestKnown_makesUnknownsNull(t *testing.T) {
	typ := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"namespace": tftypes.String,
		"id":        tftypes.String,
		"pods":      tftypes.List{ElementType: tftypes.String},
	}}
	in := tftypes.NewValue(typ, map[string]tftypes.Value{
		"namespace": tftypes.NewValue(tftypes.String, "apps"),
		"id":        tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
		"pods":      tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, tftypes.UnknownValue),
	})
	want := tftypes.NewValue(typ, map[string]tftypes.Value{
		"namespace": tftypes.NewValue(tftypes.String, "apps"),
		"id":        tftypes.NewValue(tftypes.String, nil),
		"pods":      tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, nil),
	})
	if got := known(in); !got.Equal(want) {
		t.Errorf("known(%s) = %s, want %s", in, got, want)
	}
}
