package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
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
	strategy  kube.Strategy
	selector  string
	wait      bool
	onDestroy bool
}

// maxRaceRetries bounds how often a replacement pod that came up without
// credentials (the webhook's cache race) is recycled again.
const maxRaceRetries = 3

var strategyDescriptions = map[kube.Strategy]string{
	kube.StrategyRollout: "restart the owning Deployment, StatefulSet or DaemonSet as `kubectl rollout restart` does " +
		"(respecting maxSurge/maxUnavailable); pods of a ReplicaSet without a Deployment are deleted one at a time; " +
		"bare pods, Job pods and paused Deployments are left alone and named in a warning",
	kube.StrategyEvict: "evict each stale pod through the Eviction API, respecting PodDisruptionBudgets " +
		"(retried while a budget blocks it); bare pods are left alone",
	kube.StrategyDelete: "delete every stale pod, as the AWS guide does. **Destructive for bare pods**: nothing re-creates them",
	kube.StrategyNone:   "annotate only; plan and apply warn which pods stay without credentials",
}

func restartSchema() schema.SingleNestedAttribute {
	var names []string
	var desc strings.Builder
	for _, s := range kube.Strategies {
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
				Default:             stringdefault.StaticString(string(kube.StrategyRollout)),
				Validators:          []validator.String{stringvalidator.OneOf(names...)},
			},
			"pod_selector": schema.StringAttribute{
				MarkdownDescription: "Label selector (`app=api,tier!=batch`) narrowing the pods considered. Default: every pod that runs as the ServiceAccount.",
				Optional:            true,
				Validators:          []validator.String{labelSelectorValidator{}},
			},
			"wait": schema.BoolAttribute{
				MarkdownDescription: "Wait, within the resource's timeout, until recycled pods are replaced, Ready and carry the " +
					"credentials. A replacement that comes up without them (the webhook had not seen the annotation yet) is " +
					"recycled again, up to 3 times. Default `true`.",
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
	s := restartSettings{strategy: kube.StrategyRollout, wait: true}
	if m.Restart.IsNull() || m.Restart.IsUnknown() {
		return s, nil
	}
	var r restartModel
	diags := m.Restart.As(ctx, &r, basetypes.ObjectAsOptions{})
	if !r.Strategy.IsNull() {
		s.strategy = kube.Strategy(r.Strategy.ValueString())
	}
	s.selector = r.PodSelector.ValueString()
	if !r.Wait.IsNull() {
		s.wait = r.Wait.ValueBool()
	}
	s.onDestroy = r.OnDestroy.ValueBool()
	return s, diags
}

// expectation is what credentialed pods of this binding look like.
func (m serviceAccountBindingModel) expectation(annotatedAt time.Time) kube.Expectation {
	return kube.Expectation{RoleARN: m.RoleARN.ValueString(), Audience: m.Audience.ValueString(), AnnotatedAt: annotatedAt}
}

func stalePodsValue(stale []kube.StalePod) types.List {
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

// annotatedAt is when this provider last applied the ServiceAccount's
// annotations, from managedFields.
func annotatedAt(sa *corev1.ServiceAccount, manager string) time.Time {
	for _, mf := range sa.ManagedFields {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Time != nil {
			return mf.Time.Time
		}
	}
	return time.Time{}
}

// recycle runs the restart strategy after the annotations were applied and
// returns the pods still stale. Errors name what is not done and why; the
// caller still saves state, so the next plan shows the stale pods.
func (r *serviceAccountBindingResource) recycle(ctx context.Context, m serviceAccountBindingModel, e kube.Expectation) ([]kube.StalePod, diag.Diagnostics) {
	settings, diags := m.restart(ctx)
	if diags.HasError() {
		return nil, diags
	}
	ns, name := m.Namespace.ValueString(), m.ServiceAccount.ValueString()
	pods := kube.Pods{Client: r.data.kube, FieldManager: r.data.fieldManager}
	res, err := pods.Recycle(ctx, kube.RecycleOptions{
		Namespace: ns, ServiceAccount: name, Selector: settings.selector,
		Expectation: e, Strategy: settings.strategy, Wait: settings.wait, MaxRetries: maxRaceRetries,
		Logf: func(format string, args ...any) {
			tflog.Info(ctx, fmt.Sprintf(format, args...), map[string]any{"namespace": ns, "service_account": name})
		},
	})
	if len(res.Plan.LeftAlone) > 0 {
		diags.AddWarning("Pods Left Without Credentials",
			fmt.Sprintf("These pods of ServiceAccount %s/%s do not carry the role's credentials, and restart strategy %q leaves them alone:\n%s",
				ns, name, settings.strategy, leftAloneList(res.Plan.LeftAlone)))
	}
	if err != nil {
		diags.Append(recycleError(ns, name, settings.strategy, err))
	}
	return res.Remaining, diags
}

func leftAloneList(l []kube.LeftAlone) string {
	var b strings.Builder
	for _, p := range l {
		fmt.Fprintf(&b, "  - %s: %s\n", p.Pod, p.Reason)
	}
	return b.String()
}

func recycleError(ns, name string, strategy kube.Strategy, err error) diag.Diagnostic {
	var notDone *kube.NotDoneError
	switch {
	case errors.Is(err, kube.ErrEvictionBlocked):
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Eviction Blocked",
			fmt.Sprintf("ServiceAccount %s/%s is annotated, but evicting its stale pods kept failing until the timeout. "+
				"Loosen the budget, raise the timeout, or use restart.strategy = \"rollout\". The next plan lists the "+
				"pods in stale_pods, and apply tries again.\n\nError: %s", ns, name, err))
	case errors.As(err, &notDone):
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Not Done Before the Timeout",
			fmt.Sprintf("ServiceAccount %s/%s is annotated, but with restart strategy %q these were not done:\n  - %s\n\n"+
				"The next plan lists the remaining pods in stale_pods, and apply recycles them again. If pods keep coming "+
				"up without credentials, check that the pod identity webhook is running.\n\nError: %s",
				ns, name, strategy, strings.Join(notDone.Pending, "\n  - "), notDone.Err))
	default:
		return diag.NewErrorDiagnostic("Unable to Recycle Pods",
			fmt.Sprintf("ServiceAccount %s/%s is annotated, but recycling its pods failed. The next plan lists them in "+
				"stale_pods, and apply tries again.\n\nError: %s", ns, name, err))
	}
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
