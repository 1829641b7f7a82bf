package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// kubernetesModel is the provider's kubernetes block. Names and environment
// variables match the kubernetes and helm providers.
type kubernetesModel struct {
	ConfigPath            types.String   `tfsdk:"config_path"`
	ConfigPaths           []types.String `tfsdk:"config_paths"`
	ConfigContext         types.String   `tfsdk:"config_context"`
	ConfigContextAuthInfo types.String   `tfsdk:"config_context_auth_info"`
	ConfigContextCluster  types.String   `tfsdk:"config_context_cluster"`
	Host                  types.String   `tfsdk:"host"`
	ClusterCACertificate  types.String   `tfsdk:"cluster_ca_certificate"`
	ClientCertificate     types.String   `tfsdk:"client_certificate"`
	ClientKey             types.String   `tfsdk:"client_key"`
	Token                 types.String   `tfsdk:"token"`
	Insecure              types.Bool     `tfsdk:"insecure"`
	TLSServerName         types.String   `tfsdk:"tls_server_name"`
	ProxyURL              types.String   `tfsdk:"proxy_url"`
	Exec                  *execModel     `tfsdk:"exec"`
	QPS                   types.Float64  `tfsdk:"qps"`
	Burst                 types.Int64    `tfsdk:"burst"`
}

type execModel struct {
	APIVersion types.String            `tfsdk:"api_version"`
	Command    types.String            `tfsdk:"command"`
	Args       []types.String          `tfsdk:"args"`
	Env        map[string]types.String `tfsdk:"env"`
}

func kubernetesSchema() schema.SingleNestedAttribute {
	str := func(desc, env string, sensitive bool) schema.StringAttribute {
		if env != "" {
			desc += " Can also be set with `" + env + "`."
		}
		return schema.StringAttribute{MarkdownDescription: desc, Optional: true, Sensitive: sensitive}
	}
	return schema.SingleNestedAttribute{
		MarkdownDescription: "How to reach the cluster. The same settings and environment variables as the " +
			"`kubernetes` and `helm` providers.",
		Optional: true,
		Attributes: map[string]schema.Attribute{
			"config_path": str("Path to a kubeconfig file.", "KUBE_CONFIG_PATH`, then `KUBECONFIG", false),
			"config_paths": schema.ListAttribute{
				MarkdownDescription: "Paths to kubeconfig files, merged as kubectl merges `KUBECONFIG`. Can also be set with `KUBE_CONFIG_PATHS` (colon-separated).",
				ElementType:         types.StringType,
				Optional:            true,
			},
			"config_context":           str("Context of the kubeconfig to use instead of its current context.", "KUBE_CTX", false),
			"config_context_auth_info": str("User of the kubeconfig to use with the context.", "KUBE_CTX_AUTH_INFO", false),
			"config_context_cluster":   str("Cluster of the kubeconfig to use with the context.", "KUBE_CTX_CLUSTER", false),
			"host":                     str("URL of the API server, for example `https://ABC.gr7.us-east-1.eks.amazonaws.com`.", "KUBE_HOST", false),
			"cluster_ca_certificate":   str("PEM-encoded CA bundle of the API server.", "KUBE_CLUSTER_CA_CERT_DATA", false),
			"client_certificate":       str("PEM-encoded client certificate.", "KUBE_CLIENT_CERT_DATA", false),
			"client_key":               str("PEM-encoded client key.", "KUBE_CLIENT_KEY_DATA", true),
			"token":                    str("Bearer token.", "KUBE_TOKEN", true),
			"insecure": schema.BoolAttribute{
				MarkdownDescription: "Skip verification of the API server's certificate. Can also be set with `KUBE_INSECURE`.",
				Optional:            true,
			},
			"qps": schema.Float64Attribute{
				MarkdownDescription: fmt.Sprintf("Requests per second the provider sends to the API server, sustained (client-side rate "+
					"limit). Default: %v. A plan reads each namespace once (two requests per namespace); an apply makes two to three "+
					"requests per binding plus those of the pods it recycles, so at the default Terraform's `-parallelism`, not the "+
					"limit, paces an apply. Lower it to spare a busy control plane; the API server's own priority and fairness still "+
					"applies, and its 429 responses are retried after the Retry-After they carry.", kube.DefaultQPS),
				Optional:   true,
				Validators: []validator.Float64{float64validator.AtLeast(1)},
			},
			"burst": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Requests the provider may send at once above `qps` before the limit applies. Default: %d.", kube.DefaultBurst),
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
			},
			"tls_server_name": str("Server name to verify the API server's certificate against.", "KUBE_TLS_SERVER_NAME", false),
			"proxy_url":       str("URL of a proxy to reach the API server through.", "KUBE_PROXY_URL", false),
			"exec": schema.SingleNestedAttribute{
				MarkdownDescription: "A credential plugin, such as `aws eks get-token --cluster-name NAME`.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"api_version": schema.StringAttribute{
						MarkdownDescription: "API version of the plugin's ExecCredential, for example `client.authentication.k8s.io/v1beta1`.",
						Required:            true,
					},
					"command": schema.StringAttribute{MarkdownDescription: "Command to run.", Required: true},
					"args": schema.ListAttribute{
						MarkdownDescription: "Arguments of the command.", ElementType: types.StringType, Optional: true,
					},
					"env": schema.MapAttribute{
						MarkdownDescription: "Environment variables of the command. Sensitive: they often carry credentials.",
						ElementType:         types.StringType, Optional: true, Sensitive: true,
					},
				},
			},
		},
	}
}

