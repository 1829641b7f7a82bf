// Package provider implements the irsa Terraform provider: its configuration,
// resources and data sources. It reads plans and state, calls the domain
// packages (kube, trust, awsiam) and writes state; it holds no cluster or IAM
// logic of its own.
package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

var _ provider.Provider = (*irsaProvider)(nil)

// New returns a constructor for the provider, as providerserver.Serve wants.
func New(version, commit string) func() provider.Provider {
	return func() provider.Provider {
		return &irsaProvider{version: version, commit: commit}
	}
}

type irsaProvider struct {
	version string
	commit  string
}

func (p *irsaProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "irsa"
	resp.Version = p.version
}

func (p *irsaProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Binds AWS IAM roles to Kubernetes ServiceAccounts on Amazon EKS (IRSA).",
	}
}

func (p *irsaProvider) Configure(_ context.Context, _ provider.ConfigureRequest, _ *provider.ConfigureResponse) {
}

func (p *irsaProvider) Resources(_ context.Context) []func() resource.Resource {
	return nil
}

func (p *irsaProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return nil
}
