package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/podidentity"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// readsPodIdentity reads a pod_identity binding, and an import that finds
// an association, and reports whether it did: an IRSA binding is read from
// its ServiceAccount instead. The association is described by ID, one
// request per binding: List has no role, so it cannot show drift.
func (r *serviceAccountBindingResource) readsPodIdentity(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse, state serviceAccountBindingModel) bool {
	ns, name := state.Namespace.ValueString(), state.ServiceAccount.ValueString()
	prior := state
	own, diags := loadOwnership(ctx, req.Private, state.ServiceAccountCreated.ValueBool())
	resp.Diagnostics.Append(diags...)
	own.AssociationID = state.AssociationID.ValueString()
	importing := own.Importing
	// A binding with an association is read here whatever its mechanism
	// says: a move from IRSA that did not finish (mechanism reads "irsa"
	// until the IRSA annotations are gone) is still a Pod Identity binding.
	if state.mechanism() != binding.MechanismPodIdentity && state.AssociationID.IsNull() && (!importing || r.data.clusterName == "") {
		return false
	}
	client, err := r.data.eksClient(ctx)
	if err != nil {
		resp.Diagnostics.Append(eksAPIError("Reach EKS", err))
		return true
	}
	if err := r.data.checkEKSCluster(ctx); err != nil {
		resp.Diagnostics.Append(eksClusterMismatch(err, r.data.kubeHost))
		return true
	}
	if importing {
		found, err := client.FindFresh(ctx, ns, name)
		if err != nil {
			resp.Diagnostics.Append(eksAPIError("List Pod Identity Associations", err))
			return true
		}
		if found == nil {
			return false // an IRSA binding to import, if any
		}
		if found.OwnerARN != "" {
			resp.Diagnostics.Append(associationHeld(&binding.AssociationHeldError{Namespace: ns, ServiceAccount: name, ID: found.ID, OwnerARN: found.OwnerARN}))
			return true
		}
		// The first apply takes it over; nothing is written now.
		own.Importing, own.Adopt, own.AssociationID = false, true, found.ID
		state.Mechanism = types.StringValue(string(binding.MechanismPodIdentity))
		state.PodIdentity = types.ObjectNull(podIdentityAttrTypes)
	}
	desiredRole := state.RoleARN
	if own.AssociationID != "" {
		a, err := client.Describe(ctx, own.AssociationID)
		switch {
		case errors.Is(err, awseks.ErrNotFound):
			// Deleted out of band: a diff that apply fixes by creating it
			// again.
			state.RoleARN, state.AssociationID, state.AssociationARN = types.StringNull(), types.StringNull(), types.StringNull()
		case err != nil:
			resp.Diagnostics.Append(eksAPIError("Describe Pod Identity Association", err))
			return true
		default:
			refreshFromAssociation(&state, a)
		}
	}
	if importing {
		desiredRole = state.RoleARN
	}
	resp.Diagnostics.Append(saveOwnership(ctx, resp.Private, own)...)

	sa, saErr := r.data.reads.ServiceAccount(ctx, ns, name)
	state.Mechanism = types.StringValue(string(binding.MechanismPodIdentity))
	if saErr == nil && !state.AssociationID.IsNull() && binding.HoldsIRSA(sa, r.data.fieldManager, own.ID) {
		// The move from IRSA has not removed the binding's annotations
		// yet: state says so, and the next apply finishes it.
		state.Mechanism = types.StringValue(string(binding.MechanismIRSA))
	} else if saErr == nil && sa.Annotations[irsa.RoleARNAnnotation] != "" && !state.AssociationID.IsNull() {
		resp.Diagnostics.AddWarning("Service Account Has Both Mechanisms",
			fmt.Sprintf("ServiceAccount %s/%s has the %s annotation (%s) besides its EKS Pod Identity association %s. The pod "+
				"identity webhook gives Pod Identity precedence, so new pods get the association's role and the annotation does "+
				"nothing; remove it with the tool that set it, unless a migration is under way.",
				ns, name, irsa.RoleARNAnnotation, sa.Annotations[irsa.RoleARNAnnotation], state.AssociationID.ValueString()))
	}
	// With the association gone, stale_pods keeps its last value until
	// apply makes it again.
	if !desiredRole.IsNull() && !state.AssociationID.IsNull() {
		settings, diags := state.restart(ctx)
		resp.Diagnostics.Append(diags...)
		pods, err := r.data.reads.Pods(ctx, ns, name, settings.Selector)
		if err != nil {
			resp.Diagnostics.Append(kubeAPIError(ctx, "List Pods of Service Account", "ServiceAccount "+ns+"/"+name, r.data.kubeHost, err))
			return true
		}
		creds := podidentity.Expectation{Associated: true, ChangedAt: own.AssociationChangedAt}
		state.StalePods = stalePodsValue(recycle.Stale(pods, creds))
	}
	if state.StalePods.IsNull() || state.StalePods.IsUnknown() {
		state.StalePods = stalePodsValue(nil)
	}
	state.ID = types.StringValue(ns + "/" + name)
	state.OIDCIssuer = r.issuerValue(ctx)
	if !sameModel(prior, state) {
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	}
	return true
}

