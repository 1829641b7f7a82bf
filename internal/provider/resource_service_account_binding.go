package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
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
	var diags diag.Diagnostics
	r.data, diags = providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
}

func (r *serviceAccountBindingResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var plan serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp.Diagnostics.Append(r.apply(ctx, conn, plan, nil, &resp.State, resp.Private)...)
}

// apply annotates, gates, recycles and saves state: the body of Create
// (prior nil) and Update. Once the annotation is in place, state is saved
// whatever recycling does. A create whose recycling did not finish ends
// with a warning, not an error: Terraform would taint the binding on an
// error and the next plan would replace it (remove the annotation, and
// delete a ServiceAccount the binding created). stale_pods carries what is
// left, so the next plan is an in-place update that recycles it.
func (r *serviceAccountBindingResource) apply(ctx context.Context, conn kube.Conn, plan serviceAccountBindingModel, prior *serviceAccountBindingModel, state *tfsdk.State, private privateState) diag.Diagnostics {
	spec, diags := plan.spec(ctx)
	if diags.HasError() {
		return diags
	}
	ns, name := spec.Namespace, spec.ServiceAccount
	object := "ServiceAccount " + ns + "/" + name
	own, d := loadOwnership(ctx, private, prior != nil && prior.ServiceAccountCreated.ValueBool())
	diags.Append(d...)
	if prior != nil {
		own.AssociationID = prior.AssociationID.ValueString()
	}
	if prior != nil {
		// Update never re-creates a ServiceAccount deleted meanwhile.
		spec.CreateServiceAccount = false
		// An imported binding (own.Adopt) takes over the annotations it
		// imported.
		for k := range prior.binding().Annotations() {
			spec.AdoptKeys = append(spec.AdoptKeys, k)
		}
	} else {
		// Only an update of an imported binding adopts.
		own.Adopt = false
	}
	binder, d := r.binder(ctx, conn, spec.Spec, own)
	if diags.Append(d...); diags.HasError() {
		return diags
	}
	binder.Lookup = r.data.reads.ServiceAccount
	out, err := binder.Apply(ctx, spec.Spec, own)
	// Whatever happened, this process's picture of the ServiceAccount and
	// its pods is out of date.
	r.data.reads.Forget(ns, name)
	diags.Append(saveOwnership(ctx, private, out.Ownership)...)
	var notFound *binding.NotFoundError
	var held *binding.HeldError
	var associationHeldErr *binding.AssociationHeldError
	var eksErr *binding.EKSError
	var migrationErr *binding.MigrationError
	switch {
	case errors.As(err, &notFound) && notFound.NamespaceMissing:
		return append(diags, namespaceNotFound(ns, name, r.data.kubeHost))
	case errors.As(err, &notFound):
		return append(diags, serviceAccountNotFound(ns, name, r.data.kubeHost))
	case errors.As(err, &held):
		return append(diags, serviceAccountHeld(held, spec.Binding.Annotations()))
	case errors.As(err, &associationHeldErr):
		return append(diags, associationHeld(associationHeldErr))
	case errors.As(err, &eksErr):
		return append(diags, eksAPIError("Change Pod Identity Association", eksErr))
	case errors.As(err, &migrationErr) && !out.Annotated:
		return append(diags, eksAPIError("Migrate Between Mechanisms", migrationErr))
	case !out.Annotated:
		return append(diags, kubeAPIError(ctx, "Annotate Service Account", object, r.data.kubeHost, err))
	}

	plan.ServiceAccountCreated = types.BoolValue(out.Ownership.Created)
	plan.ID = types.StringValue(ns + "/" + name)
	plan.OIDCIssuer = r.issuerValue(ctx)
	plan.StalePods = stalePodsValue(out.Stale)
	plan.AssociationID, plan.AssociationARN = types.StringNull(), types.StringNull()
	if out.Association != nil {
		plan.AssociationID, plan.AssociationARN = types.StringValue(out.Association.ID), types.StringValue(out.Association.ARN)
	}
	diags.Append(state.Set(ctx, &plan)...)

	if len(out.Recycle.Plan.LeftAlone) > 0 {
		diags.Append(podsLeftAlone(object, spec.Binding.RoleARN, spec.Restart.Strategy, out.Recycle.Plan.LeftAlone))
	}
	if out.Recycle.GateSkipped != nil {
		diags.Append(gateSkipped(object, out.Recycle.GateSkipped))
	}
	if errors.As(err, &migrationErr) {
		diags.Append(migrationStepFailed(object, migrationErr))
	} else if err != nil {
		d := recycleError(ns, name, spec.Restart.Strategy, err)
		if prior == nil {
			d = createdDespite(d)
		}
		diags.Append(d)
	}
	return diags
}

