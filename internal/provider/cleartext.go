package provider

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"k8s.io/client-go/rest"
)

// cleartext reports whether endpoint is a plain-http URL to another machine.
// Loopback is exempt: nothing leaves the host, and local emulators (the
// test environment, LocalStack, moto) serve plain http there.
func cleartext(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// kubeCleartextWarning warns when the provider would talk to the API server
// unencrypted: bearer tokens travel as they are.
func kubeCleartextWarning(cfg *rest.Config) diag.Diagnostics {
	var diags diag.Diagnostics
	// The URL client-go will use: a host without a scheme is http unless
	// TLS settings are given.
	if u, _, err := rest.DefaultServerUrlFor(cfg); err == nil && cleartext(u.String()) {
		diags.AddWarning("Kubernetes API Server Over Plain HTTP", fmt.Sprintf(
			"The provider reaches the Kubernetes API server at %s over plain http: its credentials (a bearer token, "+
				"or what an exec plugin returns) and every ServiceAccount it reads or changes travel in clear text, "+
				"and anyone on the way can read or alter them. Use the server's https:// URL with "+
				"cluster_ca_certificate (kubernetes.host, or the kubeconfig's server).", u.Redacted()))
	}
	return diags
}

// awsCleartextWarnings warns about plain-http IAM and STS endpoints, set in
// the aws block or in the environment variables the AWS SDK reads.
func awsCleartextWarnings(aws *awsModel) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, ep := range []struct{ name, attr, value string }{
		{"IAM", "aws.iam_endpoint", aws.endpoint("iam")},
		{"STS", "aws.sts_endpoint", aws.endpoint("sts")},
	} {
		if !cleartext(ep.value) {
			continue
		}
		diags.AddWarning("AWS Endpoint Over Plain HTTP", fmt.Sprintf(
			"The %s endpoint %s is plain http: the provider's requests are signed, but their session token and the "+
				"answers (roles, trust policies) travel in clear text, and anyone on the way can read them or alter the "+
				"answers. Use an https:// endpoint (%s, or AWS_ENDPOINT_URL_%s / AWS_ENDPOINT_URL); only a local "+
				"emulator on loopback is exempt from this warning.", ep.name, ep.value, ep.attr, ep.name))
	}
	return diags
}

// endpoint is the endpoint the AWS SDK will use for service ("iam" or
// "sts"): the attribute, else AWS_ENDPOINT_URL_<SERVICE>, else
// AWS_ENDPOINT_URL; empty for the SDK's default (https).
func (m *awsModel) endpoint(service string) string {
	if m != nil {
		attr := m.IAMEndpoint
		if service == "sts" {
			attr = m.STSEndpoint
		}
		if v := attr.ValueString(); v != "" {
			return v
		}
	}
	if v := os.Getenv("AWS_ENDPOINT_URL_" + strings.ToUpper(service)); v != "" {
		return v
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}
