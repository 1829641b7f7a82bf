package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// ModifyPlan checks the cluster during plan, so that what a plan can see
// fails or warns there rather than half way through an apply: a missing
// ServiceAccount, annotations another manager owns, and which pods apply
// will restart or leave alone.
func (r *serviceAccountBindingResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	ctx, done := guard(ctx, &resp.Diagnostics)
	defer done()
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or no provider data (validate)
	}
	var plan serviceAccountBindingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Namespace.IsUnknown() || plan.ServiceAccount.IsUnknown() || plan.RoleARN.IsUnknown() || plan.Audience.IsUnknown() {
		// Terraform plans again during apply, with the values known: the
		// checks run then, before anything changes.
		return
	}
	var state *serviceAccountBindingModel
	if !req.State.Raw.IsNull() {
		state = &serviceAccountBindingModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if !plan.Mechanism.IsUnknown() && !plan.PodIdentity.IsUnknown() {
		resp.Diagnostics.Append(r.checkTrust(ctx, plan)...)
	}
	// A value the plan already holds is not set again: each SetAttribute
	// walks the schema, copying each level's attribute map on the way.
	if plan.mechanism() == binding.MechanismIRSA {
		if !plan.AssociationID.IsNull() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("association_id"), types.StringNull())...)
		}
		if !plan.AssociationARN.IsNull() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("association_arn"), types.StringNull())...)
		}
	}
	if r.data.kubeUnknown {
		return // a cluster that does not exist yet
	}
	if state != nil {
		resp.Diagnostics.Append(r.checkCluster(ctx, *state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if issuer, err := r.data.issuer(ctx); err == nil {
		if !plan.OIDCIssuer.Equal(types.StringValue(issuer)) {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("oidc_issuer"), issuer)...)
		}
	} else if r.data.kube != nil {
		// Without a connection at all, what needs it reports that.
		resp.Diagnostics.Append(issuerNotDiscovered(r.data.kubeHost, err))
	}
	if plan.Mechanism.IsUnknown() {
		return
	}
	migrating := state != nil && state.mechanism() != plan.mechanism()
	if migrating {
		ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
		resp.Diagnostics.Append(migrationPlanned("ServiceAccount "+ns+"/"+name, string(state.mechanism()), string(plan.mechanism()),
			r.data.clusterName, plan.RoleARN.ValueString()))
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("stale_pods"), unknownStalePods())...)
	}
	if plan.mechanism() == binding.MechanismPodIdentity {
		r.planPodIdentity(ctx, req, resp, plan, state)
		return
	}
	if plan.STSRegionalEndpoints.IsUnknown() || plan.TokenExpiration.IsUnknown() ||
		plan.CreateServiceAccount.IsUnknown() || plan.ForceConflicts.IsUnknown() || plan.Restart.IsUnknown() {
		return
	}
	desired := plan.binding().Annotations()
	annotationsChange := state == nil || migrating || !maps.Equal(state.binding().Annotations(), desired) || !plan.ForceConflicts.Equal(state.ForceConflicts)
	if state != nil {
		resp.Diagnostics.Append(r.planImportTakeover(ctx, req, plan)...)
		resp.Diagnostics.Append(r.planOwnershipMove(ctx, req, resp, plan)...)
	}
	if !annotationsChange && !state.StalePods.IsUnknown() && len(state.StalePods.Elements()) == 0 {
		return // refresh found every pod credentialed: nothing to ask the cluster
	}
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	object := "ServiceAccount " + ns + "/" + name

	if annotationsChange {
		sa, err := r.data.reads.ServiceAccount(ctx, ns, name)
		if apierrors.IsNotFound(err) {
			if !plan.CreateServiceAccount.ValueBool() {
				resp.Diagnostics.Append(serviceAccountNotFoundYet(ns, name, r.data.kubeHost))
			}
			return
		} else if err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "Read Service Account", object, r.data.kubeHost, err))
			return
		}
		own, d := loadOwnership(ctx, req.Private, false)
		resp.Diagnostics.Append(d...)
		var held *binding.HeldError
		if _, err := binding.CheckHolder(sa, own.ID, desired, r.data.fieldManager); errors.As(err, &held) && !own.Adopt {
			// A definite conflict, unlike drift: apply would fail.
			resp.Diagnostics.Append(serviceAccountHeld(held, desired))
			return
		}
		if !plan.ForceConflicts.ValueBool() && !own.Adopt && irsa.PredictConflicts(sa, desired, irsa.OurManagers(sa, r.data.fieldManager, own.ID)...) != nil {
			// managedFields predict a conflict with another field
			// manager; a dry-run apply confirms it, changing nothing. (No
			// dry run per binding otherwise: at fleet scale that is a
			// request per binding for nothing.) A conflict is a warning
			// here, not an error: the plan must still show the drift (exit
			// code 2 for drift detection); the apply is what fails.
			_, err := (irsa.ServiceAccounts{Conn: conn, ID: own.ID}).Apply(ctx, ns, name, desired, irsa.ApplyOptions{DryRun: true})
			var ce *irsa.ConflictError
			switch {
			case errors.As(err, &ce):
				d := annotationConflict(ce)
				resp.Diagnostics.AddWarning(d.Summary(), "Apply will fail unless this is resolved. "+d.Detail())
			case apierrors.IsForbidden(err):
				// An early check only: apply finds the same conflicts.
				resp.Diagnostics.Append(annotationCheckSkipped(object, err))
			case err != nil:
				resp.Diagnostics.Append(kubeAPIError(ctx, "Plan Service Account Annotations", object, r.data.kubeHost, err))
				return
			}
		}
	}

	settings, diags := plan.restart(ctx)
	resp.Diagnostics.Append(diags...)
	// Pods are judged against the planned annotations, not applied yet: on
	// a role change, pods with the old one are what apply recycles. After
	// a move back from Pod Identity, container credentials are stale.
	expected := plan.binding().Expectation(time.Time{})
	own, d := loadOwnership(ctx, req.Private, false)
	resp.Diagnostics.Append(d...)
	expected.PodIdentityDeleted = migrating || own.PodIdentityDeleted
	recycling, err := (recycle.Engine{Conn: conn}).Plan(ctx, recycle.RecycleOptions{
		Namespace: ns, ServiceAccount: name, Selector: settings.Selector,
		Credentials: expected, Strategy: settings.Strategy,
		ListPods: func(ctx context.Context) ([]corev1.Pod, error) {
			return r.data.reads.Pods(ctx, ns, name, settings.Selector)
		},
	})
	if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Plan Pod Recycling", object, r.data.kubeHost, err))
		return
	}
	if !recycling.Empty() {
		resp.Diagnostics.AddWarning("Apply Will Recycle Pods",
			fmt.Sprintf("Pods of %s do not carry the credentials of %s. With restart strategy %q, apply will, once the "+
				"pod identity webhook shows in a dry run that new pods get the role (nothing is touched otherwise):\n%s"+
				"Apply decides on a fresh look at the cluster and touches nothing else.",
				object, plan.RoleARN.ValueString(), settings.Strategy, recycling.Summary()))
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("stale_pods"), unknownStalePods())...)
	} else if len(recycling.LeftAlone) > 0 {
		resp.Diagnostics.Append(podsLeftAlone(object, plan.RoleARN.ValueString(), settings.Strategy, recycling.LeftAlone))
	}
}

