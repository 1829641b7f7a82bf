// Command schemafloor is the benchmark's floor for this provider's plans: a
// provider plugin with terraform-provider-irsa's schemas (the provider's
// and the binding resource's, read from the provider itself) whose
// resources do nothing. Its Read changes nothing and it has no ModifyPlan or
// ValidateConfig; Create and Update store the plan.
//
// What a plan costs through it is what Terraform and terraform-plugin-framework
// spend on instances of this schema: decoding and encoding the state, the
// attribute plan modifiers and validators, the framework's walks of the
// schema. That grows with the schema (a no-op provider with three
// attributes, hashicorp/time's time_static, is the floor for any provider),
// so this is the floor for ours: a plan's cost above it is our own work.
//
// It is served like the provider (the same rpcscope wrapper), under the
// address irsa-dev/irsa-floor, with the local name irsa, so a configuration
// of irsa_service_account_binding resources runs on it unchanged.
package main

import (
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/irsa-dev/terraform-provider-irsa/internal/pluginlog"
	"github.com/irsa-dev/terraform-provider-irsa/internal/provider"
	"github.com/irsa-dev/terraform-provider-irsa/internal/rpcscope"
)

func main() {
	if err := pluginlog.QuietUnlessHeard(); err != nil {
		log.Fatal(err)
	}
	err := tf6server.Serve("registry.terraform.io/irsa-dev/irsa-floor", func() tfprotov6.ProviderServer {
		return rpcscope.Server(providerserver.NewProtocol6(newFloor(provider.New("floor", "none")()))())
	})
	if err != nil {
		log.Fatal(err)
	}
}
