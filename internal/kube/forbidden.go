package kube

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Permission is one RBAC permission the API server refused: a verb on a
// resource (in a namespace, or cluster-wide), or on a non-resource path.
type Permission struct {
	// User is who was refused, as the API server named them.
	User string
	Verb string
	// Group is the API group: "" for the core group.
	Group string
	// Resource may carry a subresource: "pods/eviction".
	Resource string
	// Namespace is empty for a cluster-wide request.
	Namespace string
	// Path is the non-resource URL, for /.well-known/openid-configuration;
	// Resource is then empty.
	Path string
}

// The RBAC authorizer's reasons, as k8s.io/apiserver's
// authorization/rbac forbiddenMessage writes them: a resource in a
// namespace or at the cluster scope, or a path.
var (
	forbiddenResource = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?`)
	forbiddenPath     = regexp.MustCompile(`User "([^"]*)" cannot (\S+) path "([^"]+)"`)
)

// DeniedPermission reads the permission a Forbidden error refused from the
// API server's message. It reports false for any other error, and for a
// Forbidden whose message does not name one (an admission webhook's, or an
// authorizer other than RBAC that words it otherwise).
func DeniedPermission(err error) (Permission, bool) {
	if !apierrors.IsForbidden(err) {
		return Permission{}, false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return Permission{}, false
	}
	msg := status.Status().Message
	if m := forbiddenResource.FindStringSubmatch(msg); m != nil {
		return Permission{User: m[1], Verb: m[2], Resource: m[3], Group: m[4], Namespace: m[5]}, true
	}
	if m := forbiddenPath.FindStringSubmatch(msg); m != nil {
		return Permission{User: m[1], Verb: m[2], Path: m[3]}, true
	}
	return Permission{}, false
}

// String names the permission as a sentence fragment: `list` on `pods` in
// namespace "payments".
func (p Permission) String() string {
	if p.Path != "" {
		return fmt.Sprintf("`%s` on the non-resource URL `%s`", p.Verb, p.Path)
	}
	group := "the core API group"
	if p.Group != "" {
		group = fmt.Sprintf("API group `%s`", p.Group)
	}
	where := "cluster-wide"
	if p.Namespace != "" {
		where = fmt.Sprintf("in namespace %q", p.Namespace)
	}
	return fmt.Sprintf("`%s` on `%s` (%s) %s", p.Verb, p.Resource, group, where)
}

// Grant says what grants the permission: a Role and RoleBinding in the
// namespace, or a ClusterRole and ClusterRoleBinding.
func (p Permission) Grant() string {
	if p.Namespace != "" {
		return fmt.Sprintf("a Role in namespace %s with this rule, bound to the provider's identity by a RoleBinding there", p.Namespace)
	}
	return "a ClusterRole with this rule, bound to the provider's identity by a ClusterRoleBinding"
}

// Rule is the RBAC rule that grants the permission, as YAML for a Role's or
// ClusterRole's rules list.
func (p Permission) Rule() string {
	if p.Path != "" {
		return fmt.Sprintf("- nonResourceURLs: [%q]\n  verbs: [%q]", p.Path, p.Verb)
	}
	return fmt.Sprintf("- apiGroups: [%q]\n  resources: [%q]\n  verbs: [%q]", p.Group, p.Resource, p.Verb)
}

// DeniedNote is the part of a degraded result that says what was not read
// and which permission would read it; other errors are quoted as they are.
func DeniedNote(what string, err error) string {
	if p, ok := DeniedPermission(err); ok {
		return fmt.Sprintf("%s: the provider's identity lacks %s", what, p)
	}
	return fmt.Sprintf("%s: %s", what, strings.TrimSpace(err.Error()))
}
