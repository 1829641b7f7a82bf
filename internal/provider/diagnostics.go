package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// One constructor per class of failure. A summary names the action that
// failed; a detail names the object, says what was expected and what was
// found, says how to fix it, and ends with the original error.

func unexpectedConfigureType(got any) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Unexpected Provider Data Type",
		fmt.Sprintf("Expected *providerData, got %T. This is always a bug in the provider; please report it.", got))
}

// kubeNotConfigured says why the provider has no Kubernetes client, with
// the fix for that cause.
func kubeNotConfigured(err error) diag.Diagnostic {
	fix := "Set kubernetes.config_path (or KUBE_CONFIG_PATH/KUBECONFIG) to a kubeconfig, or kubernetes.host with a " +
		"token, client certificate or exec plugin."
	var noContext *kube.ContextNotFoundError
	switch {
	case errors.As(err, &noContext):
		fix = fmt.Sprintf("The kubeconfig has no context %q. Set kubernetes.config_context (or KUBE_CTX) to one of its "+
			"contexts (kubectl config get-contexts lists them), or remove it to use the kubeconfig's current context.",
			noContext.Context)
	case errors.Is(err, fs.ErrNotExist):
		fix = "A kubeconfig file the provider was given does not exist. Check kubernetes.config_path and config_paths " +
			"(and KUBE_CONFIG_PATH, KUBE_CONFIG_PATHS, KUBECONFIG): on EKS, aws eks update-kubeconfig --name CLUSTER " +
			"--kubeconfig PATH writes one."
	}
	return diag.NewErrorDiagnostic("Kubernetes Connection Not Configured",
		"The provider could not build a Kubernetes client configuration. "+fix+"\n\nError: "+err.Error())
}

func invalidImportID(id string, err error) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Invalid Import ID",
		fmt.Sprintf("The import ID %q is not of the form NAMESPACE/SERVICE_ACCOUNT: %s. Give the namespace and the "+
			"ServiceAccount's name as the cluster shows them, separated by '/', for example payments/api.", id, err))
}

func serviceAccountNotFound(namespace, name, host string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Service Account Not Found",
		fmt.Sprintf("ServiceAccount %s/%s does not exist in the cluster at %s, and create_service_account is false. "+
			"Nothing was changed.\n\nCheck the namespace and name, create it first (kubectl create serviceaccount -n %s %s, "+
			"or a kubernetes_service_account_v1 resource this binding depends on), or set create_service_account = true "+
			"to let this binding create it and delete it on destroy.",
			namespace, name, host, namespace, name))
}

// namespaceNotFound is a ServiceAccount to create in a namespace that does
// not exist: a binding creates ServiceAccounts, never namespaces.
func namespaceNotFound(namespace, name, host string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Namespace Not Found",
		fmt.Sprintf("Namespace %s does not exist in the cluster at %s, so ServiceAccount %s/%s cannot be created in it. "+
			"Nothing was changed.\n\ncreate_service_account creates the ServiceAccount, never its namespace: check the "+
			"namespace's name, or create the namespace first (kubectl create namespace %s, or a kubernetes_namespace_v1 "+
			"resource this binding references).", namespace, host, namespace, name, namespace))
}

// serviceAccountNotFoundYet is the plan-time side of serviceAccountNotFound:
// the ServiceAccount may well be created earlier in the same apply.
func serviceAccountNotFoundYet(namespace, name, host string) diag.Diagnostic {
	return diag.NewWarningDiagnostic("Service Account Not Found Yet",
		fmt.Sprintf("ServiceAccount %s/%s does not exist in the cluster at %s yet. That is expected when it is created in "+
			"this same apply (a kubernetes_service_account_v1, a Helm release, a module): make sure the binding comes "+
			"after it, by referencing its name or with depends_on. Apply checks again, and fails without changing "+
			"anything if it is still missing.", namespace, name, host))
}

