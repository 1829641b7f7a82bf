package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awseks"
	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
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
	// reads shares one plan's reads of each namespace between bindings.
	reads *kube.Snapshot

	// IAM, built on first use: configurations with trust_check = "off"
	// and no data source never load AWS settings.
	trustCheck  string
	awsSettings awsiam.Settings
	awsUnknown  bool
	iamOnce     sync.Once
	iam         *awsiam.Client
	iamErr      error
	credsOnce   sync.Once

	// EKS, for pod_identity bindings: built on first use, the cluster
	// name checked against the connection once.
	clusterName    string
	eksOnce        sync.Once
	eks            *awseks.Client
	eksErr         error
	eksClusterOnce sync.Once
	eksClusterErr  error

	// The cluster's issuer: configured, or discovered once.
	oidcIssuer string
	issuerOnce sync.Once
	issuerErr  error
}

// iamClient returns the provider instance's IAM client.
func (d *providerData) iamClient(ctx context.Context) (*awsiam.Client, error) {
	d.iamOnce.Do(func() {
		d.iam, d.iamErr = awsiam.New(ctx, d.awsSettings)
	})
	return d.iam, d.iamErr
}

// eksClient returns the provider instance's EKS client for cluster_name.
func (d *providerData) eksClient(ctx context.Context) (*awseks.Client, error) {
	d.eksOnce.Do(func() {
		if d.clusterName == "" {
			d.eksErr = errNoClusterName
			return
		}
		iam, err := d.iamClient(ctx)
		if err != nil {
			d.eksErr = err
			return
		}
		d.eks = awseks.New(iam.Config(), d.awsSettings.EKSEndpoint, d.clusterName)
	})
	return d.eks, d.eksErr
}

// errNoClusterName is a pod_identity binding with no cluster_name.
var errNoClusterName = errors.New("the provider's cluster_name is not set")

// checkEKSCluster checks, once per run, that the EKS cluster of
// cluster_name is the one the Kubernetes connection reaches: both report
// the same OIDC issuer.
func (d *providerData) checkEKSCluster(ctx context.Context) error {
	d.eksClusterOnce.Do(func() {
		client, err := d.eksClient(ctx)
		if err != nil {
			d.eksClusterErr = err
			return
		}
		eksIssuer, err := client.Issuer(ctx)
		if err != nil {
			d.eksClusterErr = &eksClusterError{cluster: d.clusterName, err: err}
			return
		}
		connected, err := d.issuer(ctx)
		if err != nil {
			// The IRSA trust check warns about an issuer it cannot
			// discover; nothing to compare with here.
			return
		}
		if strings.TrimSuffix(eksIssuer, "/") != strings.TrimSuffix(connected, "/") {
			d.eksClusterErr = &eksClusterError{cluster: d.clusterName, eksIssuer: eksIssuer, connected: connected}
		}
	})
	return d.eksClusterErr
}

// eksClusterError is a cluster_name that does not name the connected
// cluster, or whose cluster could not be described.
type eksClusterError struct {
	cluster              string
	eksIssuer, connected string
	err                  error
}

func (e *eksClusterError) Error() string {
	if e.err != nil {
		return "describe EKS cluster " + e.cluster + ": " + e.err.Error()
	}
	return fmt.Sprintf("EKS cluster %s has OIDC issuer %s, but the Kubernetes connection's is %s", e.cluster, e.eksIssuer, e.connected)
}

func (e *eksClusterError) Unwrap() error { return e.err }

// issuer returns the cluster's OIDC issuer, discovering it from the API
// server the first time when the provider does not configure it.
func (d *providerData) issuer(ctx context.Context) (string, error) {
	d.issuerOnce.Do(func() {
		if d.oidcIssuer != "" {
			return
		}
		if d.kube == nil {
			d.issuerErr = errors.New("no Kubernetes connection to discover it from; set oidc_issuer in the provider")
			if d.kubeErr != nil {
				d.issuerErr = fmt.Errorf("%w (%w)", d.issuerErr, d.kubeErr)
			}
			return
		}
		d.oidcIssuer, d.issuerErr = kube.DiscoverIssuer(ctx, d.kube)
	})
	return d.oidcIssuer, d.issuerErr
}

// providerDataFrom is the Configure step of every resource and data source:
// nil until the provider is configured (validate), a bug diagnostic when the
// type is wrong.
func providerDataFrom(v any) (*providerData, diag.Diagnostics) {
	var diags diag.Diagnostics
	if v == nil {
		return nil, diags
	}
	data, ok := v.(*providerData)
	if !ok {
		diags.Append(unexpectedConfigureType(v))
	}
	return data, diags
}

// conn returns the connection to the cluster, or a diagnostic that says why
// there is none.
func (d *providerData) conn() (kube.Conn, diag.Diagnostics) {
	var diags diag.Diagnostics
	if d.kube == nil {
		if d.kubeErr != nil {
			diags.Append(kubeNotConfigured(d.kubeErr))
		} else {
			diags.AddError("Kubernetes Connection Not Configured",
				"The provider's kubernetes settings are still unknown. This is always a bug in the provider when it happens during apply; please report it.")
		}
		return kube.Conn{}, diags
	}
	return kube.Conn{Client: d.kube, FieldManager: d.fieldManager}, diags
}
