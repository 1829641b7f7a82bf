// Command terraform-provider-irsa is a Terraform provider that binds IAM roles
// to Kubernetes ServiceAccounts on Amazon EKS (IRSA).
package main

import (
	"errors"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/irsa-dev/terraform-provider-irsa/internal/pluginlog"
	"github.com/irsa-dev/terraform-provider-irsa/internal/profiling"
	"github.com/irsa-dev/terraform-provider-irsa/internal/provider"
	"github.com/irsa-dev/terraform-provider-irsa/internal/rpcscope"
)

// Set by goreleaser's ldflags.
var (
	version = "dev"
	commit  = "none"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "set to true to run the provider with support for debuggers like delve")
	flag.Parse()

	// Under a debugger the logs go to the developer's terminal, not
	// through the CLI: keep them.
	if !debug {
		if err := pluginlog.QuietUnlessHeard(); err != nil {
			log.Fatal(err.Error())
		}
	}

	stopProfiling, err := profiling.Start()
	if err != nil {
		log.Fatal(err.Error())
	}
	// What providerserver.Serve does, with the framework's server wrapped
	// so that no RPC's context outlives the RPC (see rpcscope). Serve
	// returns when Terraform closes the plugin; the profiles are written
	// then.
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	err = tf6server.Serve("registry.terraform.io/irsa-dev/irsa", func() tfprotov6.ProviderServer {
		return rpcscope.Server(providerserver.NewProtocol6(provider.New(version, commit)())())
	}, opts...)
	if err := errors.Join(err, stopProfiling()); err != nil {
		log.Fatal(err.Error())
	}
}