// planOwnershipMove plans the one update a binding that holds its
// ServiceAccount the way earlier releases did needs to move onto its own
// field manager (irsa.LegacyHolderAnnotation): without it, nothing would
// change and the old annotation would stay. The refresh has already read the
// ServiceAccount, so the snapshot answers.
func (r *serviceAccountBindingResource) planOwnershipMove(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse, plan serviceAccountBindingModel) diag.Diagnostics {
	var diags diag.Diagnostics
	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	sa, err := r.data.reads.ServiceAccount(ctx, ns, name)
	if err != nil {
		return diags // Read and apply report it
	}
	own, d := loadOwnership(ctx, req.Private, false)
	diags.Append(d...)
	if !irsa.LegacyHeld(sa, r.data.fieldManager, own.ID) {
		return diags
	}
	diags.AddWarning("Binding Moves onto Its Own Field Manager",
		fmt.Sprintf("ServiceAccount %s/%s is bound the way earlier releases of the provider did it, with the %s annotation "+
			"naming the binding. This apply moves the binding onto a server-side apply field manager of its own (%s) and "+
			"removes that annotation; no value of the eks.amazonaws.com/ annotations changes and no pod is touched. Tools "+
			"beside the binding then need to ignore only the eks.amazonaws.com/ annotations.",
			ns, name, irsa.LegacyHolderAnnotation, irsa.BindingManager(r.data.fieldManager, bindingIDOrNew(own.ID))))
	diags.Append(resp.Plan.SetAttribute(ctx, path.Root("stale_pods"), unknownStalePods())...)
	return diags
}

// bindingIDOrNew names the ID a binding has or will be given, for messages.
func bindingIDOrNew(id string) string {
	if id == "" {
		return "ID given at apply"
	}
	return id
}

// planImportTakeover warns, for an imported binding not applied yet, that
// its first apply (or its destroy) takes the ServiceAccount over from the
// bindings that hold it now: their configurations keep running, but no
// longer own the annotations.
func (r *serviceAccountBindingResource) planImportTakeover(ctx context.Context, req resource.ModifyPlanRequest, plan serviceAccountBindingModel) diag.Diagnostics {
	var diags diag.Diagnostics
	own, d := loadOwnership(ctx, req.Private, false)
	diags.Append(d...)
	if !own.Adopt {
		return diags
	}
	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	sa, err := r.data.reads.ServiceAccount(ctx, ns, name)
	if err != nil {
		return diags // Read and apply report it
	}
	holders := slices.DeleteFunc(irsa.Holders(sa, r.data.fieldManager), func(id string) bool { return id == own.ID })
	if len(holders) == 0 {
		return diags
	}
	diags.AddWarning("Import Takes the Service Account Over",
		fmt.Sprintf("ServiceAccount %s/%s is held by binding %s, in another configuration or Terraform state (or in this one). "+
			"This binding was imported: its first apply, or its destroy, takes the annotations over from that binding, which "+
			"then owns nothing there; its destroy removes nothing, and an apply of it with other values fails as Service "+
			"Account Already Bound. If that binding is still in use, remove it from its state without destroying it "+
			"(terraform state rm ADDRESS, or a removed block with lifecycle { destroy = false }); if this import is a "+
			"mistake, remove this binding from state the same way before applying.",
			ns, name, strings.Join(holders, ", ")))
	return diags
}
