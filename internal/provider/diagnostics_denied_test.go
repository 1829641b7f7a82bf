package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// Every diagnostic that can carry a refused request names the permission
// and the rule that grants it; a Forbidden that names none (an admission
// policy) is quoted, never dressed up as RBAC. TestLeastPrivilege_eachPermission
// checks the same against the real API server.
func TestDeniedDiagnostics(t *testing.T) {
	t.Parallel()
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
		errors.New(`User "ci" cannot list resource "pods" in API group "" in the namespace "payments"`))
	admission := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New(`violates PodSecurity "restricted:latest"`))
	rule := "    - apiGroups: [\"\"]\n      resources: [\"pods\"]\n      verbs: [\"list\"]"
	named := []string{"`list` on `pods` (the core API group) in namespace \"payments\"", rule, "Role in namespace payments", "Least Privilege guide"}
	ctx := context.Background()
	gate := &recycle.GateError{Cause: recycle.GateNotMutated, Found: "nothing injected", Unchecked: []recycle.Unchecked{{What: "whether X was not checked", Err: denied}}}

	tests := []struct {
		name     string
		d        diag.Diagnostic
		want     []string
		wantNone []string
	}{
		{"API error", kubeAPIError(ctx, "Read Service Account", "ServiceAccount payments/api", "https://k", denied), named, nil},
		{"API error, wrapped", kubeAPIError(ctx, "Plan Pod Recycling", "ServiceAccount payments/api", "https://k", fmt.Errorf("get: %w", denied)), named, nil},
		{"admission refusal", kubeAPIError(ctx, "Annotate Service Account", "ServiceAccount payments/api", "https://k", admission),
			[]string{"its message below says what and why", "PodSecurity"}, []string{"lacks"}},
		{"gate skipped", gateSkipped("ServiceAccount payments/api", fmt.Errorf("dry run: %w", denied)), named, nil},
		{"gate skipped by a policy", gateSkipped("ServiceAccount payments/api", fmt.Errorf("dry run: %w", admission)),
			[]string{"irsa-readiness-probe-", "PodSecurity"}, []string{"lacks"}},
		{"recycling", recycleError("payments", "api", recycle.StrategyDelete, fmt.Errorf("delete pod x: %w", denied)), named, nil},
		{"recycling, while waiting", recycleError("payments", "api", recycle.StrategyRollout, &recycle.NotDoneError{Pending: []string{"x"}, Err: denied}), named, nil},
		{"plan dry run", annotationCheckSkipped("ServiceAccount payments/api", denied), named, nil},
		{"issuer", issuerNotDiscovered("https://k", denied), named, nil},
		{"webhook check", webhookNotReady("ServiceAccount payments/api", gate), []string{"whether X was not checked", named[0], rule}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, w := range tt.want {
				if !strings.Contains(tt.d.Detail(), w) {
					t.Errorf("%s: detail lacks %q:\n%s", tt.d.Summary(), w, tt.d.Detail())
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(tt.d.Detail(), w) {
					t.Errorf("%s: detail has %q:\n%s", tt.d.Summary(), w, tt.d.Detail())
				}
			}
		})
	}
}
