package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// restartModel is the restart block; null means every default.
type restartModel struct {
	Strategy    types.String `tfsdk:"strategy"`
	PodSelector types.String `tfsdk:"pod_selector"`
	Wait        types.Bool   `tfsdk:"wait"`
	OnDestroy   types.Bool   `tfsdk:"on_destroy"`
}

// restartSettings are the effective restart settings.
type restartSettings struct {
	binding.Restart
	OnDestroy bool
}

// bindingSpec is what apply and destroy do, from a plan or state.
type bindingSpec struct {
	binding.Spec
	OnDestroy bool
}

var strategyDescriptions = map[recycle.Strategy]string{
	recycle.StrategyRollout: "restart each Deployment, StatefulSet and DaemonSet whose pods are all stale, as " +
		"`kubectl rollout restart` does (respecting maxSurge/maxUnavailable), and wait as `kubectl rollout status` does " +
		"(a Deployment past its progress deadline fails at once). Where a restart would touch pods that need none (a " +
		"workload with some credentialed pods, or more pods than `pod_selector` shows), where the controller would not " +
		"replace them (`OnDelete` StatefulSets and DaemonSets), and for ReplicaSets without a Deployment, the stale pods " +
		"are deleted one at a time instead (a StatefulSet's from the highest ordinal down), each replacement Ready and " +
		"credentialed before the next goes. Bare pods, Job pods, pods of paused Deployments, pods below a StatefulSet's " +
		"`partition`, and pods of controllers the provider does not know are left alone and named in a warning",
	recycle.StrategyEvict: "evict each stale pod of a controller through the Eviction API, respecting PodDisruptionBudgets " +
		"(retried while a budget blocks it, as `kubectl drain` does); bare pods are left alone",
	recycle.StrategyDelete: "delete every stale pod at once, as the AWS guide does. **Destructive for bare pods and Job pods**: " +
		"nothing re-creates a bare pod",
	recycle.StrategyNone: "annotate only; plan and apply warn which pods stay without credentials",
}

func restartSchema() schema.SingleNestedAttribute {
	var names []string
	var desc strings.Builder
	for _, s := range recycle.Strategies {
		names = append(names, string(s))
		fmt.Fprintf(&desc, "\n  - `%s`: %s.", s, strategyDescriptions[s])
	}
	return schema.SingleNestedAttribute{
		MarkdownDescription: "How pods of the ServiceAccount are recycled so the pod identity webhook injects the " +
			"credentials: it only mutates pods when they are created. Omitted, every default applies.",
		Optional: true,
		Attributes: map[string]schema.Attribute{
			"strategy": schema.StringAttribute{
				MarkdownDescription: "How stale pods are replaced. Default `rollout`." + desc.String(),
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(string(recycle.StrategyRollout)),
				Validators:          []validator.String{stringvalidator.OneOf(names...)},
			},
			"pod_selector": schema.StringAttribute{
				MarkdownDescription: "Label selector (`app=api,tier!=batch`) narrowing the pods considered. Default: every pod that runs as the ServiceAccount.",
				Optional:            true,
				Validators:          []validator.String{labelSelectorValidator{}},
			},
			"wait": schema.BoolAttribute{
				MarkdownDescription: "Wait, within the resource's timeout, until what was restarted or replaced is Ready and " +
					"carries the credentials; pods the recycle did not touch never hold it up. A replacement that comes up " +
					"without the credentials anyway goes through the strategy again, up to 3 times. With `false`, apply " +
					"returns once the last restart or replacement is requested (replacing pods one at a time still waits " +
					"between them). Default `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Also recycle pods after destroy removed the annotation, so they stop using the role. Default `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
		},
	}
}

var stalePodAttrTypes = map[string]attr.Type{"name": types.StringType, "reason": types.StringType}

func stalePodsSchema() schema.ListNestedAttribute {
	return schema.ListNestedAttribute{
		MarkdownDescription: "Pods of the ServiceAccount that do not carry the role's credentials, and why (created before " +
			"the annotation, another role, a container presetting the variables, not mutated by the webhook, ...). " +
			"When a pod here can be fixed by the restart strategy, the plan shows a change and apply recycles it.",
		Computed: true,
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"name":   schema.StringAttribute{MarkdownDescription: "Pod name.", Computed: true},
			"reason": schema.StringAttribute{MarkdownDescription: "Why it is stale.", Computed: true},
		}},
	}
}

func (m serviceAccountBindingModel) restart(ctx context.Context) (restartSettings, diag.Diagnostics) {
	s := restartSettings{Restart: binding.Restart{Strategy: recycle.StrategyRollout, Wait: true}}
	if m.Restart.IsNull() || m.Restart.IsUnknown() {
		return s, nil
	}
	var r restartModel
	diags := m.Restart.As(ctx, &r, basetypes.ObjectAsOptions{})
	if !r.Strategy.IsNull() {
		s.Strategy = recycle.Strategy(r.Strategy.ValueString())
	}
	s.Selector = r.PodSelector.ValueString()
	if !r.Wait.IsNull() {
		s.Wait = r.Wait.ValueBool()
	}
	s.OnDestroy = r.OnDestroy.ValueBool()
	return s, diags
}

// spec is what applying (or destroying) the model does to the cluster.
func (m serviceAccountBindingModel) spec(ctx context.Context) (bindingSpec, diag.Diagnostics) {
	settings, diags := m.restart(ctx)
	podIdentity, d := m.podIdentity(ctx)
	diags.Append(d...)
	return bindingSpec{
		Spec: binding.Spec{
			Namespace: m.Namespace.ValueString(), ServiceAccount: m.ServiceAccount.ValueString(),
			Binding: m.binding(), ForceConflicts: m.ForceConflicts.ValueBool(),
			CreateServiceAccount: m.CreateServiceAccount.ValueBool(), Restart: settings.Restart,
			Mechanism: m.mechanism(), PodIdentity: podIdentity,
		},
		OnDestroy: settings.OnDestroy,
	}, diags
}

func stalePodsValue(stale []recycle.StalePod) types.List {
	elemType := types.ObjectType{AttrTypes: stalePodAttrTypes}
	elems := make([]attr.Value, 0, len(stale))
	for _, s := range stale {
		elems = append(elems, types.ObjectValueMust(stalePodAttrTypes, map[string]attr.Value{
			"name": types.StringValue(s.Pod.Name), "reason": types.StringValue(s.Reason),
		}))
	}
	return types.ListValueMust(elemType, elems)
}

func unknownStalePods() types.List {
	return types.ListUnknown(types.ObjectType{AttrTypes: stalePodAttrTypes})
}

func leftAloneList(l []recycle.LeftAlone) string {
	var b strings.Builder
	for _, p := range l {
		fmt.Fprintf(&b, "  - %s: %s\n", p.Pod, p.Reason)
	}
	return b.String()
}

// labelSelectorValidator checks restart.pod_selector with the same parser
// the API server uses.
type labelSelectorValidator struct{}

func (labelSelectorValidator) Description(context.Context) string {
	return "must be a Kubernetes label selector such as app=api,tier!=batch"
}

func (v labelSelectorValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (labelSelectorValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := kube.ParseSelector(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Label Selector",
			fmt.Sprintf("%q is not a label selector (for example app=api or app in (api,worker)): %s", req.ConfigValue.ValueString(), err))
	}
}
