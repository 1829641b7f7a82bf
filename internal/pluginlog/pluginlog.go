// Package pluginlog turns the plugin's own logging off when nobody will read
// it.
//
// terraform-plugin-log starts every logger of a provider at TRACE unless an
// environment variable sets its level, and leaves the filtering to the CLI:
// the plugin writes each line to stderr as JSON, and Terraform (or OpenTofu)
// reads it, parses it and, unless TF_LOG or TF_LOG_PROVIDER asks for provider
// logs, throws it away. On a refresh that is about 40 lines and 18 KB per
// binding (9 MB for 500), encoded by the plugin and decoded by the CLI, which
// shows in the wall time of a plan of hundreds of bindings.
package pluginlog

import (
	"os"
	"strings"
)

// Levels are the variables terraform-plugin-go and terraform-plugin-framework
// read for the levels of this provider's loggers: the SDK's root, its gRPC
// ("proto") and framework subsystems, and the provider's own (named after its
// type, irsa).
var Levels = []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PROVIDER_IRSA"}

// Heard reports whether environ asks for logs anywhere: any TF_LOG* or
// TOFU_LOG* variable with a value (the CLI's own TF_LOG and TF_LOG_PROVIDER,
// a level of the SDK, a log file), or terraform-plugin-testing's log
// settings. A plugin inherits the CLI's environment, so this is what the CLI
// was told.
func Heard(environ []string) bool {
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" {
			continue
		}
		if strings.HasPrefix(name, "TF_LOG") || strings.HasPrefix(name, "TOFU_LOG") || strings.HasPrefix(name, "TF_ACC_LOG") {
			return true
		}
	}
	return false
}

// QuietUnlessHeard sets every logger in Levels to OFF when the environment
// asks for no logs; otherwise it leaves the environment as it is, so that
// TF_LOG=TRACE shows the provider's logs as before. It must run before the
// provider server starts: the loggers read their levels when they are made.
func QuietUnlessHeard() error {
	if Heard(os.Environ()) {
		return nil
	}
	for _, name := range Levels {
		if err := os.Setenv(name, "OFF"); err != nil {
			return err
		}
	}
	return nil
}