// otherCluster stops every operation on a binding whose state says it
// lives in another cluster than the one the provider is connected to.
func otherCluster(namespace, name, recorded, connected, host string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Connected to a Different Cluster",
		fmt.Sprintf("The binding of ServiceAccount %s/%s was made in the cluster whose OIDC issuer is\n  %s\nbut the "+
			"provider is connected to %s, whose issuer is\n  %s\n\nNothing was read or changed, and the binding stays in "+
			"state. Point the provider's kubernetes settings (config_path, config_context, host) at the binding's cluster. "+
			"If the binding really moved to this cluster, remove it from state (terraform state rm) and import it here.",
			namespace, name, recorded, host, connected))
}

// serviceAccountHeld is a second binding of a ServiceAccount, with other
// annotations than the binding that holds it.
func serviceAccountHeld(he *binding.HeldError, desired map[string]string) diag.Diagnostic {
	var b strings.Builder
	fmt.Fprintf(&b, "ServiceAccount %s/%s is already bound by another irsa_service_account_binding (binding ID %s, in this "+
		"configuration or another Terraform state), with other annotations than this one asks for:\n", he.Namespace, he.Name, he.Holder)
	for _, k := range irsa.BindingAnnotations {
		cur, hasCur := he.Current[k]
		want, hasWant := desired[k]
		if hasCur == hasWant && cur == want {
			continue
		}
		fmt.Fprintf(&b, "  - %s is %s there; this binding wants %s\n", k, quoteOrUnset(cur, hasCur), quoteOrUnset(want, hasWant))
	}
	b.WriteString("\nA ServiceAccount has one binding: two would take the role from each other, and restart the pods, on every " +
		"apply. Nothing was changed.\n\nTo move the binding into this configuration: in the one that holds it, remove it from " +
		"state without destroying it (terraform state rm ADDRESS, or a removed block with lifecycle { destroy = false }), then " +
		"import it here (terraform import ADDRESS NAMESPACE/NAME, or an import block): the import takes it over. If the " +
		"configuration that held it is gone for good, import it here the same way: the import takes it over from the binding that is gone.")
	return diag.NewErrorDiagnostic("Service Account Already Bound", b.String())
}

func quoteOrUnset(v string, ok bool) string {
	if !ok {
		return "unset"
	}
	return strconv.Quote(v)
}

func nothingToImport(namespace, name string) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Nothing to Import",
		fmt.Sprintf("ServiceAccount %s/%s has no %s annotation, so there is no binding to import. "+
			"Remove the import and let terraform create the binding instead.", namespace, name, irsa.RoleARNAnnotation))
}

func annotationConflict(ce *irsa.ConflictError) diag.Diagnostic {
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
	var ce *irsa.ConflictError
	var netErr *net.OpError
	var urlErr *url.Error
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ce):
		return annotationConflict(ce)
	case apierrors.IsForbidden(err):
		if p, ok := kube.DeniedPermission(err); ok {
			return diag.NewErrorDiagnostic(summary, fmt.Sprintf("The Kubernetes API server at %s refused a request for %s. %s\n\nError: %s",
				host, object, deniedDetail(p), err))
		}
		// An admission webhook or policy, or an authorizer other than
		// RBAC: its own words say what it refused.
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s refused a request for %s; its message below says what and why. If it names "+
				"a missing permission, grant it to the provider's identity with a Role and RoleBinding in the namespace "+
				"(a ClusterRole and ClusterRoleBinding for a cluster-wide one). %s\n\nError: %s",
			host, object, guidePointer, err))
	case apierrors.IsUnauthorized(err):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s rejected the provider's credentials while working on %s. "+
				"The token may have expired or the exec plugin may return credentials for another cluster; "+
				"check the kubernetes block of the provider.\n\nError: %s", host, object, err))
	case ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &urlErr) && urlErr.Timeout())):
		// The operation has time left: one request ran out of its own.
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s did not answer a request about %s within %s. It is overloaded or hung, or "+
				"something in between (a proxy, a load balancer) holds the connection. Check the cluster's health "+
				"(kubectl get --raw /readyz), then run Terraform again.\n\nError: %s", host, object, kube.RequestTimeout, err))
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The operation on %s did not finish within its timeout. Nothing partial is kept: the next apply "+
				"starts again. If the cluster is slow, raise the resource's timeouts.\n\nError: %s", object, err))
	case isExecPluginError(err):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The exec credential plugin of the provider's kubernetes settings failed, so no request for %s reached the "+
				"Kubernetes API server at %s. Run the plugin's command yourself to see its message and fix what it reports "+
				"(for aws eks get-token: expired or missing AWS credentials, such as an SSO session to renew with aws sso "+
				"login, or a wrong cluster name, region or profile), or check the exec block's command, args and env.\n\nError: %s",
			object, host, err))
	case errors.As(err, &certErr):
		return diag.NewErrorDiagnostic(summary, fmt.Sprintf(
			"The Kubernetes API server at %s presented a certificate the provider does not trust while working on %s: it "+
				"is not signed by the configured CA, or not issued for that host name. Set kubernetes.cluster_ca_certificate "+
				"(or the kubeconfig's certificate-authority-data) to the cluster's CA in PEM (on EKS: aws eks describe-cluster "+
				"--name CLUSTER --query cluster.certificateAuthority.data --output text | base64 -d), and check that host "+
				"(or tls_server_name) is the name the certificate is issued for.\n\nError: %s", host, object, err))
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

