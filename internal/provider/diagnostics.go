package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// One constructor per class of failure. A summary names the action that
// failed; a detail names the object, says what was expected and what was
// found, says how to fix it, and ends with the original error.

func unexpectedConfigureType(got any) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Unexpected Provider Data Type",
		fmt.Sprintf("Expected *providerData, got %T. This is always a bug in the provider; please report it.", got))
}

func kubeNotConfigured(err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Kubernetes Connection Not Configured",
		"The provider could not build a Kubernetes client configuration. Set kubernetes.config_path "+
			"(or KUBE_CONFIG_PATH/KUBECONFIG) to a kubeconfig, or kubernetes.host with a token, client certificate "+
			"or exec plugin.\n\nError: "+err.Error())
}

func invalidImportID(id string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Invalid Import ID",
		fmt.Sprintf("The import ID %q is not of the form NAMESPACE/SERVICE_ACCOUNT, for example payments/api.", id))
}

func serviceAccountNotFound(namespace, name, host string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Service Account Not Found",
		fmt.Sprintf("ServiceAccount %s/%s does not exist in the cluster at %s, and create_service_account is false.\n\n"+
			"Create it first (kubectl create serviceaccount -n %s %s, or a kubernetes_service_account_v1 resource this "+
			"binding depends on), or set create_service_account = true to let this binding create it and delete it on destroy.",
			namespace, name, host, namespace, name))
}

func nothingToImport(namespace, name string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Nothing to Import",
		fmt.Sprintf("ServiceAccount %s/%s has no %s annotation, so there is no binding to import. "+
			"Remove the import and let terraform create the binding instead.", namespace, name, kube.RoleARNAnnotation))
}

func annotationConflict(ce *kube.ConflictError) diag.Diagnostic {
	var b strings.Builder
	fmt.Fprintf(&b, "ServiceAccount %s/%s: another field manager owns ", ce.Namespace, ce.Name)
	if len(ce.Conflicts) == 1 {
		b.WriteString("an annotation this binding sets to a different value:\n")
	} else {
		b.WriteString("annotations this binding sets to different values:\n")
	}
	for _, c := range ce.Conflicts {
		fmt.Fprintf(&b, "  - %s is %q, managed by %s; this binding wants %q\n",
			c.Annotation, c.Current, strings.Join(quote(c.Managers), ", "), c.Desired)
	}
	b.WriteString("\nNothing was changed. Either remove the annotation from the other tool (Helm values, " +
		"eksctl, kubectl annotate in a script), or set force_conflicts = true on this binding to take the " +
		"annotation over; the other tool may then set it back on its next run.")
	return diag.NewErrorDiagnostic("Service Account Annotation Owned by Another Manager", b.String())
}

// kubeAPIError explains a failed Kubernetes call. action is Title Case
// ("Annotate Service Account"), object is "ServiceAccount ns/name".
func kubeAPIError(ctx context.Context, action, object, host string, err error) diag.Diagnostic {
	summary := "Unable to " + action
	var ce *kube.ConflictError
	var netErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &ce):
		return annotationConflict(ce)
	case apierrors.IsForbidden(err):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s denied access to %s (RBAC); its message below names the verb and "+
				"resource. In the binding's namespace the provider's identity needs: get, list, patch on serviceaccounts "+
				"(plus create, delete with create_service_account); list, delete on pods; create on pods/eviction; get, "+
				"patch on deployments, statefulsets, daemonsets; get on replicasets; list on poddisruptionbudgets. "+
				"Grant them with a Role and RoleBinding, or configure another identity.\n\nError: %s",
			host, object, err))
	case apierrors.IsUnauthorized(err):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s rejected the provider's credentials while working on %s. "+
				"The token may have expired or the exec plugin may return credentials for another cluster; "+
				"check the kubernetes block of the provider.\n\nError: %s", host, object, err))
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The operation on %s did not finish within its timeout. Nothing partial is kept: the next apply "+
				"starts again. If the cluster is slow, raise the resource's timeouts.\n\nError: %s", object, err))
	case errors.As(err, &netErr) || errors.As(err, &urlErr):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"Could not reach the Kubernetes API server at %s while working on %s. Check the provider's kubernetes "+
				"settings (host, kubeconfig context) and that the cluster is running and reachable from here.\n\nError: %s",
			host, object, err))
	default:
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf("Unexpected error from the Kubernetes API server at %s for %s.\n\nError: %s",
			host, object, err))
	}
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