// connectionConfig applies the environment defaults: an attribute wins over
// its environment variable.
func (m *kubernetesModel) connectionConfig() kube.ConnectionConfig {
	if m == nil {
		m = &kubernetesModel{}
	}
	pick := func(v types.String, envs ...string) string {
		if !v.IsNull() {
			return v.ValueString()
		}
		for _, e := range envs {
			if s := os.Getenv(e); s != "" {
				return s
			}
		}
		return ""
	}
	c := kube.ConnectionConfig{
		Context:              pick(m.ConfigContext, "KUBE_CTX"),
		ContextAuthInfo:      pick(m.ConfigContextAuthInfo, "KUBE_CTX_AUTH_INFO"),
		ContextCluster:       pick(m.ConfigContextCluster, "KUBE_CTX_CLUSTER"),
		Host:                 pick(m.Host, "KUBE_HOST"),
		ClusterCACertificate: pick(m.ClusterCACertificate, "KUBE_CLUSTER_CA_CERT_DATA"),
		ClientCertificate:    pick(m.ClientCertificate, "KUBE_CLIENT_CERT_DATA"),
		ClientKey:            pick(m.ClientKey, "KUBE_CLIENT_KEY_DATA"),
		Token:                pick(m.Token, "KUBE_TOKEN"),
		TLSServerName:        pick(m.TLSServerName, "KUBE_TLS_SERVER_NAME"),
		ProxyURL:             pick(m.ProxyURL, "KUBE_PROXY_URL"),
	}
	if !m.QPS.IsNull() {
		c.QPS = float32(m.QPS.ValueFloat64())
	}
	if !m.Burst.IsNull() {
		c.Burst = int(m.Burst.ValueInt64())
	}
	if !m.Insecure.IsNull() {
		c.Insecure = m.Insecure.ValueBool()
	} else if b, err := strconv.ParseBool(os.Getenv("KUBE_INSECURE")); err == nil {
		c.Insecure = b
	}

	if p := pick(m.ConfigPath, "KUBE_CONFIG_PATH"); p != "" {
		c.ConfigPaths = append(c.ConfigPaths, p)
	}
	if m.ConfigPaths != nil {
		for _, p := range m.ConfigPaths {
			c.ConfigPaths = append(c.ConfigPaths, p.ValueString())
		}
	} else if env := os.Getenv("KUBE_CONFIG_PATHS"); env != "" {
		c.ConfigPaths = append(c.ConfigPaths, filepath.SplitList(env)...)
	}
	// KUBECONFIG is the last resort, and only when the connection is not
	// given explicitly: its credentials would otherwise mix with them.
	explicit := c.Host != "" || c.Token != "" || c.ClientCertificate != "" || m.Exec != nil
	if len(c.ConfigPaths) == 0 && !explicit {
		if env := os.Getenv("KUBECONFIG"); env != "" {
			for _, p := range filepath.SplitList(env) {
				if strings.TrimSpace(p) != "" {
					c.ConfigPaths = append(c.ConfigPaths, p)
				}
			}
		}
	}

	if m.Exec != nil {
		ex := &kube.ExecConfig{APIVersion: m.Exec.APIVersion.ValueString(), Command: m.Exec.Command.ValueString(), Env: map[string]string{}}
		for k, v := range m.Exec.Env {
			ex.Env[k] = v.ValueString()
		}
		for _, a := range m.Exec.Args {
			ex.Args = append(ex.Args, a.ValueString())
		}
		c.Exec = ex
	}
	return c
}
