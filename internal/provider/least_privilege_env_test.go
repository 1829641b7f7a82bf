package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
)

// The least-privilege tests run the provider as a Kubernetes user bound to
// exactly the roles of examples/least-privilege, the files the guide shows:
// the docs and the tests cannot drift apart. A user, not a ServiceAccount:
// default RBAC lets every ServiceAccount read the issuer discovery document,
// which would hide that a user needs it granted.

const rbacManifestDir = "../../examples/least-privilege"

// The manifests, by mode.
const (
	rbacPlan             = "plan.yaml"
	rbacWorkloads        = "workloads.yaml"
	rbacAnnotate         = "annotate.yaml"
	rbacRollout          = "rollout.yaml"
	rbacEvict            = "evict.yaml"
	rbacDelete           = "delete.yaml"
	rbacCreateSA         = "create-service-account.yaml"
	rbacReadinessCheck   = "readiness-check.yaml"
	rbacIssuerDiscovery  = "issuer-discovery.yaml"
	rbacWebhookDiagnosis = "webhook-diagnosis.yaml"
)

// rbacManifests is every manifest of the guide.
var rbacManifests = []string{rbacPlan, rbacWorkloads, rbacAnnotate, rbacRollout, rbacEvict, rbacDelete, rbacCreateSA,
	rbacReadinessCheck, rbacIssuerDiscovery, rbacWebhookDiagnosis}

// rbacSet is the objects of some manifests.
type rbacSet struct {
	roles               []*rbacv1.Role
	roleBindings        []*rbacv1.RoleBinding
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
}

func loadRBAC(t *testing.T, files ...string) rbacSet {
	t.Helper()
	var set rbacSet
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(rbacManifestDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch o := obj.(type) {
			case *rbacv1.Role:
				set.roles = append(set.roles, o)
			case *rbacv1.RoleBinding:
				set.roleBindings = append(set.roleBindings, o)
			case *rbacv1.ClusterRole:
				set.clusterRoles = append(set.clusterRoles, o)
			case *rbacv1.ClusterRoleBinding:
				set.clusterRoleBindings = append(set.clusterRoleBindings, o)
			default:
				t.Fatalf("%s: unexpected %T", f, obj)
			}
		}
	}
	return set
}

// rbacPermission is one verb on one resource (or non-resource URL).
type rbacPermission struct {
	Group, Resource, Verb, Path string
}

func (p rbacPermission) String() string {
	if p.Path != "" {
		return p.Verb + " " + p.Path
	}
	if p.Group != "" {
		return p.Verb + " " + p.Resource + "." + p.Group
	}
	return p.Verb + " " + p.Resource
}

func rulePermissions(r rbacv1.PolicyRule) []rbacPermission {
	var out []rbacPermission
	for _, v := range r.Verbs {
		for _, path := range r.NonResourceURLs {
			out = append(out, rbacPermission{Verb: v, Path: path})
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				out = append(out, rbacPermission{Group: g, Resource: res, Verb: v})
			}
		}
	}
	return out
}