func isDenied(err error) bool {
	_, ok := kube.DeniedPermission(err)
	return ok
}

// isExecPluginError reports whether err comes from the exec credential
// plugin. client-go flattens the plugin's error with %v, so only its
// message says so.
func isExecPluginError(err error) bool {
	return strings.Contains(err.Error(), "getting credentials: exec:")
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// podsLeftAlone lists stale pods the strategy does not touch. role is empty
// on destroy.
func podsLeftAlone(object, role string, strategy recycle.Strategy, left []recycle.LeftAlone) diag.Diagnostic {
	what := "the role's credentials"
	if role != "" {
		what = "the credentials of " + role
	}
	return diag.NewWarningDiagnostic("Pods Left Without Credentials",
		fmt.Sprintf("These pods of %s do not carry %s, and restart strategy %q leaves them alone:\n%s",
			object, what, strategy, leftAloneList(left)))
}

func gateSkipped(object string, why error) diag.Diagnostic {
	fix := "An admission policy or webhook rejected the probe pod (its name starts with irsa-readiness-probe-): allow it " +
		"to have the check."
	if p, ok := kube.DeniedPermission(why); ok {
		fix = "The dry run creates nothing, but it needs the permission a real create would. " + deniedDetail(p)
	}
	return diag.NewWarningDiagnostic("Pod Identity Webhook Check Skipped",
		fmt.Sprintf("Before recycling the pods of %s, the provider asks the API server for a dry-run create of a pod that runs "+
			"as the ServiceAccount, to see whether the pod identity webhook would inject the role now. That was not possible, so "+
			"recycling went ahead and relied on checking the replacements instead.\n\n%s\n\nError: %s", object, fix, why))
}

// guidePointer ends every explanation of a missing permission.
const guidePointer = "The Least Privilege guide of the provider's documentation lists every permission it needs, by mode: " +
	"plan only, each restart strategy, create_service_account, the readiness check and issuer discovery."

// deniedDetail says which permission the provider's identity lacks and the
// RBAC rule that grants it, ready to paste.
func deniedDetail(p kube.Permission) string {
	who := "The provider's identity"
	if p.User != "" {
		who = fmt.Sprintf("The provider's identity (%q)", p.User)
	}
	return fmt.Sprintf("%s lacks %s. Grant it with %s:\n\n%s\n\n%s", who, p, p.Grant(), indent(p.Rule(), "    "), guidePointer)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// uncheckedNote says what a degraded check could not read and, when a
// permission was missing, the rule that grants it.
func uncheckedNote(u recycle.Unchecked) string {
	p, ok := kube.DeniedPermission(u.Err)
	if !ok {
		return u.String()
	}
	return fmt.Sprintf("%s: the provider's identity lacks %s. Grant it with %s:\n\n%s", u.What, p, p.Grant(), indent(p.Rule(), "    "))
}

// annotationCheckSkipped is the plan-time dry run of the annotations being
// refused: expected of a plan-only identity, which may not patch.
func annotationCheckSkipped(object string, err error) diag.Diagnostic {
	fix := "To have the check at plan time, allow the identity that plans to patch ServiceAccounts."
	if p, ok := kube.DeniedPermission(err); ok {
		fix = "To have the check at plan time, grant the identity that plans this permission. " + deniedDetail(p)
	}
	return diag.NewWarningDiagnostic("Annotation Conflict Check Skipped",
		fmt.Sprintf("During plan the provider asks the API server for a dry-run server-side apply of the annotations of %s, to "+
			"find annotations another field manager owns before apply does. The API server refused the dry run, which is "+
			"expected of a plan-only identity, so the check was skipped: apply still fails without changing anything if "+
			"another manager owns them.\n\n%s\n\nError: %s", object, fix, err))
}

// issuerNotDiscovered warns that the cluster's issuer could not be read:
// bindings then record none, so nothing stops a plan against another
// cluster, and the trust check cannot run.
func issuerNotDiscovered(host string, err error) diag.Diagnostic {
	fix := "check that the API server serves /.well-known/openid-configuration (kubectl get --raw /.well-known/openid-configuration)."
	if p, ok := kube.DeniedPermission(err); ok {
		fix = "let the provider read it: Kubernetes' default RBAC grants this URL to service accounts only, not to users. " + deniedDetail(p)
	}
	return diag.NewWarningDiagnostic("OIDC Issuer Not Discovered",
		fmt.Sprintf("The provider could not read the cluster's OIDC issuer from the API server at %s. Without it, bindings "+
			"record no oidc_issuer, so a later plan against another cluster is not stopped, and the trust check cannot run.\n\n"+
			"Set oidc_issuer in the provider (aws eks describe-cluster --query cluster.identity.oidc.issuer), which needs no "+
			"permission, or %s\n\nError: %s", host, fix, err))
}

// recycleError explains recycling that did not finish after the annotations
// were applied.
func recycleError(ns, name string, strategy recycle.Strategy, err error) diag.Diagnostic {
	var notDone *recycle.NotDoneError
	var gate *recycle.GateError
	var failed *recycle.RolloutFailedError
	object := "ServiceAccount " + ns + "/" + name
	switch {
	case errors.As(err, &gate):
		return webhookNotReady(object, gate)
	case errors.As(err, &failed):
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Rollout Failed",
			fmt.Sprintf("The binding of %s is in place, but the rollout of %s failed: it %s. Waiting longer will not help: fix the workload "+
				"(kubectl rollout status and kubectl describe show why), then apply again; the next plan lists the pods still "+
				"without credentials in stale_pods.", object, failed.Workload, failed.Reason))
	case errors.Is(err, context.Canceled):
		return diag.NewErrorDiagnostic("Recycling Interrupted",
			fmt.Sprintf("The binding of %s is in place, but recycling its pods was interrupted. A rollout already started goes on by "+
				"itself; nothing else was started. The next plan lists the pods still without credentials in stale_pods, "+
				"and apply finishes the job (waiting for a rollout under way instead of starting another).", object))
	case errors.Is(err, recycle.ErrEvictionBlocked):
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Eviction Blocked",
			fmt.Sprintf("The binding of %s is in place, but evicting its stale pods kept failing until the timeout. "+
				"Loosen the budget, raise the timeout, or use restart.strategy = \"rollout\". The next plan lists the "+
				"pods in stale_pods, and apply tries again.\n\nError: %s", object, err))
	case errors.As(err, &notDone) && notDone.Unreachable != nil:
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Kubernetes API Server Unreachable",
			fmt.Sprintf("The binding of %s is in place, but the Kubernetes API server stopped answering while the provider waited for "+
				"its pods to be recycled, and was still not answering at the timeout. A rollout already started goes on by "+
				"itself once the API server is back. When it is, run apply again: the next plan lists the pods not confirmed "+
				"in stale_pods, and apply waits for a rollout under way instead of starting another. If the API server is "+
				"only slow to come back (a control-plane upgrade), raise the resource's timeouts.\n\nLast error: %s",
				object, notDone.Unreachable))
	case isDenied(err):
		p, _ := kube.DeniedPermission(err)
		return diag.NewErrorDiagnostic("Unable to Recycle Pods",
			fmt.Sprintf("The binding of %s is in place, but the API server refused a step of recycling its pods with restart strategy %q. %s\n\n"+
				"The next plan lists the pods still without credentials in stale_pods, and apply tries again.\n\nError: %s",
				object, strategy, deniedDetail(p), err))
	case errors.As(err, &notDone):
		return diag.NewErrorDiagnostic("Unable to Recycle Pods: Not Done Before the Timeout",
			fmt.Sprintf("The binding of %s is in place, but with restart strategy %q these were not done:\n  - %s\n\n"+
				"The next plan lists the remaining pods in stale_pods, and apply recycles them again. If pods keep coming "+
				"up without credentials, check that the pod identity webhook is running.\n\nError: %s",
				object, strategy, strings.Join(notDone.Pending, "\n  - "), notDone.Err))
	default:
		return diag.NewErrorDiagnostic("Unable to Recycle Pods",
			fmt.Sprintf("The binding of %s is in place, but recycling its pods failed. The next plan lists them in "+
				"stale_pods, and apply tries again.\n\nError: %s", object, err))
	}
}

