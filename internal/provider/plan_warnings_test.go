package provider

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// terraform-plugin-testing cannot see warnings, and a plan's warnings are
// how the provider says what apply will restart or leave alone. These tests
// talk to the provider server as Terraform does (GetProviderSchema,
// ConfigureProvider, PlanResourceChange) against the local cluster, and read
// the diagnostics.

const bindingType = "irsa_service_account_binding"

type planServer struct {
	t        *testing.T
	server   tfprotov6.ProviderServer
	resource tftypes.Object
}

func newPlanServer(t *testing.T) *planServer {
	t.Helper()
	requireEnv(t)
	server, err := providerserver.NewProtocol6WithError(New("test", "plan")())()
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
	config := objectValue(t, providerType, map[string]tftypes.Value{"trust_check": tftypes.NewValue(tftypes.String, "off")})
	resp, err := server.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: dynamic(t, providerType, config)})
	if err != nil || hasErrors(resp.Diagnostics) {
		t.Fatalf("configure: %v %v", err, resp.Diagnostics)
	}
	resourceType, ok := schemas.ResourceSchemas[bindingType].ValueType().(tftypes.Object)
	if !ok {
		t.Fatal("resource schema is not an object")
	}
	return &planServer{t: t, server: server, resource: resourceType}
}

// objectValue is an object of type typ with attrs set and every other
// attribute null.
func objectValue(t *testing.T, typ tftypes.Object, attrs map[string]tftypes.Value) tftypes.Value {
	t.Helper()
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		if v, ok := attrs[name]; ok {
			vals[name] = v
			continue
		}
		vals[name] = tftypes.NewValue(at, nil)
	}
	for name := range attrs {
		if _, ok := typ.AttributeTypes[name]; !ok {
			t.Fatalf("no attribute %q", name)
		}
	}
	return tftypes.NewValue(typ, vals)
}

func dynamic(t *testing.T, typ tftypes.Type, v tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

func hasErrors(diags []*tfprotov6.Diagnostic) bool {
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			return true
		}
	}
	return false
}

// plan plans the binding with config attrs, over prior (nil: create).
func (p *planServer) plan(config map[string]tftypes.Value, prior map[string]tftypes.Value) []*tfprotov6.Diagnostic {
	p.t.Helper()
	return p.planWithPrivate(config, prior, nil)
}

