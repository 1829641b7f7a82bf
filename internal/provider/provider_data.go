package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// providerData is built once per provider instance in Configure and shared
// by every resource and data source: one Kubernetes client, one cache.
type providerData struct {
	kube     kubernetes.Interface
	kubeHost string
	// kubeErr is why kube is nil. It is reported by what needs the cluster,
	// not by Configure, so configurations that do not need it still plan.
	kubeErr error
	// kubeUnknown is set during plan when the kubernetes settings depend
	// on resources not created yet: cluster checks wait for apply.
	kubeUnknown  bool
	fieldManager string
}

// serviceAccounts returns the ServiceAccount client, or a diagnostic that
// says why there is none.
func (d *providerData) serviceAccounts() (kube.ServiceAccounts, diag.Diagnostics) {
	var diags diag.Diagnostics
	if d.kube == nil {
		if d.kubeErr != nil {
			diags.Append(kubeNotConfigured(d.kubeErr))
		} else {
			diags.AddError("Kubernetes Connection Not Configured",
				"The provider's kubernetes settings are still unknown. This is always a bug in the provider when it happens during apply; please report it.")
		}
		return kube.ServiceAccounts{}, diags
	}
	return kube.ServiceAccounts{Client: d.kube, FieldManager: d.fieldManager}, diags
}
