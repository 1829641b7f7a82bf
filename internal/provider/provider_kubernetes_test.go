package provider

import (
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestConnectionConfig_precedence(t *testing.T) {
	tests := []struct {
		name      string
		model     *kubernetesModel
		env       map[string]string
		wantPaths []string
		wantHost  string
		wantCtx   string
	}{
		{
			name: "KUBECONFIG when nothing is set", env: map[string]string{"KUBECONFIG": "/a:/b"},
			wantPaths: []string{"/a", "/b"},
		},
		{
			name: "KUBE_CONFIG_PATH over KUBECONFIG", env: map[string]string{"KUBE_CONFIG_PATH": "/kube", "KUBECONFIG": "/a"},
			wantPaths: []string{"/kube"},
		},
		{
			name:      "attribute over environment",
			model:     &kubernetesModel{ConfigPath: types.StringValue("/attr"), ConfigContext: types.StringValue("prod")},
			env:       map[string]string{"KUBE_CONFIG_PATH": "/kube", "KUBE_CTX": "dev"},
			wantPaths: []string{"/attr"}, wantCtx: "prod",
		},
		{
			name: "KUBE_CONFIG_PATHS", env: map[string]string{"KUBE_CONFIG_PATHS": "/x:/y"},
			wantPaths: []string{"/x", "/y"},
		},
		{
			name:     "explicit host does not pick up KUBECONFIG",
			model:    &kubernetesModel{Host: types.StringValue("https://h"), Token: types.StringValue("t")},
			env:      map[string]string{"KUBECONFIG": "/a"},
			wantHost: "https://h",
		},
		{
			name: "KUBE_HOST", env: map[string]string{"KUBE_HOST": "https://env"},
			wantHost: "https://env",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"KUBECONFIG", "KUBE_CONFIG_PATH", "KUBE_CONFIG_PATHS", "KUBE_CTX", "KUBE_HOST", "KUBE_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			// A zero types.String is null: unset attributes need no setup.
			m := tt.model
			if m == nil {
				m = &kubernetesModel{}
			}
			c := m.connectionConfig()
			if !reflect.DeepEqual(c.ConfigPaths, tt.wantPaths) {
				t.Errorf("ConfigPaths = %v, want %v", c.ConfigPaths, tt.wantPaths)
			}
			if c.Host != tt.wantHost || c.Context != tt.wantCtx {
				t.Errorf("Host %q Context %q, want %q %q", c.Host, c.Context, tt.wantHost, tt.wantCtx)
			}
		})
	}
}
