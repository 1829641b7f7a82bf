package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
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
	resp.Diagnostics.Append(r.checkTrust(ctx, plan)...)
	if r.data.kubeUnknown {
		return // a cluster that does not exist yet
	}
	var state *serviceAccountBindingModel
	if !req.State.Raw.IsNull() {
		state = &serviceAccountBindingModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		resp.Diagnostics.Append(r.checkCluster(ctx, *state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if issuer, err := r.data.issuer(ctx); err == nil {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("oidc_issuer"), issuer)...)
	} else if r.data.kube != nil {
		// Without a connection at all, what needs it reports that.
		resp.Diagnostics.Append(issuerNotDiscovered(r.data.kubeHost, err))
	}
	if plan.STSRegionalEndpoints.IsUnknown() || plan.TokenExpiration.IsUnknown() ||
		plan.CreateServiceAccount.IsUnknown() || plan.ForceConflicts.IsUnknown() || plan.Restart.IsUnknown() {
		return
	}
	desired := plan.binding().Annotations()
	annotationsChange := state == nil || !maps.Equal(state.binding().Annotations(), desired) || !plan.ForceConflicts.Equal(state.ForceConflicts)
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
		if !plan.ForceConflicts.ValueBool() && !own.Adopt && irsa.PredictConflicts(sa, desired, r.data.fieldManager) != nil {
			// managedFields predict a conflict with another field
			// manager; a dry-run apply confirms it, changing nothing. (No
			// dry run per binding otherwise: at fleet scale that is a
			// request per binding for nothing.) A conflict is a warning
			// here, not an error: the plan must still show the drift (exit
			// code 2 for drift detection); the apply is what fails.
			_, err := (irsa.ServiceAccounts{Conn: conn}).Apply(ctx, ns, name, desired, irsa.ApplyOptions{DryRun: true})
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
	// a role change, pods with the old one are what apply recycles.
	recycling, err := (recycle.Engine{Conn: conn}).Plan(ctx, recycle.RecycleOptions{
		Namespace: ns, ServiceAccount: name, Selector: settings.Selector,
		Credentials: plan.binding().Expectation(time.Time{}), Strategy: settings.Strategy,
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
