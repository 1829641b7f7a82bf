package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// One row per permission of the Least Privilege guide's manifests: the user
// holds every one of them but that one, and a binding goes through plan,
// apply, refresh and destroy as Terraform drives the provider. A required
// permission's absence must end in a diagnostic that names the verb, the
// resource and the rule to grant; an optional one's, in a warning that says
// what was skipped and what to grant, and no error. The API server's real
// RBAC is what refuses.

// userServer is the provider, configured as an RBAC user, driven through
// the protocol as Terraform drives it.
type userServer struct {
	*planServer
}

func newUserServer(t *testing.T, u *rbacUser) *userServer {
	t.Helper()
	server, err := providerserver.NewProtocol6WithError(New("test", "rbac")())()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	schemas, err := server.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	providerType, ok := schemas.Provider.ValueType().(tftypes.Object)
	if !ok {
		t.Fatal("provider schema is not an object")
	}
	kubeType, ok := providerType.AttributeTypes["kubernetes"].(tftypes.Object)
	if !ok {
		t.Fatal("the kubernetes attribute is not an object")
	}
	config := objectValue(t, providerType, map[string]tftypes.Value{
		"trust_check": str("off"),
		"kubernetes": objectValue(t, kubeType, map[string]tftypes.Value{
			"host": str(u.host), "cluster_ca_certificate": str(string(u.caPEM)),
			"client_certificate": str(string(u.certPEM)), "client_key": str(string(u.keys)),
		}),
	})
	resp, err := server.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: dynamic(t, providerType, config)})
	if err != nil || hasErrors(resp.Diagnostics) {
		t.Fatalf("configure: %v %v", err, resp.Diagnostics)
	}
	resourceType, ok := schemas.ResourceSchemas[bindingType].ValueType().(tftypes.Object)
	if !ok {
		t.Fatal("resource schema is not an object")
	}
	return &userServer{&planServer{t: t, server: server, resource: resourceType}}
}

// nested is an object value of the resource's attribute name.
func (s *userServer) nested(name string, attrs map[string]tftypes.Value) tftypes.Value {
	typ, ok := s.resource.AttributeTypes[name].(tftypes.Object)
	if !ok {
		s.t.Fatalf("%s is not an object attribute", name)
	}
	return objectValue(s.t, typ, attrs)
}