// permissions lists every permission the set grants, once.
func (s rbacSet) permissions() []rbacPermission {
	var out []rbacPermission
	var rules []rbacv1.PolicyRule
	for _, r := range s.roles {
		rules = append(rules, r.Rules...)
	}
	for _, r := range s.clusterRoles {
		rules = append(rules, r.Rules...)
	}
	for _, r := range rules {
		for _, p := range rulePermissions(r) {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// without returns rules that grant everything rules do except p, one
// permission per rule.
func without(rules []rbacv1.PolicyRule, p rbacPermission) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		for _, q := range rulePermissions(r) {
			if q == p {
				continue
			}
			if q.Path != "" {
				out = append(out, rbacv1.PolicyRule{NonResourceURLs: []string{q.Path}, Verbs: []string{q.Verb}})
			} else {
				out = append(out, rbacv1.PolicyRule{APIGroups: []string{q.Group}, Resources: []string{q.Resource}, Verbs: []string{q.Verb}})
			}
		}
	}
	return out
}

// without returns a copy of the set with p removed from every role.
func (s rbacSet) without(p rbacPermission) rbacSet {
	out := rbacSet{roleBindings: s.roleBindings, clusterRoleBindings: s.clusterRoleBindings}
	for _, r := range s.roles {
		r = r.DeepCopy()
		r.Rules = without(r.Rules, p)
		out.roles = append(out.roles, r)
	}
	for _, r := range s.clusterRoles {
		r = r.DeepCopy()
		r.Rules = without(r.Rules, p)
		out.clusterRoles = append(out.clusterRoles, r)
	}
	return out
}

// rbacUser is a Kubernetes user with a client certificate signed by the
// environment's CA: what an identity mapped from IAM looks like to RBAC.
type rbacUser struct {
	name                 string
	host                 string
	caPEM, certPEM, keys []byte
}

func newRBACUser(t *testing.T) *rbacUser {
	t.Helper()
	pkiDir := filepath.Join(os.Getenv("IRSA_TESTENV_STATE"), "pki")
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caKeyPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	keyBlock, _ := pem.Decode(caKeyPEM)
	if caBlock == nil || keyBlock == nil {
		t.Fatal("the environment's CA is not PEM")
	}
	caCert, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	name := "irsa-rbac-" + utilrand.String(8)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now, NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	host, err := clientConfigHost()
	if err != nil {
		t.Fatal(err)
	}
	return &rbacUser{
		name: name, host: host, caPEM: caPEM,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keys:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// providerConfig is the provider block that connects as the user; extra
// goes into it (oidc_issuer).
func (u *rbacUser) providerConfig(extra string) string {
	return fmt.Sprintf(`
provider "irsa" {
  trust_check = "off"
%s
  kubernetes = {
    host                   = %q
    cluster_ca_certificate = %q
    client_certificate     = %q
    client_key             = %q
  }
}
`, extra, u.host, u.caPEM, u.certPEM, u.keys)
}

// bindingConfig is bindingConfig (provider_test.go) as the user.
func (u *rbacUser) bindingConfig(ns, sa, role, extra string) string {
	return u.providerConfig("") + fmt.Sprintf(`
resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
%s
}
`, ns, sa, role, extra)
}

// grant creates the set's objects for the user, named after it: Roles and
// RoleBindings in the test namespace, cluster-wide objects deleted when the
// test ends. It returns once the authorizer sees every
// permission granted, asked of it with SubjectAccessReviews.
func (c *testCluster) grant(u *rbacUser, set rbacSet) {
	c.t.Helper()
	ctx := context.Background()
	rbac := c.client.RbacV1()
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: u.name}}
	for _, r := range set.roles {
		r = r.DeepCopy()
		r.Name += "-" + u.name
		r.Namespace = c.ns
		if _, err := rbac.Roles(c.ns).Create(ctx, r, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, b := range set.roleBindings {
		b = b.DeepCopy()
		b.Name += "-" + u.name
		b.RoleRef.Name += "-" + u.name
		b.Namespace, b.Subjects = c.ns, subjects
		if _, err := rbac.RoleBindings(c.ns).Create(ctx, b, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, r := range set.clusterRoles {
		r = r.DeepCopy()
		r.Name += "-" + u.name
		if _, err := rbac.ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(context.Background(), r.Name, metav1.DeleteOptions{}) })
	}
	for _, b := range set.clusterRoleBindings {
		b = b.DeepCopy()
		b.Name += "-" + u.name
		b.RoleRef.Name += "-" + u.name
		b.Subjects = subjects
		if _, err := rbac.ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(context.Background(), b.Name, metav1.DeleteOptions{}) })
	}
	// The RBAC authorizer reads roles and bindings from informers: a
	// moment after the create, not at once.
	for _, p := range set.permissions() {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return c.allowed(ctx, u, p)
		})
		if err != nil {
			c.t.Fatalf("the authorizer never allowed %s to %s: %v", u.name, p, err)
		}
	}
	// Nothing beyond the set: the user is in no privileged group.
	if ok, err := c.allowed(ctx, u, rbacPermission{Resource: "secrets", Verb: "list"}); ok || err != nil {
		c.t.Fatalf("%s may list secrets (%v): the identity has more than its roles", u.name, err)
	}
}

// allowed asks the authorizer whether the user may do p in the test
// namespace.
func (c *testCluster) allowed(ctx context.Context, u *rbacUser, p rbacPermission) (bool, error) {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.name, Groups: []string{"system:authenticated"},
	}}
	if p.Path != "" {
		review.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: p.Path, Verb: p.Verb}
	} else {
		resource, sub, _ := strings.Cut(p.Resource, "/")
		review.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Namespace: c.ns, Verb: p.Verb, Group: p.Group, Resource: resource, Subresource: sub,
		}
		switch p.Resource {
		case "namespaces":
			// A namespace is read by name, which RBAC takes as its namespace.
			review.Spec.ResourceAttributes.Name = c.ns
		case "mutatingwebhookconfigurations":
			review.Spec.ResourceAttributes.Namespace = "" // cluster-scoped
		}
	}
	got, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return got.Status.Allowed, nil
}
