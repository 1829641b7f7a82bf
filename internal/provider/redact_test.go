package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/irsa-dev/terraform-provider-irsa/internal/redact"
)

func TestRedactDiagnostics_keepsSeverityAndPath(t *testing.T) {
	redact.Register("kube-token-of-the-redact-test")
	in := diag.Diagnostics{
		diag.NewAttributeErrorDiagnostic(path.Root("role_arn"), "Unable to Check", "Error: kube-token-of-the-redact-test"),
		diag.NewWarningDiagnostic("Trust Check Skipped", "key AKIAZX3EXAMPLE7QWERT"),
		diag.NewErrorDiagnostic("Untouched", "nothing secret"),
	}
	out := redactDiagnostics(in)
	if len(out) != 3 {
		t.Fatalf("got %d diagnostics, want 3", len(out))
	}
	for i, want := range []string{"Error: [REDACTED]", "key [REDACTED]", "nothing secret"} {
		if out[i].Detail() != want || out[i].Summary() != in[i].Summary() || out[i].Severity() != in[i].Severity() {
			t.Errorf("diagnostic %d = %s %q %q, want %s %q %q", i, out[i].Severity(), out[i].Summary(), out[i].Detail(),
				in[i].Severity(), in[i].Summary(), want)
		}
	}
	withPath, ok := out[0].(diag.DiagnosticWithPath)
	if !ok || !withPath.Path().Equal(path.Root("role_arn")) {
		t.Errorf("the attribute path was lost: %#v", out[0])
	}
}