// planPodIdentity is ModifyPlan for a pod_identity binding: the cluster
// name checked against the connection, an association the binding does not
// own refused, and a warning naming what apply creates or changes and the
// pods it recycles.
func (r *serviceAccountBindingResource) planPodIdentity(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse, plan serviceAccountBindingModel, state *serviceAccountBindingModel) {
	ns, name := plan.Namespace.ValueString(), plan.ServiceAccount.ValueString()
	object := "ServiceAccount " + ns + "/" + name
	if r.data.clusterName == "" {
		resp.Diagnostics.Append(clusterNameRequired(ns, name))
		return
	}
	if r.data.awsUnknown || plan.PodIdentity.IsUnknown() || plan.CreateServiceAccount.IsUnknown() || plan.Restart.IsUnknown() {
		return
	}
	if err := r.data.checkEKSCluster(ctx); err != nil {
		resp.Diagnostics.Append(eksClusterMismatch(err, r.data.kubeHost))
		return
	}
	client, err := r.data.eksClient(ctx)
	if err != nil {
		resp.Diagnostics.Append(eksAPIError("Reach EKS", err))
		return
	}
	want, diags := plan.podIdentity(ctx)
	resp.Diagnostics.Append(diags...)
	want.RoleARN = plan.RoleARN.ValueString()
	own, d := loadOwnership(ctx, req.Private, false)
	resp.Diagnostics.Append(d...)

	creating := state == nil || state.AssociationID.IsNull()
	var have awseks.Settings
	if !creating {
		have, diags = state.podIdentity(ctx)
		resp.Diagnostics.Append(diags...)
		have.RoleARN = state.RoleARN.ValueString()
	}
	if creating {
		existing, err := client.Find(ctx, ns, name)
		if err != nil {
			resp.Diagnostics.Append(eksAPIError("List Pod Identity Associations", err))
			return
		}
		if existing != nil {
			var held *binding.AssociationHeldError
			if errors.As(binding.HeldAssociation(ctx, client, ns, name, *existing, own.Adopt), &held) {
				resp.Diagnostics.Append(associationHeld(held))
				return
			}
		}
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("association_id"), types.StringUnknown())...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("association_arn"), types.StringUnknown())...)
	}
	credentialsChange := creating || binding.CredentialsDiffer(have, want)
	if !credentialsChange && state != nil && !state.StalePods.IsUnknown() && len(state.StalePods.Elements()) == 0 {
		return // nothing pods see changes, and refresh found them all credentialed
	}
	conn, diags := r.data.conn()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := r.data.reads.ServiceAccount(ctx, ns, name); apierrors.IsNotFound(err) && !plan.CreateServiceAccount.ValueBool() {
		resp.Diagnostics.Append(serviceAccountNotFoundYet(ns, name, r.data.kubeHost))
	}
	settings, diags := plan.restart(ctx)
	resp.Diagnostics.Append(diags...)
	recycling, err := (recycle.Engine{Conn: conn}).Plan(ctx, recycle.RecycleOptions{
		Namespace: ns, ServiceAccount: name, Selector: settings.Selector,
		Credentials: podidentity.Expectation{Associated: true, ChangedAt: own.AssociationChangedAt, Pending: credentialsChange},
		Strategy:    settings.Strategy,
		ListPods: func(ctx context.Context) ([]corev1.Pod, error) {
			return r.data.reads.Pods(ctx, ns, name, settings.Selector)
		},
	})
	if err != nil {
		resp.Diagnostics.Append(kubeAPIError(ctx, "Plan Pod Recycling", object, r.data.kubeHost, err))
		return
	}
	var step string
	switch {
	case creating:
		step = fmt.Sprintf("create the EKS Pod Identity association of %s in cluster %s with role %s", object, r.data.clusterName, want.RoleARN)
	case credentialsChange:
		step = fmt.Sprintf("update Pod Identity association %s of %s (role %s). The EKS Pod Identity Agent caches "+
			"credentials for up to 6 hours and an edited association does not reset that cache, so pods created before the "+
			"change keep what they had until they are re-created", state.AssociationID.ValueString(), object, want.RoleARN)
	}
	switch {
	case !recycling.Empty():
		if step == "" {
			step = "leave the association of " + object + " as it is"
		}
		resp.Diagnostics.AddWarning("Apply Will Recycle Pods",
			fmt.Sprintf("Apply will %s. Then, once a server-side dry-run pod shows that new pods get container credentials "+
				"(AWS_CONTAINER_CREDENTIALS_FULL_URI and the eks-pod-identity-token volume; nothing is touched otherwise), it "+
				"recycles with restart strategy %q:\n%sApply decides on a fresh look at the cluster and touches nothing else.",
				step, settings.Strategy, recycling.Summary()))
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("stale_pods"), unknownStalePods())...)
	case len(recycling.LeftAlone) > 0:
		resp.Diagnostics.Append(podsLeftAlone(object, want.RoleARN, settings.Strategy, recycling.LeftAlone))
	}
}
