// Command terraform-provider-irsa is a Terraform provider that binds IAM roles
// to Kubernetes ServiceAccounts on Amazon EKS (IRSA).
package main

import (
	"context"
	"errors"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/irsa-dev/terraform-provider-irsa/internal/pluginlog"
	"github.com/irsa-dev/terraform-provider-irsa/internal/profiling"
	"github.com/irsa-dev/terraform-provider-irsa/internal/provider"
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
	// Serve returns when Terraform closes the plugin; the profiles are
	// written then.
	err = providerserver.Serve(context.Background(), provider.New(version, commit), providerserver.ServeOpts{
		Address:         "registry.terraform.io/irsa-dev/irsa",
		Debug:           debug,
		ProtocolVersion: 6,
	})
	if err := errors.Join(err, stopProfiling()); err != nil {
		log.Fatal(err.Error())
	}
}
