package provider

import (
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
)

// Diagnostics of the pod_identity mechanism. Each has an entry in the
// troubleshooting guide under its summary.

func clusterNameRequired(namespace, name string) diag.Diagnostic {
	return diag.NewAttributeErrorDiagnostic(path.Root("mechanism"), "Cluster Name Required",
		fmt.Sprintf("The binding of ServiceAccount %s/%s uses mechanism = \"pod_identity\", whose association belongs to an "+
			"EKS cluster by name, but the provider sets no cluster_name. Set cluster_name in the provider block to the EKS "+
			"name of the cluster the kubernetes settings reach (aws eks list-clusters), or use mechanism = \"irsa\".", namespace, name))
}

// eksClusterMismatch is a cluster_name of another cluster than the
// connection's, or one EKS cannot describe.
func eksClusterMismatch(err error, host string) diag.Diagnostic {
	var ce *eksClusterError
	if errors.As(err, &ce) && ce.err == nil {
		return diag.NewErrorDiagnostic("EKS Cluster Is Not the Connected Cluster",
			fmt.Sprintf("The provider's cluster_name %q names the EKS cluster whose OIDC issuer is\n  %s\nbut the Kubernetes "+
				"API server at %s announces\n  %s\nso the associations would be made for one cluster and the pods recycled in "+
				"another. Nothing was changed. Point cluster_name and the kubernetes settings at the same cluster (aws eks "+
				"describe-cluster --name NAME --query cluster.identity.oidc.issuer shows a cluster's issuer).",
				ce.cluster, ce.eksIssuer, host, ce.connected))
	}
	return eksAPIError("Describe EKS Cluster", err)
}

// associationHeld is an association of the ServiceAccount the binding does
// not own: someone else's, or an EKS add-on's.
func associationHeld(e *binding.AssociationHeldError) diag.Diagnostic {
	role := e.RoleARN
	if role == "" {
		role = "(not readable)"
	}
	if e.OwnerARN != "" {
		return diag.NewErrorDiagnostic("Pod Identity Association Owned by an EKS Add-on",
			fmt.Sprintf("ServiceAccount %s/%s already has EKS Pod Identity association %s (role %s), owned by the EKS add-on "+
				"%s. A binding never changes or deletes an add-on's association, and cannot import it: change it with the add-on's "+
				"pod_identity_association setting (aws eks update-addon), or bind another ServiceAccount. Nothing was changed.",
				e.Namespace, e.ServiceAccount, e.ID, role, e.OwnerARN))
	}
	return diag.NewErrorDiagnostic("Pod Identity Association Already Exists",
		fmt.Sprintf("ServiceAccount %s/%s already has EKS Pod Identity association %s (role %s), which this binding did not "+
			"create. EKS allows one association per ServiceAccount. To manage it with this binding, import it:\n\n"+
			"  terraform import irsa_service_account_binding.NAME %s/%s\n\n(or an import block with id = \"%s/%s\"); otherwise remove it where it was made "+
			"(another configuration, aws eks delete-pod-identity-association --cluster-name CLUSTER --association-id %s). "+
			"Nothing was changed.",
			e.Namespace, e.ServiceAccount, e.ID, role, e.Namespace, e.ServiceAccount, e.Namespace, e.ServiceAccount, e.ID))
}

