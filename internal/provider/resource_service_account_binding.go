package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

var (
	_ resource.Resource                = (*serviceAccountBindingResource)(nil)
	_ resource.ResourceWithConfigure   = (*serviceAccountBindingResource)(nil)
	_ resource.ResourceWithImportState = (*serviceAccountBindingResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*serviceAccountBindingResource)(nil)
)

const (
	defaultCreateTimeout = 10 * time.Minute
	defaultUpdateTimeout = 10 * time.Minute
	defaultDeleteTimeout = 5 * time.Minute

	// importingKey marks, in private state, a binding whose first Read is
	// an import's.
	importingKey = "importing"
)

// NewServiceAccountBindingResource is the irsa_service_account_binding resource.
func NewServiceAccountBindingResource() resource.Resource {
	return &serviceAccountBindingResource{}
}

type serviceAccountBindingResource struct {
	data *providerData
}

func (r *serviceAccountBindingResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account_binding"
}

func (r *serviceAccountBindingResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData == nil {
		return
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.Append(unexpectedConfigureType(req.ProviderData))
		return
	}
	r.data = data
}

func (r *serviceAccountBindingResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	sas, diags := r.data.serviceAccounts()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	object := "ServiceAccount " + ns + "/" + name
	_, err := sas.Get(ctx, ns, name)
	created := false
	switch {
	case apierrors.IsNotFound(err) && plan.CreateServiceAccount.ValueBool():
		created = true
	case apierrors.IsNotFound(err):
		resp.Diagnostics.Append(serviceAccountNotFound(ns, name, r.data.kubeHost))
		return
	case err != nil:
		resp.Diagnostics.Append(kubeAPIError(ctx, "Read Service Account", object, r.data.kubeHost, err))
		return
	}

	tflog.Info(ctx, "annotating ServiceAccount", map[string]any{"namespace": ns, "name": name, "role_arn": plan.RoleARN.ValueString(), "create": created})
	if _, err := sas.Apply(ctx, ns, name, plan.binding().Annotations(), plan.ForceConflicts.ValueBool(), false); err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Annotate Service Account", object, r.data.kubeHost, err))
		return
	}

	plan.ID = types.StringValue(ns + "/" + name)
	plan.ServiceAccountCreated = types.BoolValue(created)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountBindingResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceAccountBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	sas, diags := r.data.serviceAccounts()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	sa, err := sas.Get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		tflog.Warn(ctx, "ServiceAccount is gone; removing the binding from state", map[string]any{"namespace": ns, "name": name})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Read Service Account", "ServiceAccount "+ns+"/"+name, r.data.kubeHost, err))
		return
	}

	// An imported binding adopts every annotation present, once.
	marker, diags := req.Private.GetKey(ctx, importingKey)
	resp.Diagnostics.Append(diags...)
	importing := len(marker) > 0
	if importing {
		if sa.Annotations[kube.RoleARNAnnotation] == "" {
			resp.Diagnostics.Append(nothingToImport(ns, name))
			return
		}
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, importingKey, nil)...)
	}
	refreshFromServiceAccount(&state, sa, importing)
	state.ID = types.StringValue(ns + "/" + name)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// refreshFromServiceAccount copies the annotations' real values into state,
// so a changed or removed annotation is a diff in the next plan. Optional
// annotations this binding does not manage (null in state) are left null,
// unless importing: another tool's audience annotation is not drift of ours.
func refreshFromServiceAccount(state *serviceAccountBindingModel, sa *corev1.ServiceAccount, importing bool) {
	value := func(key string) (string, bool) {
		v, ok := sa.Annotations[key]
		return v, ok
	}
	if v, ok := value(kube.RoleARNAnnotation); ok {
		state.RoleARN = types.StringValue(v)
	} else {
		state.RoleARN = types.StringNull()
	}
	if importing || !state.Audience.IsNull() {
		if v, ok := value(kube.AudienceAnnotation); ok {
			state.Audience = types.StringValue(v)
		} else {
			state.Audience = types.StringNull()
		}
	}
	if importing || !state.STSRegionalEndpoints.IsNull() {
		state.STSRegionalEndpoints = types.BoolNull()
		if v, ok := value(kube.STSRegionalEndpointsAnnotation); ok {
			if b, err := strconv.ParseBool(v); err == nil {
				state.STSRegionalEndpoints = types.BoolValue(b)
			}
		}
	}
	if importing || !state.TokenExpiration.IsNull() {
		state.TokenExpiration = types.Int64Null()
		if v, ok := value(kube.TokenExpirationAnnotation); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				state.TokenExpiration = types.Int64Value(n)
			}
		}
	}
}