// planWithPrivate is plan with the prior private state's provider keys, as
// the framework encodes them (a JSON object of base64 values).
func (p *planServer) planWithPrivate(config map[string]tftypes.Value, prior map[string]tftypes.Value, private map[string]string) []*tfprotov6.Diagnostic {
	p.t.Helper()
	var priorPrivate []byte
	if private != nil {
		raw := map[string][]byte{}
		for k, v := range private {
			raw[k] = []byte(v)
		}
		var err error
		if priorPrivate, err = json.Marshal(raw); err != nil {
			p.t.Fatal(err)
		}
	}
	cfg := objectValue(p.t, p.resource, config)
	priorState := tftypes.NewValue(p.resource, nil)
	proposed := cfg
	if prior != nil {
		priorState = objectValue(p.t, p.resource, prior)
		merged := map[string]tftypes.Value{}
		for k, v := range prior {
			merged[k] = v
		}
		for k, v := range config {
			merged[k] = v
		}
		proposed = objectValue(p.t, p.resource, merged)
	}
	resp, err := p.server.PlanResourceChange(context.Background(), &tfprotov6.PlanResourceChangeRequest{
		TypeName:         bindingType,
		PriorState:       dynamic(p.t, p.resource, priorState),
		ProposedNewState: dynamic(p.t, p.resource, proposed),
		Config:           dynamic(p.t, p.resource, cfg),
		PriorPrivate:     priorPrivate,
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.Diagnostics
}

func str(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

func bindingAttrs(ns, sa, role string) map[string]tftypes.Value {
	return map[string]tftypes.Value{"namespace": str(ns), "service_account": str(sa), "role_arn": str(role)}
}

// expectDiagnostic fails unless diags hold one of severity whose summary is
// summary and whose detail contains every fragment.
func expectDiagnostic(t *testing.T, diags []*tfprotov6.Diagnostic, severity tfprotov6.DiagnosticSeverity, summary string, fragments ...string) {
	t.Helper()
	for _, d := range diags {
		if d.Severity != severity || d.Summary != summary {
			continue
		}
		for _, f := range fragments {
			if !strings.Contains(d.Detail, f) {
				t.Errorf("%q lacks %q:\n%s", summary, f, d.Detail)
			}
		}
		return
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Severity.String()+": "+d.Summary)
	}
	t.Errorf("no %s %q among %v", severity, summary, got)
}

func TestPlanWarnings(t *testing.T) {
	p := newPlanServer(t)

	t.Run("a ServiceAccount created in the same apply is a warning, not an error", func(t *testing.T) {
		c := newTestCluster(t)
		diags := p.plan(bindingAttrs(c.ns, "not-yet", testRoleA), nil)
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Service Account Not Found Yet", c.ns+"/not-yet", "depends_on")
		if hasErrors(diags) {
			t.Errorf("errors: %v", diags)
		}
	})

	t.Run("apply will recycle names what it restarts and leaves alone", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		c.createDeployment("api", "api", 2)
		c.createBarePod("bare", "api")
		c.waitPods("api", 2)
		diags := p.plan(bindingAttrs(c.ns, "api", testRoleA), nil)
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Apply Will Recycle Pods",
			"restart Deployment/api, as kubectl rollout restart does", "leave pod bare alone: bare pod", "touches nothing else")
	})

	t.Run("pods no strategy fixes are named", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		c.createBarePod("bare", "api")
		diags := p.plan(bindingAttrs(c.ns, "api", testRoleA), nil)
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Pods Left Without Credentials", "bare: bare pod")
	})

	t.Run("an annotation another manager owns is a warning at plan", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		c.annotate("api", irsa.RoleARNAnnotation, testRoleC)
		diags := p.plan(bindingAttrs(c.ns, "api", testRoleA), nil)
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Service Account Annotation Owned by Another Manager",
			"Apply will fail unless this is resolved", `"kubectl-annotate"`, testRoleC)
		if hasErrors(diags) {
			t.Errorf("errors: %v", diags)
		}
	})

	t.Run("an import of a ServiceAccount another binding holds names that binding", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		// Another binding's apply, as its field manager writes it.
		holder := irsa.ServiceAccounts{Conn: kube.Conn{Client: c.client, FieldManager: DefaultFieldManager}, ID: "0123456789abcdef"}
		if _, err := holder.Apply(t.Context(), c.ns, "api", map[string]string{irsa.RoleARNAnnotation: testRoleA}, irsa.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		imported := bindingAttrs(c.ns, "api", testRoleA)
		imported["id"] = str(c.ns + "/api")
		diags := p.planWithPrivate(bindingAttrs(c.ns, "api", testRoleA), imported, map[string]string{"adopt": "true"})
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Import Takes the Service Account Over",
			c.ns+"/api", "binding 0123456789abcdef", "terraform state rm")
		// Not imported: no such warning.
		for _, d := range p.planWithPrivate(bindingAttrs(c.ns, "api", testRoleA), imported, map[string]string{"binding_id": `"fedcba9876543210"`}) {
			if d.Summary == "Import Takes the Service Account Over" {
				t.Errorf("a binding that was not imported warned: %s", d.Detail)
			}
		}
	})

	t.Run("a binding held the earlier way plans its move onto its own manager", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		legacy := irsa.ServiceAccounts{Conn: kube.Conn{Client: c.client, FieldManager: DefaultFieldManager}}
		if _, err := legacy.Apply(t.Context(), c.ns, "api", map[string]string{irsa.RoleARNAnnotation: testRoleA, "irsa-dev/binding-id": "0123456789abcdef"}, irsa.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		prior := bindingAttrs(c.ns, "api", testRoleA)
		prior["id"] = str(c.ns + "/api")
		diags := p.planWithPrivate(bindingAttrs(c.ns, "api", testRoleA), prior, map[string]string{"binding_id": `"0123456789abcdef"`})
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityWarning, "Binding Moves onto Its Own Field Manager",
			c.ns+"/api", DefaultFieldManager+"/0123456789abcdef", "no pod is")
		// Held by another binding the earlier way: not ours to move.
		for _, d := range p.planWithPrivate(bindingAttrs(c.ns, "api", testRoleA), prior, map[string]string{"binding_id": `"fedcba9876543210"`}) {
			if d.Summary == "Binding Moves onto Its Own Field Manager" {
				t.Errorf("another binding's hold was planned as ours: %s", d.Detail)
			}
		}
	})

	t.Run("a binding recorded in another cluster stops the plan", func(t *testing.T) {
		c := newTestCluster(t)
		c.createSA("api")
		prior := bindingAttrs(c.ns, "api", testRoleA)
		prior["id"] = str(c.ns + "/api")
		prior["oidc_issuer"] = str("https://oidc.eks.eu-west-1.amazonaws.com/id/0THERC1USTER")
		diags := p.plan(bindingAttrs(c.ns, "api", testRoleA), prior)
		expectDiagnostic(t, diags, tfprotov6.DiagnosticSeverityError, "Connected to a Different Cluster",
			"0THERC1USTER", os.Getenv("IRSA_TESTENV_OIDC_ISSUER"), "stays in state")
	})
}