// eksAPIError explains a failed EKS call.
func eksAPIError(action string, err error) diag.Diagnostic {
	summary := "Unable to " + action
	switch {
	case errors.Is(err, errNoClusterName):
		return diag.NewErrorDiagnostic("Cluster Name Required",
			"The provider sets no cluster_name, which pod_identity bindings need to reach their EKS cluster. Set cluster_name in the provider block.")
	case awseks.IsAccessDenied(err):
		return diag.NewErrorDiagnostic(summary,
			fmt.Sprintf("EKS refused the provider's credentials the action. pod_identity bindings need eks:DescribeCluster, "+
				"eks:ListPodIdentityAssociations, eks:DescribePodIdentityAssociation, eks:CreatePodIdentityAssociation, "+
				"eks:UpdatePodIdentityAssociation, eks:DeletePodIdentityAssociation, eks:TagResource and eks:UntagResource on "+
				"the cluster and its associations, and iam:PassRole on the role (see the least-privilege guide).\n\nError: %s", err))
	case awseks.IsTrustInvalid(err):
		return diag.NewErrorDiagnostic("Role Does Not Trust EKS Pod Identity",
			fmt.Sprintf("EKS refused the role: its trust policy does not let pods.eks.amazonaws.com call sts:AssumeRole and "+
				"sts:TagSession. Add this statement to the role's trust policy (data.irsa_trust_policy renders it):\n\n"+
				"  {\"Effect\": \"Allow\", \"Principal\": {\"Service\": \"pods.eks.amazonaws.com\"}, \"Action\": [\"sts:AssumeRole\", \"sts:TagSession\"]}\n\nError: %s", err))
	case awseks.IsRoleNotPropagated(err):
		return diag.NewErrorDiagnostic("Role Not Found by EKS",
			fmt.Sprintf("EKS kept answering that the role does not exist for %s: it is missing, in another account than "+
				"the cluster, or IAM has still not propagated it. Check role_arn; a role created in the same apply is retried "+
				"automatically for that long.\n\nError: %s", awseks.RolePropagationWindow, err))
	}
	return diag.NewErrorDiagnostic(summary, fmt.Sprintf("The EKS API call failed. Nothing after it was done; the next apply "+
		"continues from here.\n\nError: %s", err))
}

// migrationStepFailed is a step of a move between mechanisms that failed
// after the new mechanism credentialed the pods: state is saved, nothing
// is lost, and the next apply does the step again.
func migrationStepFailed(object string, err *binding.MigrationError) diag.Diagnostic {
	return diag.NewWarningDiagnostic("Migration Not Finished",
		fmt.Sprintf("%s: every pod the migration recycled carries the new mechanism's credentials, but the last step, %s, "+
			"failed. Pods keep working; state records the migration as unfinished, so the next plan shows it and the next "+
			"apply does the step again.\n\nError: %s", object, err.Step, err.Err))
}

// migrationPlanned is the plan warning of a move between mechanisms, with
// each step apply takes.
func migrationPlanned(object, from, to, cluster, role string) diag.Diagnostic {
	var steps string
	if to == string(binding.MechanismPodIdentity) {
		steps = fmt.Sprintf("  1. create the EKS Pod Identity association of %s in cluster %s with role %s (the IRSA annotations stay);\n"+
			"  2. wait until a server-side dry-run pod gets container credentials (EKS propagates an association in seconds);\n"+
			"  3. recycle every pod still on IRSA credentials with the binding's restart strategy, and wait for replacements that carry the container credentials;\n"+
			"  4. only then remove the IRSA annotations this binding set.\n", object, cluster, role)
	} else {
		steps = fmt.Sprintf("  1. annotate %s with role %s (the webhook still gives the association precedence);\n"+
			"  2. delete the binding's EKS Pod Identity association;\n"+
			"  3. wait until a server-side dry-run pod gets IRSA credentials again (EKS propagates the deletion in seconds);\n"+
			"  4. recycle every pod still on container credentials, and wait for replacements with IRSA credentials.\n", object, role)
	}
	return diag.NewWarningDiagnostic("Apply Will Migrate the Binding",
		fmt.Sprintf("The binding moves from %s to %s, in place:\n%s"+
			"No step leaves a pod without credentials: old pods keep the old mechanism's until they are replaced. If apply stops "+
			"part way (a timeout, an interrupt), state records where it is and the next apply continues. To roll back, set "+
			"mechanism back; the same steps run the other way.", from, to, steps))
}