func (r *serviceAccountBindingResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	sas, diags := r.data.serviceAccounts()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	tflog.Info(ctx, "updating ServiceAccount annotations", map[string]any{"namespace": ns, "name": name, "role_arn": plan.RoleARN.ValueString()})
	if _, err := sas.Apply(ctx, ns, name, plan.binding().Annotations(), plan.ForceConflicts.ValueBool(), false); err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Annotate Service Account", "ServiceAccount "+ns+"/"+name, r.data.kubeHost, err))
		return
	}
	plan.ID = types.StringValue(ns + "/" + name)
	plan.ServiceAccountCreated = state.ServiceAccountCreated
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountBindingResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serviceAccountBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	sas, diags := r.data.serviceAccounts()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	object := "ServiceAccount " + ns + "/" + name
	if state.ServiceAccountCreated.ValueBool() {
		tflog.Info(ctx, "deleting the ServiceAccount this binding created", map[string]any{"namespace": ns, "name": name})
		if err := sas.Delete(ctx, ns, name); err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "Delete Service Account", object, r.data.kubeHost, err))
		}
		return
	}
	sa, err := sas.Release(ctx, ns, name)
	if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Remove Service Account Annotations", object, r.data.kubeHost, err))
		return
	}
	if sa == nil {
		return // already gone
	}
	if v, ok := sa.Annotations[kube.RoleARNAnnotation]; ok {
		owners := kube.AnnotationOwners(sa, r.data.fieldManager)[kube.RoleARNAnnotation]
		who := "no field manager (it was set without managed fields)"
		if len(owners) > 0 {
			who = strings.Join(quote(owners), ", ")
		}
		resp.Diagnostics.AddWarning("Role Annotation Still Set by Another Manager",
			fmt.Sprintf("The binding released its annotations on %s, but %s is still %q, managed by %s, so pods of "+
				"the ServiceAccount keep getting that role. Remove it with the tool that set it if that is not intended.",
				object, kube.RoleARNAnnotation, v, who))
	}
}

func (r *serviceAccountBindingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	ns, name, ok := strings.Cut(req.ID, "/")
	if !ok || !dns1123Label.MatchString(ns) || !dns1123Subdomain.MatchString(name) {
		resp.Diagnostics.Append(invalidImportID(req.ID))
		return
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, importingKey, []byte(`true`))...)
	for attr, v := range map[string]any{
		"id": req.ID, "namespace": ns, "service_account": name,
		"create_service_account": false, "service_account_created": false, "force_conflicts": false,
	} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), v)...)
	}
}

// ModifyPlan checks the cluster during plan, so that the mistakes a plan can
// see fail there rather than half way through an apply: a missing
// ServiceAccount, and annotations another manager owns.
func (r *serviceAccountBindingResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil || r.data.kubeUnknown {
		return // destroy, no provider data (validate), or a cluster that does not exist yet
	}
	var plan serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Namespace.IsUnknown() || plan.ServiceAccount.IsUnknown() || plan.RoleARN.IsUnknown() ||
		plan.Audience.IsUnknown() || plan.STSRegionalEndpoints.IsUnknown() || plan.TokenExpiration.IsUnknown() ||
		plan.CreateServiceAccount.IsUnknown() || plan.ForceConflicts.IsUnknown() {
		return
	}
	var state *serviceAccountBindingModel
	if !req.State.Raw.IsNull() {
		state = &serviceAccountBindingModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	desired := plan.binding().Annotations()
	if state != nil && maps.Equal(state.binding().Annotations(), desired) && plan.ForceConflicts.Equal(state.ForceConflicts) {
		return // nothing for the cluster to change
	}
	sas, diags := r.data.serviceAccounts()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	object := "ServiceAccount " + ns + "/" + name
	if _, err := sas.Get(ctx, ns, name); apierrors.IsNotFound(err) {
		if !plan.CreateServiceAccount.ValueBool() {
			resp.Diagnostics.Append(serviceAccountNotFound(ns, name, r.data.kubeHost))
		}
		return
	} else if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Read Service Account", object, r.data.kubeHost, err))
		return
	}
	if plan.ForceConflicts.ValueBool() {
		return
	}
	// A dry-run apply finds conflicts with other field managers now,
	// changing nothing. A conflict is a warning here, not an error: the
	// plan must still show the drift (exit code 2 for drift detection);
	// the apply is what fails.
	_, err := sas.Apply(ctx, ns, name, desired, false, true)
	var ce *kube.ConflictError
	switch {
	case errors.As(err, &ce):
		d := annotationConflict(ce)
		resp.Diagnostics.AddWarning(d.Summary(), "Apply will fail unless this is resolved. "+d.Detail())
	case err != nil:
		resp.Diagnostics.Append(kubeAPIError(ctx, "Plan Service Account Annotations", object, r.data.kubeHost, err))
	}
}
