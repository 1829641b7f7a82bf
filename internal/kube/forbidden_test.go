package kube

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The messages are the API server's (v1.37), as kubectl printed them for a
// user without permissions.
func TestDeniedPermission(t *testing.T) {
	t.Parallel()
	forbidden := func(resource, reason string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New(reason))
	}
	pathForbidden := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: `forbidden: User "alice" cannot get path "/.well-known/openid-configuration"`,
	}}
	tests := []struct {
		name string
		err  error
		want Permission
		ok   bool
		rule string
		text string
	}{
		{
			name: "namespaced resource",
			err:  forbidden("pods", `User "alice" cannot list resource "pods" in API group "" in the namespace "payments"`),
			want: Permission{User: "alice", Verb: "list", Resource: "pods", Namespace: "payments"}, ok: true,
			rule: "- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"list\"]",
			text: "`list` on `pods` (the core API group) in namespace \"payments\"",
		},
		{
			name: "subresource in a group, wrapped",
			err:  fmt.Errorf("evict pod api-1: %w", forbidden("pods", `User "ci" cannot create resource "pods/eviction" in API group "" in the namespace "payments"`)),
			want: Permission{User: "ci", Verb: "create", Resource: "pods/eviction", Namespace: "payments"}, ok: true,
			rule: "- apiGroups: [\"\"]\n  resources: [\"pods/eviction\"]\n  verbs: [\"create\"]",
		},
		{
			name: "cluster scope",
			err:  forbidden("mutatingwebhookconfigurations", `User "alice" cannot list resource "mutatingwebhookconfigurations" in API group "admissionregistration.k8s.io" at the cluster scope`),
			want: Permission{User: "alice", Verb: "list", Resource: "mutatingwebhookconfigurations", Group: "admissionregistration.k8s.io"}, ok: true,
			rule: "- apiGroups: [\"admissionregistration.k8s.io\"]\n  resources: [\"mutatingwebhookconfigurations\"]\n  verbs: [\"list\"]",
			text: "`list` on `mutatingwebhookconfigurations` (API group `admissionregistration.k8s.io`) cluster-wide",
		},
		{
			name: "with the authorizer's extra reason",
			err:  forbidden("deployments", `User "alice" cannot patch resource "deployments" in API group "apps" in the namespace "p": RBAC: role.rbac.authorization.k8s.io "x" not found`),
			want: Permission{User: "alice", Verb: "patch", Resource: "deployments", Group: "apps", Namespace: "p"}, ok: true,
		},
		{
			name: "non-resource path",
			err:  fmt.Errorf("read /.well-known/openid-configuration: %w", pathForbidden),
			want: Permission{User: "alice", Verb: "get", Path: "/.well-known/openid-configuration"}, ok: true,
			rule: "- nonResourceURLs: [\"/.well-known/openid-configuration\"]\n  verbs: [\"get\"]",
			text: "`get` on the non-resource URL `/.well-known/openid-configuration`",
		},
		{
			// An admission policy: forbidden, but no permission to grant.
			name: "admission",
			err:  forbidden("pods", `violates PodSecurity "restricted:latest": privileged`),
		},
		{
			name: "not forbidden",
			err:  apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x"),
		},
		{name: "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := DeniedPermission(tt.err)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("DeniedPermission = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if tt.rule != "" && got.Rule() != tt.rule {
				t.Errorf("Rule() =\n%s\nwant\n%s", got.Rule(), tt.rule)
			}
			if tt.text != "" && got.String() != tt.text {
				t.Errorf("String() = %s, want %s", got, tt.text)
			}
		})
	}
}