func (r *serviceAccountBindingResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var state serviceAccountBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if r.data.kubeUnknown {
		// The cluster's connection depends on something not applied yet:
		// keep what state says until apply can look.
		return
	}
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.checkCluster(ctx, state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	if r.readsPodIdentity(ctx, req, resp, state) {
		return
	}
	prior := state
	// Bindings of a namespace share one look at it (see kube.Snapshot).
	sa, err := r.data.reads.ServiceAccount(ctx, ns, name)
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
	own, diags := loadOwnership(ctx, req.Private, state.ServiceAccountCreated.ValueBool())
	resp.Diagnostics.Append(diags...)
	importing := own.Importing
	if importing {
		if sa.Annotations[irsa.RoleARNAnnotation] == "" {
			resp.Diagnostics.Append(nothingToImport(ns, name))
			return
		}
		// Import adopts: the first apply (or the destroy) takes the
		// annotations over from the tools that set them. Nothing is
		// written now: import blocks read during plan.
		own.Importing, own.Adopt = false, true
		resp.Diagnostics.Append(saveOwnership(ctx, resp.Private, own)...)
	}
	// Pods are judged against the role the binding wants, before the
	// refresh replaces it with what the annotation says now.
	desired := state
	refreshFromServiceAccount(&state, sa, importing)
	if importing {
		desired = state
	}
	// With the role annotation gone, state no longer says which role pods
	// should have: stale_pods keeps its last value until apply sets it again.
	if !desired.RoleARN.IsNull() {
		settings, diags := state.restart(ctx)
		resp.Diagnostics.Append(diags...)
		pods, err := r.data.reads.Pods(ctx, ns, name, settings.Selector)
		if err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "List Pods of Service Account", "ServiceAccount "+ns+"/"+name, r.data.kubeHost, err))
			return
		}
		spec, diags := desired.spec(ctx)
		resp.Diagnostics.Append(diags...)
		binder := binding.Binder{Conn: conn, Lookup: r.data.reads.ServiceAccount}
		creds, err := binder.Credentials(ctx, spec.Spec, own)
		if err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "Read Service Account", "ServiceAccount "+ns+"/"+name, r.data.kubeHost, err))
			return
		}
		state.StalePods = stalePodsValue(recycle.Stale(pods, creds))
	}
	state.ID = types.StringValue(ns + "/" + name)
	state.OIDCIssuer = r.issuerValue(ctx)
	// State from before mechanisms: IRSA, without a diff.
	state.Mechanism = types.StringValue(string(binding.MechanismIRSA))
	if !sameModel(prior, state) {
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	}
}

// checkCluster stops when the provider is connected to another cluster than
// the one state records (by OIDC issuer). An issuer that cannot be
// discovered, or none recorded, checks nothing: the trust check warns
// about the former.
func (r *serviceAccountBindingResource) checkCluster(ctx context.Context, state serviceAccountBindingModel) diag.Diagnostics {
	var diags diag.Diagnostics
	recorded := state.OIDCIssuer.ValueString()
	if recorded == "" || r.data.kubeUnknown {
		return diags
	}
	connected, err := r.data.issuer(ctx)
	if err != nil || connected == recorded {
		return diags
	}
	diags.Append(otherCluster(state.Namespace.ValueString(), state.ServiceAccount.ValueString(), recorded, connected, r.data.kubeHost))
	return diags
}

// issuerValue is the cluster's issuer for state; null when it cannot be
// discovered (the trust check says so in a warning).
func (r *serviceAccountBindingResource) issuerValue(ctx context.Context) types.String {
	issuer, err := r.data.issuer(ctx)
	if err != nil {
		return types.StringNull()
	}
	return types.StringValue(issuer)
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
	if v, ok := value(irsa.RoleARNAnnotation); ok {
		state.RoleARN = types.StringValue(v)
	} else {
		state.RoleARN = types.StringNull()
	}
	if importing || !state.Audience.IsNull() {
		if v, ok := value(irsa.AudienceAnnotation); ok {
			state.Audience = types.StringValue(v)
		} else {
			state.Audience = types.StringNull()
		}
	}
	if importing || !state.STSRegionalEndpoints.IsNull() {
		state.STSRegionalEndpoints = types.BoolNull()
		if v, ok := value(irsa.STSRegionalEndpointsAnnotation); ok {
			if b, err := strconv.ParseBool(v); err == nil {
				state.STSRegionalEndpoints = types.BoolValue(b)
			}
		}
	}
	if importing || !state.TokenExpiration.IsNull() {
		state.TokenExpiration = types.Int64Null()
		if v, ok := value(irsa.TokenExpirationAnnotation); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				state.TokenExpiration = types.Int64Value(n)
			}
		}
	}
}

func (r *serviceAccountBindingResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var plan, state serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp.Diagnostics.Append(r.apply(ctx, conn, plan, &state, &resp.State, resp.Private)...)
}

