package main

import (
	"flag"
	"io"
	"testing"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// The flag names and defaults are upstream main.go's: the environment passes
// one command line to this binary or to upstream's.
func TestContainerCredentialsFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantFile string
		want     podidentity.ContainerCredentialsConfig
	}{
		{
			name: "upstream's defaults",
			want: podidentity.ContainerCredentialsConfig{
				Audience:   "pods.eks.amazonaws.com",
				FullURI:    "http://169.254.170.23/v1/credentials",
				MountPath:  "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
				VolumeName: "eks-pod-identity-token",
				TokenPath:  "eks-pod-identity-token",
			},
		},
		{
			name: "every flag by upstream's name",
			args: []string{
				"--watch-container-credentials-config=/state/identities.json",
				"--container-credentials-audience=aud",
				"--container-credentials-full-uri=http://127.0.0.1:9/v1/credentials",
				"--container-credentials-token-mount-path=/mnt",
				"--container-credentials-token-volume-name=vol",
				"--container-credentials-token-path=tok",
			},
			wantFile: "/state/identities.json",
			want: podidentity.ContainerCredentialsConfig{
				Audience: "aud", FullURI: "http://127.0.0.1:9/v1/credentials", MountPath: "/mnt", VolumeName: "vol", TokenPath: "tok",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("pod-identity-webhook", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			file, cc := containerCredentialsFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if *file != tt.wantFile {
				t.Errorf("identities file = %q, want %q", *file, tt.wantFile)
			}
			if *cc != tt.want {
				t.Errorf("config = %+v, want %+v", *cc, tt.want)
			}
		})
	}
}
