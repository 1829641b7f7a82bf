package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Every setting of the provider's kubernetes and aws blocks, read from the
// schema itself, is unknown in turn (and, for collections, an element of
// it): Configure must see each one as unknown and defer the cluster checks.
// A setting added to the schema is covered without touching this test.
func TestValueHasUnknown_everySettingOfTheBlocks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var resp provider.SchemaResponse
	New("test", "test")().Schema(ctx, provider.SchemaRequest{}, &resp)
	for _, block := range []string{"kubernetes", "aws"} {
		a, ok := resp.Schema.Attributes[block]
		if !ok {
			t.Fatalf("the provider schema has no %q block", block)
		}
		typ := a.GetType()
		tfType := typ.TerraformType(ctx)
		obj, ok := tfType.(tftypes.Object)
		if !ok {
			t.Fatalf("%s: %T, want an object", block, tfType)
		}

		known := []struct {
			name string
			val  tftypes.Value
		}{
			{"null", tftypes.NewValue(obj, nil)},
			{"every setting null", nullObject(obj)},
		}
		for _, k := range known {
			if valueHasUnknown(ctx, toAttr(t, ctx, typ, k.val)) {
				t.Errorf("%s, %s: reported unknown", block, k.name)
			}
		}

		cases := unknownVariants(block, obj)
		cases = append(cases, variant{block + " (the whole block)", tftypes.NewValue(obj, tftypes.UnknownValue)})
		if len(cases) < len(obj.AttributeTypes)+1 {
			t.Fatalf("%s: %d cases for %d settings", block, len(cases), len(obj.AttributeTypes))
		}
		for _, c := range cases {
			if !valueHasUnknown(ctx, toAttr(t, ctx, typ, c.val)) {
				t.Errorf("%s unknown: not detected", c.name)
			}
		}
	}
}

type variant struct {
	name string
	val  tftypes.Value
}

// unknownVariants returns one value of obj per setting at any depth with
// that setting unknown and every other one null; a collection is also
// tried with one unknown element.
func unknownVariants(prefix string, obj tftypes.Object) []variant {
	var out []variant
	for name, at := range obj.AttributeTypes {
		path := prefix + "." + name
		with := func(v tftypes.Value) tftypes.Value {
			vals := nullAttributes(obj)
			vals[name] = v
			return tftypes.NewValue(obj, vals)
		}
		out = append(out, variant{path, with(tftypes.NewValue(at, tftypes.UnknownValue))})
		switch ct := at.(type) {
		case tftypes.Object:
			for _, inner := range unknownVariants(path, ct) {
				out = append(out, variant{inner.name, with(inner.val)})
			}
		case tftypes.List:
			out = append(out, variant{path + "[0]", with(tftypes.NewValue(ct, []tftypes.Value{tftypes.NewValue(ct.ElementType, tftypes.UnknownValue)}))})
		case tftypes.Set:
			out = append(out, variant{path + "[*]", with(tftypes.NewValue(ct, []tftypes.Value{tftypes.NewValue(ct.ElementType, tftypes.UnknownValue)}))})
		case tftypes.Map:
			out = append(out, variant{path + "[\"k\"]", with(tftypes.NewValue(ct, map[string]tftypes.Value{"k": tftypes.NewValue(ct.ElementType, tftypes.UnknownValue)}))})
		}
	}
	return out
}

func nullAttributes(obj tftypes.Object) map[string]tftypes.Value {
	vals := make(map[string]tftypes.Value, len(obj.AttributeTypes))
	for name, at := range obj.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
	}
	return vals
}

func nullObject(obj tftypes.Object) tftypes.Value {
	return tftypes.NewValue(obj, nullAttributes(obj))
}

func toAttr(t *testing.T, ctx context.Context, typ attr.Type, v tftypes.Value) attr.Value {
	t.Helper()
	av, err := typ.ValueFromTerraform(ctx, v)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", v, err))
	}
	return av
}
