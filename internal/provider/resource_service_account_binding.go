package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	k8stypes "k8s.io/apimachinery/pkg/types"

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

	// importingKey marks, in private state, a binding whose first Read is
	// an import's.
	importingKey = "importing"
	// bindingIDKey keeps, in private state, the ID this binding writes to
	// irsa.HolderAnnotation.
	bindingIDKey = "binding_id"
	// adoptKey marks an imported binding that has not yet taken the
	// annotations over from the managers that set them.
	adoptKey = "adopt"
	// createdUIDKey keeps, in private state, the UID of a ServiceAccount
	// the binding created.
	createdUIDKey = "created_service_account_uid"
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

// privateState is where Create records the UID of a ServiceAccount it
// created (*privatestate.ProviderData, internal to the framework).
type privateState interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
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
	id, d := bindingID(ctx, private)
	diags.Append(d...)
	if id == "" {
		// A new binding, an import, or state from before binding IDs.
		id = newBindingID()
		diags.Append(private.SetKey(ctx, bindingIDKey, []byte(strconv.Quote(id)))...)
	}
	spec.ID = id
	adopting := false
	if prior != nil {
		// Update never re-creates a ServiceAccount deleted meanwhile.
		spec.CreateServiceAccount = false
		marker, d := private.GetKey(ctx, adoptKey)
		diags.Append(d...)
		adopting = len(marker) > 0
		// An imported binding takes over the annotations it imported.
		spec.Adopt = adopting
		for k := range prior.binding().Annotations() {
			spec.AdoptKeys = append(spec.AdoptKeys, k)
		}
	}
	binder := binding.Binder{Conn: conn, Lookup: r.data.reads.ServiceAccount, Logf: func(format string, args ...any) {
		tflog.Info(ctx, fmt.Sprintf(format, args...), map[string]any{"namespace": ns, "service_account": name})
	}}
	out, err := binder.Apply(ctx, spec.Spec)
	// Whatever happened, this process's picture of the ServiceAccount and
	// its pods is out of date.
	r.data.reads.Forget(ns, name)
	var notFound *binding.NotFoundError
	var held *binding.HeldError
	switch {
	case errors.As(err, &notFound) && notFound.NamespaceMissing:
		return append(diags, namespaceNotFound(ns, name, r.data.kubeHost))
	case errors.As(err, &notFound):
		return append(diags, serviceAccountNotFound(ns, name, r.data.kubeHost))
	case errors.As(err, &held):
		return append(diags, serviceAccountHeld(held, spec.Binding.Annotations()))
	case !out.Annotated:
		return append(diags, kubeAPIError(ctx, "Annotate Service Account", object, r.data.kubeHost, err))
	}

	if prior == nil {
		plan.ServiceAccountCreated = types.BoolValue(out.Created)
		if out.Created {
			// Destroy deletes this very ServiceAccount, never one
			// re-created under its name.
			diags.Append(private.SetKey(ctx, createdUIDKey, []byte(strconv.Quote(string(out.UID))))...)
		}
	} else {
		plan.ServiceAccountCreated = prior.ServiceAccountCreated
	}
	if adopting {
		diags.Append(private.SetKey(ctx, adoptKey, nil)...)
	}
	plan.ID = types.StringValue(ns + "/" + name)
	plan.OIDCIssuer = r.issuerValue(ctx)
	plan.StalePods = stalePodsValue(out.Stale)
	diags.Append(state.Set(ctx, &plan)...)

	if len(out.Recycle.Plan.LeftAlone) > 0 {
		diags.Append(podsLeftAlone(object, spec.Binding.RoleARN, spec.Restart.Strategy, out.Recycle.Plan.LeftAlone))
	}
	if out.Recycle.GateSkipped != nil {
		diags.Append(gateSkipped(object, out.Recycle.GateSkipped))
	}
	if err != nil {
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
	_, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.checkCluster(ctx, state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
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
	marker, diags := req.Private.GetKey(ctx, importingKey)
	resp.Diagnostics.Append(diags...)
	importing := len(marker) > 0
	if importing {
		if sa.Annotations[irsa.RoleARNAnnotation] == "" {
			resp.Diagnostics.Append(nothingToImport(ns, name))
			return
		}
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, importingKey, nil)...)
		// Import adopts: the first apply (or the destroy) takes the
		// annotations over from the tools that set them. Nothing is
		// written now: import blocks read during plan.
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, adoptKey, []byte(`true`))...)
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
		state.StalePods = stalePodsValue(recycle.Stale(pods, desired.binding().Expectation(binding.AnnotatedAt(sa, r.data.fieldManager))))
	}
	state.ID = types.StringValue(ns + "/" + name)
	state.OIDCIssuer = r.issuerValue(ctx)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
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
	sas := irsa.ServiceAccounts{Conn: conn}
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	defer r.data.reads.Forget(ns, name)
	object := "ServiceAccount " + ns + "/" + name
	holder, diags := bindingID(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	if state.ServiceAccountCreated.ValueBool() {
		if others := r.otherHolders(ctx, sas, ns, name, holder); len(others) > 0 {
			// A create_before_destroy replacement holds it: deleting it
			// would pull it from under the new binding's pods.
			_, err := sas.Release(ctx, ns, name, holder)
			var heldElsewhere *irsa.HeldElsewhereError
			if err != nil && !errors.As(err, &heldElsewhere) {
				resp.Diagnostics.Append(kubeAPIError(ctx, "Remove Service Account Annotations", object, r.data.kubeHost, err))
				return
			}
			resp.Diagnostics.AddWarning("Service Account Not Deleted",
				fmt.Sprintf("The binding created %s, but binding %s holds it now (a create_before_destroy replacement, or another "+
					"configuration with the same annotations), so it stays, with its annotations. Delete it with that binding's "+
					"configuration, or by hand, once nothing uses it.", object, strings.Join(others, ", ")))
			return
		}
		tflog.Info(ctx, "deleting the ServiceAccount this binding created", map[string]any{"namespace": ns, "name": name})
		uid, diags := createdUID(ctx, req.Private)
		resp.Diagnostics.Append(diags...)
		err := sas.Delete(ctx, ns, name, uid)
		switch {
		case errors.Is(err, irsa.ErrReplaced):
			resp.Diagnostics.AddWarning("Service Account Not Deleted",
				fmt.Sprintf("The binding created %s, but the ServiceAccount by that name now is another one (someone deleted "+
					"and re-created it), so the binding leaves it alone.", object))
		case err != nil:
			resp.Diagnostics.Append(kubeAPIError(ctx, "Delete Service Account", object, r.data.kubeHost, err))
		}
		return
	}
	if marker, d := req.Private.GetKey(ctx, adoptKey); len(marker) > 0 {
		// Imported and never applied: what it imported is its own now,
		// whoever held it before.
		resp.Diagnostics.Append(d...)
		current, err := adopt(ctx, sas, state)
		if err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "Remove Service Account Annotations", object, r.data.kubeHost, err))
			return
		}
		if current != nil {
			if holders := irsa.Holders(current); len(holders) > 0 {
				holder = holders[0]
			}
		}
	}
	sa, err := sas.Release(ctx, ns, name, holder)
	var heldElsewhere *irsa.HeldElsewhereError
	if errors.As(err, &heldElsewhere) {
		resp.Diagnostics.AddWarning("Service Account Held by Another Binding",
			fmt.Sprintf("%s is held by binding %s (a create_before_destroy replacement, another configuration that asked "+
				"for the same annotations, or one that imported it), so destroying this binding leaves the annotations to it.",
				object, strings.Join(heldElsewhere.Holders, ", ")))
		return
	}
	if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Remove Service Account Annotations", object, r.data.kubeHost, err))
		return
	}
	if sa == nil {
		return // already gone
	}
	spec, diags := state.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if v, ok := sa.Annotations[irsa.RoleARNAnnotation]; !ok && spec.OnDestroy {
		// Pods still hold the role until they are re-created.
		binder := binding.Binder{Conn: conn}
		res, _, err := binder.Recycle(ctx, spec.Spec, irsa.Expectation{})
		if len(res.Plan.LeftAlone) > 0 {
			resp.Diagnostics.Append(podsLeftAlone(object, "", spec.Restart.Strategy, res.Plan.LeftAlone))
		}
		if err != nil {
			resp.Diagnostics.Append(recycleError(ns, name, spec.Restart.Strategy, err))
		}
	} else if ok {
		owners := irsa.AnnotationOwners(sa, r.data.fieldManager)[irsa.RoleARNAnnotation]
		who := "no field manager (it was set without managed fields)"
		if len(owners) > 0 {
			who = strings.Join(quote(owners), ", ")
		}
		resp.Diagnostics.AddWarning("Role Annotation Still Set by Another Manager",
			fmt.Sprintf("The binding released its annotations on %s, but %s is still %q, managed by %s, so pods of "+
				"the ServiceAccount keep getting that role. Remove it with the tool that set it if that is not intended.",
				object, irsa.RoleARNAnnotation, v, who))
	}
}