func webhookNotReady(object string, g *recycle.GateError) diag.Diagnostic {
	var why string
	switch g.Cause {
	case recycle.GateNotMutated:
		why = "The webhook injected nothing. It is down (EKS runs it with failurePolicy Ignore, so pods start without " +
			"credentials), not registered (kubectl get mutatingwebhookconfigurations), or its selectors exclude this namespace or pod."
	case recycle.GateNotRegistered:
		why = "No mutating webhook for pod creation is registered in the cluster: install the EKS pod identity webhook " +
			"(on EKS it is part of the control plane; elsewhere, amazon-eks-pod-identity-webhook)."
	case recycle.GateExcluded:
		why = "The pod identity webhook is registered, but its selectors leave this namespace or these pods out. " +
			"Change the namespace's labels or the webhook's namespaceSelector/objectSelector."
	case recycle.GateStaleCache:
		why = "The webhook still injects what the ServiceAccount said before: its ServiceAccount cache has not caught up. " +
			"Check the webhook's logs and that it can watch ServiceAccounts."
	case recycle.GateUnreachable:
		why = "The API server could not call the webhook. Check that its pods and Service are up."
	case recycle.GateSuperseded:
		why = "The webhook gives that mechanism precedence: neither waiting nor restarting gives pods this role."
	}
	detail := fmt.Sprintf("The binding of %s is in place, but a dry-run pod created as the ServiceAccount shows that the pod identity webhook "+
		"would not give new pods the role's credentials: %s.\n\n%s\n\nNo pod was restarted: replacements would start without "+
		"credentials. Fix the webhook, then apply again; the next plan lists the pods in stale_pods.",
		object, g.Found, why)
	for _, u := range g.Unchecked {
		detail += "\n\nThe cause could be narrowed down further: " + uncheckedNote(u)
	}
	if g.Err != nil {
		detail += "\n\nError: " + g.Err.Error()
	}
	return diag.NewErrorDiagnostic("Unable to Recycle Pods: Pod Identity Webhook Not Ready", detail)
}

// createdDespite turns a recycling error during create into a warning, and
// says why: an error would make Terraform taint the binding, and the next
// plan would replace it.
func createdDespite(d diag.Diagnostic) diag.Diagnostic {
	return diag.NewWarningDiagnostic(d.Summary(), d.Detail()+"\n\nThe binding is created and saved in state with the "+
		"pods still to recycle in stale_pods. This is a warning rather than an error so that Terraform does not mark the "+
		"binding tainted and replace it: the next plan shows an in-place update, and apply recycles what is still stale "+
		"(terraform plan -detailed-exitcode exits 2 until then).")
}