func (r *serviceAccountBindingResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	var state serviceAccountBindingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	resp.Diagnostics.Append(r.checkCluster(ctx, state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	defer r.data.reads.Forget(ns, name)
	own, diags := loadOwnership(ctx, req.Private, state.ServiceAccountCreated.ValueBool())
	resp.Diagnostics.Append(diags...)
	own.AssociationID = state.AssociationID.ValueString()
	spec, diags := state.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	binder, diags := r.binder(ctx, conn, spec.Spec, own)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	out, err := binder.Destroy(ctx, spec.Spec, own, spec.OnDestroy)
	resp.Diagnostics.Append(destroyDiagnostics(ctx, spec, out, err, r.data.kubeHost)...)
}

// binder is the Binder of a change: INFO logs naming the ServiceAccount,
// and the EKS client when the binding has or will have an association.
func (r *serviceAccountBindingResource) binder(ctx context.Context, conn kube.Conn, spec binding.Spec, own binding.Ownership) (binding.Binder, diag.Diagnostics) {
	var diags diag.Diagnostics
	b := binding.Binder{Conn: conn, Logf: func(format string, args ...any) {
		tflog.Info(ctx, fmt.Sprintf(format, args...), map[string]any{"namespace": spec.Namespace, "service_account": spec.ServiceAccount})
	}}
	if spec.Mechanism == binding.MechanismPodIdentity || own.AssociationID != "" {
		client, err := r.data.eksClient(ctx)
		if err != nil {
			diags.Append(eksAPIError("Reach EKS", err))
		}
		b.EKS = client
	}
	return b, diags
}

// destroyDiagnostics renders what Destroy did and found.
func destroyDiagnostics(ctx context.Context, spec bindingSpec, out binding.DestroyOutcome, err error, host string) diag.Diagnostics {
	var diags diag.Diagnostics
	ns, name := spec.Namespace, spec.ServiceAccount
	object := "ServiceAccount " + ns + "/" + name
	var step *binding.DestroyError
	switch {
	case errors.As(err, &step) && step.Association:
		return append(diags, eksAPIError("Delete Pod Identity Association", step.Err))
	case errors.As(err, &step) && step.Deleting:
		return append(diags, kubeAPIError(ctx, "Delete Service Account", object, host, step.Err))
	case errors.As(err, &step):
		return append(diags, kubeAPIError(ctx, "Remove Service Account Annotations", object, host, step.Err))
	}
	switch {
	case len(out.KeptFor) > 0:
		diags.AddWarning("Service Account Not Deleted",
			fmt.Sprintf("The binding created %s, but binding %s holds it now (a create_before_destroy replacement, or another "+
				"configuration with the same annotations), so it stays, with its annotations. Delete it with that binding's "+
				"configuration, or by hand, once nothing uses it.", object, strings.Join(out.KeptFor, ", ")))
	case out.Replaced:
		diags.AddWarning("Service Account Not Deleted",
			fmt.Sprintf("The binding created %s, but the ServiceAccount by that name now is another one (someone deleted "+
				"and re-created it), so the binding leaves it alone.", object))
	case len(out.HeldBy) > 0:
		diags.AddWarning("Service Account Held by Another Binding",
			fmt.Sprintf("%s is held by binding %s (a create_before_destroy replacement, another configuration that asked "+
				"for the same annotations, or one that imported it), so destroying this binding leaves the annotations to it.",
				object, strings.Join(out.HeldBy, ", ")))
	case out.RoleStillSet != "":
		who := "no field manager (it was set without managed fields)"
		if len(out.RoleManagers) > 0 {
			who = strings.Join(quote(out.RoleManagers), ", ")
		}
		diags.AddWarning("Role Annotation Still Set by Another Manager",
			fmt.Sprintf("The binding released its annotations on %s, but %s is still %q, managed by %s, so pods of "+
				"the ServiceAccount keep getting that role. Remove it with the tool that set it if that is not intended.",
				object, irsa.RoleARNAnnotation, out.RoleStillSet, who))
	}
	if out.Recycled {
		if len(out.Recycle.Plan.LeftAlone) > 0 {
			diags.Append(podsLeftAlone(object, "", spec.Restart.Strategy, out.Recycle.Plan.LeftAlone))
		}
		if err != nil {
			diags.Append(recycleError(ns, name, spec.Restart.Strategy, err))
		}
	}
	return diags
}

func (r *serviceAccountBindingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	ns, name, err := parseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.Append(invalidImportID(req.ID, err))
		return
	}
	resp.Diagnostics.Append(saveOwnership(ctx, resp.Private, binding.Ownership{Importing: true})...)
	for attr, v := range map[string]any{
		"id": req.ID, "namespace": ns, "service_account": name,
		"create_service_account": false, "service_account_created": false, "force_conflicts": false,
	} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), v)...)
	}
}