// adopt takes over, for an imported binding that was never applied, the
// annotations it manages that still have the imported values, so that
// releasing them removes them. One changed since the import is someone
// else's now and stays.
func adopt(ctx context.Context, sas irsa.ServiceAccounts, state serviceAccountBindingModel) (*corev1.ServiceAccount, error) {
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	sa, err := sas.Get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var same []string
	for k, v := range state.binding().Annotations() {
		if sa.Annotations[k] == v {
			same = append(same, k)
		}
	}
	if len(same) == 0 {
		return sa, nil
	}
	return sas.Adopt(ctx, sa, same)
}

// otherHolders lists the bindings other than id that hold the
// ServiceAccount; none when it cannot be read (the delete that follows
// reports that).
func (r *serviceAccountBindingResource) otherHolders(ctx context.Context, sas irsa.ServiceAccounts, ns, name, id string) []string {
	sa, err := sas.Get(ctx, ns, name)
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(irsa.Holders(sa), func(h string) bool { return h == id })
}

// bindingID is the ID this binding writes to irsa.HolderAnnotation; empty
// before its first apply.
func bindingID(ctx context.Context, private privateState) (string, diag.Diagnostics) {
	raw, diags := private.GetKey(ctx, bindingIDKey)
	if len(raw) == 0 || diags.HasError() {
		return "", diags
	}
	id, err := strconv.Unquote(string(raw))
	if err != nil {
		return "", diags
	}
	return id, diags
}

// newBindingID is a random ID: nothing Terraform hands a provider names a
// resource instance across states.
func newBindingID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createdUID is the UID Create recorded for the ServiceAccount it created;
// empty for state written before it was recorded.
func createdUID(ctx context.Context, private privateState) (k8stypes.UID, diag.Diagnostics) {
	raw, diags := private.GetKey(ctx, createdUIDKey)
	if len(raw) == 0 || diags.HasError() {
		return "", diags
	}
	s, err := strconv.Unquote(string(raw))
	if err != nil {
		return "", diags
	}
	return k8stypes.UID(s), diags
}

func (r *serviceAccountBindingResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	ns, name, err := parseImportID(req.ID)
	if err != nil {
		resp.Diagnostics.Append(invalidImportID(req.ID, err))
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
