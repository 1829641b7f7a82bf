package provider

import (
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// A Read that finds nothing changed keeps the prior state without setting
// it again, so sameModel must see a change in any one attribute, whichever
// it is: a change it missed would never reach state.
func TestSameModel_seesAChangeInEveryAttribute(t *testing.T) {
	var prior serviceAccountBindingModel
	typ := reflect.TypeFor[serviceAccountBindingModel]()
	for i := range typ.NumField() {
		reflect.ValueOf(&prior).Elem().Field(i).Set(reflect.ValueOf(valueOf(t, typ.Field(i).Type, false)))
	}
	if !sameModel(prior, prior) {
		t.Fatal("a model of nulls differs from itself")
	}
	for i := range typ.NumField() {
		field := typ.Field(i)
		t.Run(field.Name, func(t *testing.T) {
			changed := prior
			reflect.ValueOf(&changed).Elem().Field(i).Set(reflect.ValueOf(valueOf(t, field.Type, true)))
			if sameModel(prior, changed) {
				t.Errorf("%s changed from null to unknown, and sameModel says nothing changed", field.Name)
			}
		})
	}
}

func TestSameModel_equalValuesAreTheSame(t *testing.T) {
	a := serviceAccountBindingModel{
		Namespace: types.StringValue("apps"),
		StalePods: stalePodsValue(nil),
		Restart:   types.ObjectNull(map[string]attr.Type{"strategy": types.StringType}),
	}
	b := a
	b.Namespace = types.StringValue("ap" + "ps") // another string, equal
	if !sameModel(a, b) {
		t.Error("models of equal values differ")
	}
}

// valueOf is a null, or an unknown, value of one of the model's attribute
// types.
func valueOf(t *testing.T, typ reflect.Type, unknown bool) attr.Value {
	pick := func(null, unknownValue attr.Value) attr.Value {
		if unknown {
			return unknownValue
		}
		return null
	}
	none := map[string]attr.Type{}
	switch typ {
	case reflect.TypeFor[types.String]():
		return pick(types.StringNull(), types.StringUnknown())
	case reflect.TypeFor[types.Bool]():
		return pick(types.BoolNull(), types.BoolUnknown())
	case reflect.TypeFor[types.Int64]():
		return pick(types.Int64Null(), types.Int64Unknown())
	case reflect.TypeFor[types.List]():
		return pick(types.ListNull(types.StringType), types.ListUnknown(types.StringType))
	case reflect.TypeFor[types.Object]():
		return pick(types.ObjectNull(none), types.ObjectUnknown(none))
	case reflect.TypeFor[timeouts.Value]():
		return pick(timeouts.Value{Object: types.ObjectNull(none)}, timeouts.Value{Object: types.ObjectUnknown(none)})
	}
	t.Fatalf("no value for %s: add the model's new attribute type here", typ)
	return nil
}