// lifecycle plans and applies a new binding with config, refreshes it and
// destroys it, as Terraform does, and returns every diagnostic up to the
// first error.
func (s *userServer) lifecycle(config map[string]tftypes.Value) []*tfprotov6.Diagnostic {
	t := s.t
	ctx := context.Background()
	null := dynamic(t, s.resource, tftypes.NewValue(s.resource, nil))
	cfg := dynamic(t, s.resource, objectValue(t, s.resource, config))
	plan, err := s.server.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{
		TypeName: bindingType, PriorState: null, ProposedNewState: cfg, Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	diags := plan.Diagnostics
	if hasErrors(diags) {
		return diags
	}
	applied, err := s.server.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{
		TypeName: bindingType, PriorState: null, PlannedState: plan.PlannedState, Config: cfg, PlannedPrivate: plan.PlannedPrivate,
	})
	if err != nil {
		t.Fatal(err)
	}
	diags = append(diags, applied.Diagnostics...)
	if hasErrors(diags) {
		return diags
	}
	read, err := s.server.ReadResource(ctx, &tfprotov6.ReadResourceRequest{
		TypeName: bindingType, CurrentState: applied.NewState, Private: applied.Private,
	})
	if err != nil {
		t.Fatal(err)
	}
	diags = append(diags, read.Diagnostics...)
	if hasErrors(diags) {
		return diags
	}
	destroyed, err := s.server.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{
		TypeName: bindingType, PriorState: read.NewState, PlannedState: null, Config: null, PlannedPrivate: read.Private,
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(diags, destroyed.Diagnostics...)
}

// wantDiagnostic is a diagnostic a row expects: of severity, with summary,
// naming the refused permission (and, with rule, the rule that grants it).
type wantDiagnostic struct {
	severity tfprotov6.DiagnosticSeverity
	summary  string
	rule     bool
}

var (
	errorGrant   = wantDiagnostic{severity: tfprotov6.DiagnosticSeverityError, rule: true}
	warningGrant = func(summary string) wantDiagnostic {
		return wantDiagnostic{severity: tfprotov6.DiagnosticSeverityWarning, summary: summary, rule: true}
	}
)

type permissionRow struct {
	perm rbacPermission
	// workload is made before the binding, with pods that run as the
	// ServiceAccount: "Deployment", "StatefulSet", "DaemonSet" or none.
	workload string
	// createSA leaves the ServiceAccount to the binding to create.
	createSA bool
	// foreignRole has kubectl annotate the ServiceAccount with another
	// role first, so the plan predicts a field-manager conflict.
	foreignRole bool
	strategy    string
	// pdb blocks every eviction of the workload's pod.
	pdb bool
	// webhookOutage keeps the pod identity webhook away from the
	// namespace, so the readiness check fails and explains why.
	webhookOutage bool
	timeout       string
	want          []wantDiagnostic
}

// permissionRows is the table: one row per permission the manifests grant.
func permissionRows() []permissionRow {
	recycle := "Unable to Recycle Pods"
	return []permissionRow{
		// plan.yaml
		{perm: rbacPermission{Resource: "serviceaccounts", Verb: "get"}, strategy: "none", want: []wantDiagnostic{errorGrant}},
		// Optional: refresh lists a namespace's ServiceAccounts when it may
		// and gets the one it needs otherwise, so no diagnostic.
		{perm: rbacPermission{Resource: "serviceaccounts", Verb: "list"}, strategy: "none"},
		{perm: rbacPermission{Resource: "pods", Verb: "list"}, strategy: "none", want: []wantDiagnostic{errorGrant}},
		// workloads.yaml
		{perm: rbacPermission{Group: "apps", Resource: "deployments", Verb: "get"}, workload: "Deployment", strategy: "rollout", want: []wantDiagnostic{errorGrant}},
		{perm: rbacPermission{Group: "apps", Resource: "statefulsets", Verb: "get"}, workload: "StatefulSet", strategy: "rollout", want: []wantDiagnostic{errorGrant}},
		{perm: rbacPermission{Group: "apps", Resource: "daemonsets", Verb: "get"}, workload: "DaemonSet", strategy: "rollout", want: []wantDiagnostic{errorGrant}},
		{perm: rbacPermission{Group: "apps", Resource: "replicasets", Verb: "get"}, workload: "Deployment", strategy: "rollout", want: []wantDiagnostic{errorGrant}},
		// annotate.yaml: required at apply; at plan only to confirm the
		// conflict managedFields predict (kubectl annotated another role).
		{perm: rbacPermission{Resource: "serviceaccounts", Verb: "patch"}, strategy: "none", foreignRole: true, want: []wantDiagnostic{
			warningGrant("Annotation Conflict Check Skipped"),
			{severity: tfprotov6.DiagnosticSeverityError, summary: "Unable to Annotate Service Account", rule: true},
		}},
		// rollout.yaml (its delete on pods is delete.yaml's). Recycling
		// after a create warns rather than fails: an error would taint.
		{perm: rbacPermission{Group: "apps", Resource: "deployments", Verb: "patch"}, workload: "Deployment", strategy: "rollout", want: []wantDiagnostic{warningGrant(recycle)}},
		{perm: rbacPermission{Group: "apps", Resource: "statefulsets", Verb: "patch"}, workload: "StatefulSet", strategy: "rollout", want: []wantDiagnostic{warningGrant(recycle)}},
		{perm: rbacPermission{Group: "apps", Resource: "daemonsets", Verb: "patch"}, workload: "DaemonSet", strategy: "rollout", want: []wantDiagnostic{warningGrant(recycle)}},
		// evict.yaml
		{perm: rbacPermission{Resource: "pods/eviction", Verb: "create"}, workload: "Deployment", strategy: "evict", want: []wantDiagnostic{warningGrant(recycle)}},
		// Optional: only names the budget that blocked the eviction.
		{perm: rbacPermission{Group: "policy", Resource: "poddisruptionbudgets", Verb: "list"}, workload: "Deployment", strategy: "evict", pdb: true, timeout: "6s",
			want: []wantDiagnostic{{severity: tfprotov6.DiagnosticSeverityWarning, summary: "Unable to Recycle Pods: Eviction Blocked"}}},
		// delete.yaml
		{perm: rbacPermission{Resource: "pods", Verb: "delete"}, workload: "Deployment", strategy: "delete", want: []wantDiagnostic{warningGrant(recycle)}},
		// create-service-account.yaml
		{perm: rbacPermission{Resource: "serviceaccounts", Verb: "create"}, createSA: true, strategy: "none", want: []wantDiagnostic{errorGrant}},
		{perm: rbacPermission{Resource: "serviceaccounts", Verb: "delete"}, createSA: true, strategy: "none", want: []wantDiagnostic{
			{severity: tfprotov6.DiagnosticSeverityError, summary: "Unable to Delete Service Account", rule: true},
		}},
		// readiness-check.yaml: both optional.
		{perm: rbacPermission{Resource: "pods", Verb: "create"}, workload: "Deployment", strategy: "rollout", want: []wantDiagnostic{warningGrant("Pod Identity Webhook Check Skipped")}},
		{perm: rbacPermission{Resource: "namespaces", Verb: "get"}, workload: "Deployment", strategy: "rollout", webhookOutage: true,
			want: []wantDiagnostic{warningGrant("Unable to Recycle Pods: Pod Identity Webhook Not Ready")}},
		// issuer-discovery.yaml: optional.
		{perm: rbacPermission{Path: "/.well-known/openid-configuration", Verb: "get"}, strategy: "none", want: []wantDiagnostic{warningGrant("OIDC Issuer Not Discovered")}},
		// webhook-diagnosis.yaml: optional.
		{perm: rbacPermission{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "list"}, workload: "Deployment", strategy: "rollout", webhookOutage: true,
			want: []wantDiagnostic{warningGrant("Unable to Recycle Pods: Pod Identity Webhook Not Ready")}},
	}
}

// The table has one row per permission the manifests grant, no more, no
// less: a rule added to the guide without a row fails here.
func TestLeastPrivilege_rowsCoverTheManifests(t *testing.T) {
	t.Parallel()
	rows := permissionRows()
	all := loadRBAC(t, rbacManifests...)
	for _, p := range all.permissions() {
		n := 0
		for _, r := range rows {
			if r.perm == p {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d rows for %s, which the manifests grant: want 1", n, p)
		}
	}
	for _, r := range rows {
		if len(all.without(r.perm).permissions()) != len(all.permissions())-1 {
			t.Errorf("row %s: the manifests do not grant it", r.perm)
		}
	}
	if len(rows) < 15 {
		t.Errorf("only %d rows: the manifests did not load", len(rows))
	}
}

func TestLeastPrivilege_eachPermission(t *testing.T) {
	requireEnv(t)
	rows := permissionRows()
	all := loadRBAC(t, rbacManifests...)

	t.Run("none removed", func(t *testing.T) {
		t.Parallel()
		c, u := permissionFixture(t, all, permissionRow{workload: "Deployment"})
		s := newUserServer(t, u)
		diags := s.lifecycle(c.rowConfig(permissionRow{strategy: "rollout"}, s))
		for _, d := range diags {
			if d.Severity == tfprotov6.DiagnosticSeverityError || strings.Contains(d.Detail, "lacks `") {
				t.Errorf("%s: %s\n%s", d.Severity, d.Summary, d.Detail)
			}
		}
	})
	for _, row := range rows {
		// Subtest names are split at slashes.
		t.Run(strings.ReplaceAll(row.perm.String(), "/", " "), func(t *testing.T) {
			t.Parallel()
			c, u := permissionFixture(t, all.without(row.perm), row)
			if ok, err := c.allowed(t.Context(), u, row.perm); ok || err != nil {
				t.Fatalf("the user may still %s (%v)", row.perm, err)
			}
			s := newUserServer(t, u)
			diags := s.lifecycle(c.rowConfig(row, s))
			denied := kube.Permission{Verb: row.perm.Verb, Group: row.perm.Group, Resource: row.perm.Resource, Path: row.perm.Path}
			if row.perm.Path == "" && row.perm.Resource != "mutatingwebhookconfigurations" {
				denied.Namespace = c.ns
			}
			for _, w := range row.want {
				found := false
				for _, d := range diags {
					if d.Severity != w.severity || (w.summary != "" && d.Summary != w.summary) {
						continue
					}
					if strings.Contains(d.Detail, denied.String()) && (!w.rule || strings.Contains(d.Detail, indent(denied.Rule(), "    "))) {
						found = true
						t.Logf("%s: %s\n%s", d.Severity, d.Summary, d.Detail)
					}
				}
				if !found {
					t.Errorf("no %s %q naming %s (rule: %v) among:\n%s", w.severity, w.summary, denied, w.rule, describe(diags))
				}
			}
			if !wantsError(row.want) && hasErrors(diags) {
				t.Errorf("an optional permission's absence failed the run:\n%s", describe(diags))
			}
		})
	}
}

func wantsError(want []wantDiagnostic) bool {
	for _, w := range want {
		if w.severity == tfprotov6.DiagnosticSeverityError {
			return true
		}
	}
	return false
}

func describe(diags []*tfprotov6.Diagnostic) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Severity.String() + ": " + d.Summary + "\n" + d.Detail + "\n\n")
	}
	return b.String()
}

