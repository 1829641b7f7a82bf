package pluginlog

import (
	"os"
	"strings"
	"testing"
)

func TestHeard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    bool
	}{
		{"nothing set", []string{"HOME=/root", "TF_IN_AUTOMATION=1", "TF_CLI_CONFIG_FILE=/x"}, false},
		{"TF_LOG", []string{"TF_LOG=TRACE"}, true},
		{"TF_LOG=JSON", []string{"TF_LOG=JSON"}, true},
		{"provider logs only", []string{"TF_LOG_PROVIDER=debug"}, true},
		{"this provider's logs only", []string{"TF_LOG_PROVIDER_IRSA=debug"}, true},
		{"an SDK subsystem", []string{"TF_LOG_SDK_FRAMEWORK=trace"}, true},
		{"a log file", []string{"TF_LOG_PATH=/tmp/tf.log"}, true},
		{"OpenTofu", []string{"TOFU_LOG=debug"}, true},
		{"terraform-plugin-testing", []string{"TF_ACC_LOG_PATH=/tmp/acc.log"}, true},
		{"set but empty", []string{"TF_LOG=", "TF_LOG_PROVIDER="}, false},
		{"a name that only contains it", []string{"MY_TF_LOG=trace"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Heard(tc.environ); got != tc.want {
				t.Errorf("Heard(%q) = %v, want %v", tc.environ, got, tc.want)
			}
		})
	}
}

func TestQuietUnlessHeard(t *testing.T) {
	unsetLogVariables := func(t *testing.T) {
		for _, kv := range os.Environ() {
			if Heard([]string{kv}) {
				name, _, _ := strings.Cut(kv, "=")
				t.Setenv(name, "")
			}
		}
		for _, name := range Levels {
			t.Setenv(name, "")
		}
	}

	t.Run("nobody listens", func(t *testing.T) {
		unsetLogVariables(t)
		if err := QuietUnlessHeard(); err != nil {
			t.Fatal(err)
		}
		for _, name := range Levels {
			if got := os.Getenv(name); got != "OFF" {
				t.Errorf("%s = %q, want OFF", name, got)
			}
		}
	})
	t.Run("TF_LOG set", func(t *testing.T) {
		unsetLogVariables(t)
		t.Setenv("TF_LOG", "TRACE")
		if err := QuietUnlessHeard(); err != nil {
			t.Fatal(err)
		}
		for _, name := range Levels {
			if got := os.Getenv(name); got != "" {
				t.Errorf("%s = %q, want it left unset", name, got)
			}
		}
	})
}
