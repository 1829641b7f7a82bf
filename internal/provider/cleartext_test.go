package provider

import (
	"testing"

	"k8s.io/client-go/rest"
)

func TestCleartext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		endpoint string
		want     bool
	}{
		{"http://192.0.2.10:8080", true},
		{"http://iam.internal.example", true},
		{"HTTP://iam.internal.example", true},
		{"http://[2001:db8::1]:8080", true},
		{"http://127.0.0.2:5000", false}, // all of 127.0.0.0/8 is loopback
		{"http://127.0.0.1:5000", false},
		{"http://localhost:4566", false},
		{"http://LOCALHOST", false},
		{"http://[::1]:8080", false},
		{"https://iam.amazonaws.com", false},
		{"https://192.0.2.10", false},
		{"", false},
		{"192.0.2.10:8080", false}, // no scheme: not a URL the SDK takes as http
		{"://bad", false},
	}
	for _, tt := range tests {
		if got := cleartext(tt.endpoint); got != tt.want {
			t.Errorf("cleartext(%q) = %v, want %v", tt.endpoint, got, tt.want)
		}
	}
}

// The warning judges the URL client-go will use, not the setting as written:
// a host without a scheme is plain http unless TLS settings are given.
func TestKubeCleartextWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  *rest.Config
		want bool
	}{
		{"http host", &rest.Config{Host: "http://192.0.2.10:8080"}, true},
		{"host without scheme or TLS", &rest.Config{Host: "192.0.2.10:8080"}, true},
		{"host without scheme, with a CA", &rest.Config{Host: "192.0.2.10:6443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("x")}}, false},
		{"https host", &rest.Config{Host: "https://192.0.2.10"}, false},
		{"loopback http", &rest.Config{Host: "http://127.0.0.1:8080"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			diags := kubeCleartextWarning(tt.cfg)
			if got := diags.WarningsCount() == 1; got != tt.want {
				t.Errorf("warned = %v, want %v (%v)", got, tt.want, diags)
			}
		})
	}
}