// permissionFixture is a namespace with what row needs, and a user bound
// to set in it.
func permissionFixture(t *testing.T, set rbacSet, row permissionRow) (*testCluster, *rbacUser) {
	c := newTestCluster(t)
	if !row.createSA {
		c.createSA("api")
		if row.foreignRole {
			c.annotate("api", irsa.RoleARNAnnotation, testRoleC)
		}
	}
	switch row.workload {
	case "Deployment":
		c.createDeployment("api", "api", 1)
	case "StatefulSet":
		c.createStatefulSet("api", "api", 1, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType})
	case "DaemonSet":
		c.createDaemonSet("api", "api")
	}
	if row.workload != "" {
		c.waitPods("api", 1)
	}
	if row.pdb {
		c.createPDB("api", "api", 1)
	}
	if row.webhookOutage {
		// The outage is confirmed with dry-run pods of an annotated
		// ServiceAccount of its own.
		c.createSA("probe")
		c.annotate("probe", irsa.RoleARNAnnotation, testRoleC)
		if err := testenv.WaitWebhookMutates(t.Context(), c.client, c.ns, "probe", true); err != nil {
			t.Fatal(err)
		}
		if err := testenv.SetWebhookOutage(t.Context(), c.client, c.ns, "probe", true); err != nil {
			t.Fatal(err)
		}
	}
	u := newRBACUser(t)
	c.grant(u, set)
	return c, u
}

func (c *testCluster) rowConfig(row permissionRow, s *userServer) map[string]tftypes.Value {
	config := bindingAttrs(c.ns, "api", testRoleA)
	config["restart"] = s.nested("restart", map[string]tftypes.Value{"strategy": str(row.strategy)})
	if row.createSA {
		config["create_service_account"] = tftypes.NewValue(tftypes.Bool, true)
	}
	if row.timeout != "" {
		config["timeouts"] = s.nested("timeouts", map[string]tftypes.Value{"create": str(row.timeout)})
	}
	return config
}
