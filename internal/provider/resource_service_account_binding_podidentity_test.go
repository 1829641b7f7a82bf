package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// Acceptance tests of mechanism = "pod_identity" against the local EKS
// identity plane: the EKS API emulator (associations, propagated to the
// webhook and EKS Auth a few seconds later, as on AWS), the webhook in
// container-credentials mode, the agent stand-in and moto. Each story ends
// with the SDK's own credential chain run with a recycled pod's environment:
// sts:GetCallerIdentity must name the association's role.

// podIdentityOracle reports whether pod p carries EKS Pod Identity
// credentials, from what AWS documents the webhook injects (../shared/
// IRSA.md), spelled out here: nothing of internal/podidentity is called.
func podIdentityOracle(p *corev1.Pod) (bool, string) {
	const (
		dir      = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
		volume   = "eks-pod-identity-token"
		audience = "pods.eks.amazonaws.com"
	)
	judged := oracleJudged(p)
	if len(judged) == 0 {
		return false, "no container to judge"
	}
	for _, c := range judged {
		if _, ok := oracleEnv(c, "AWS_ROLE_ARN"); ok {
			return false, fmt.Sprintf("container %s has IRSA's AWS_ROLE_ARN", c.Name)
		}
		if uri, ok := oracleEnv(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"); !ok || uri == "" {
			return false, fmt.Sprintf("container %s has no AWS_CONTAINER_CREDENTIALS_FULL_URI", c.Name)
		}
		if file, _ := oracleEnv(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); file != dir+"/"+volume {
			return false, fmt.Sprintf("container %s has AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%q, want %s/%s", c.Name, file, dir, volume)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == volume && m.MountPath == dir && m.ReadOnly)
		}
		if !mounted {
			return false, fmt.Sprintf("container %s does not mount %s read-only at %s", c.Name, volume, dir)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Name != volume || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == audience {
				return true, ""
			}
		}
	}
	return false, fmt.Sprintf("no projected token volume %s with audience %s", volume, audience)
}

// podIdentityConfig is a pod_identity binding with extra attributes; the
// trust check is off (EKS checks the role's trust itself, and each
// mechanism's trust check has its own tests).
func podIdentityConfig(ns, sa, role, extra string) string {
	return mechanismConfig(ns, sa, role, "pod_identity", extra)
}

// mechanismConfig is a binding of mechanism, with the provider set up for
// both mechanisms.
func mechanismConfig(ns, sa, role, mechanism, extra string) string {
	return fmt.Sprintf(`
provider "irsa" {
  trust_check  = "off"
  cluster_name = %q
}

resource "irsa_service_account_binding" "test" {
  namespace       = %q
  service_account = %q
  role_arn        = %q
  mechanism       = %q
%s
}
`, testenv.ClusterName, ns, sa, role, mechanism, extra)
}

func eksClient(t *testing.T) *eks.Client {
	t.Helper()
	client, err := testenv.EKSClient()
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// association is the ServiceAccount's association as EKS describes it,
// nil when there is none.
func (c *testCluster) association(sa string) (*eks.DescribePodIdentityAssociationOutput, error) {
	client := eksClient(c.t)
	list, err := client.ListPodIdentityAssociations(context.Background(), &eks.ListPodIdentityAssociationsInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(c.ns), ServiceAccount: aws.String(sa),
	})
	if err != nil || len(list.Associations) == 0 {
		return nil, err
	}
	return client.DescribePodIdentityAssociation(context.Background(), &eks.DescribePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), AssociationId: list.Associations[0].AssociationId,
	})
}

// checkAssociation asserts EKS has the ServiceAccount's association with
// role, and that state names it.
func (c *testCluster) checkAssociation(sa, role string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, err := c.association(sa)
		if err != nil {
			return err
		}
		if a == nil {
			return fmt.Errorf("EKS has no association for %s/%s", c.ns, sa)
		}
		if got := aws.ToString(a.Association.RoleArn); got != role {
			return fmt.Errorf("association role is %s, want %s", got, role)
		}
		rs := s.RootModule().Resources[resourceAddr]
		if rs == nil || rs.Primary.Attributes["association_id"] != aws.ToString(a.Association.AssociationId) {
			return fmt.Errorf("state's association_id does not name EKS's %s", aws.ToString(a.Association.AssociationId))
		}
		return nil
	}
}

// checkPodIdentityPods asserts app has n live pods, none of before, each
// Ready with container credentials (the oracle), and that the SDK's chain
// run as each of them is role through the container credentials endpoint
// (the agent, EKS Auth and moto answering).
func (c *testCluster) checkPodIdentityPods(app string, before map[string]corev1.Pod, n int, role string) resource.TestCheckFunc {
	return resource.ComposeAggregateTestCheckFunc(
		c.checkReplacedBy(app, before, n, podIdentityOracle),
		c.checkSDKIdentity(app, role, true),
	)
}

// assumedRole is the STS ARN prefix of a session of role.
func assumedRole(role string) string {
	name := role[strings.LastIndex(role, "/")+1:]
	return "arn:aws:sts::" + testenv.AccountID + ":assumed-role/" + name + "/"
}

func podIdentityRole(t *testing.T, name string) string {
	t.Helper()
	arn, err := testenv.CreatePodIdentityRole(context.Background(), name+"-"+rand.String(6))
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

// TestAccPodIdentity_lifecycle: create (association, gate, recycle, the
// pods' SDK chain gets the role), import, role change (recycled, the new
// role proven), drift of a deleted and of an edited association, destroy
// (only the association goes).
func TestAccPodIdentity_lifecycle(t *testing.T) {
	c := newTestCluster(t)
	roleA, roleB := podIdentityRole(t, "pi-a"), podIdentityRole(t, "pi-b")
	c.createSA("api")
	c.createDeployment("api", "api", 2)
	first := c.waitPods("api", 2)
	var second map[string]corev1.Pod
	var deletedID string
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if a, err := c.association("api"); err != nil || a != nil {
				return fmt.Errorf("the association must be gone after destroy (%v): %w", a, err)
			}
			if _, err := c.getSA("api"); err != nil {
				return fmt.Errorf("the ServiceAccount must survive destroy: %w", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: podIdentityConfig(c.ns, "api", roleA, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("mechanism"), knownvalue.StringExact("pod_identity")),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_id"), knownvalue.StringRegexp(regexp.MustCompile(`^a-[a-z0-9]{17}$`))),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("association_arn"), knownvalue.StringRegexp(regexp.MustCompile(`^arn:aws:eks:[a-z0-9-]+:`+testenv.AccountID+`:podidentityassociation/`+testenv.ClusterName+`/a-`))),
					statecheck.ExpectKnownValue(resourceAddr, tfjsonpath.New("stale_pods"), knownvalue.ListExact(nil)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAssociation("api", roleA),
					c.checkPodIdentityPods("api", first, 2, roleA),
					c.checkAnnotations("api", map[string]string{}),
				),
			},
			{
				ResourceName:      resourceAddr,
				ImportState:       true,
				ImportStateId:     c.ns + "/api",
				ImportStateVerify: true,
			},
			{
				PreConfig: func() { second = c.pods("api") },
				Config:    podIdentityConfig(c.ns, "api", roleB, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAssociation("api", roleB),
					func(s *terraform.State) error { return c.checkPodIdentityPods("api", second, 2, roleB)(s) },
				),
			},
			{
				// Someone deletes the association: the plan shows it.
				PreConfig: func() {
					a, err := c.association("api")
					if err != nil || a == nil {
						t.Fatalf("no association to delete: %v", err)
					}
					deletedID = aws.ToString(a.Association.AssociationId)
					if _, err := eksClient(t).DeletePodIdentityAssociation(context.Background(), &eks.DeletePodIdentityAssociationInput{
						ClusterName: aws.String(testenv.ClusterName), AssociationId: a.Association.AssociationId,
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             podIdentityConfig(c.ns, "api", roleB, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// Apply makes it again, in place.
				Config: podIdentityConfig(c.ns, "api", roleB, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAssociation("api", roleB),
					func(s *terraform.State) error {
						if a, _ := c.association("api"); a == nil || aws.ToString(a.Association.AssociationId) == deletedID {
							return fmt.Errorf("the association was not made again")
						}
						return nil
					},
				),
			},
			{
				// Someone edits the association's role: drift.
				PreConfig: func() {
					a, err := c.association("api")
					if err != nil || a == nil {
						t.Fatalf("no association to edit: %v", err)
					}
					if _, err := eksClient(t).UpdatePodIdentityAssociation(context.Background(), &eks.UpdatePodIdentityAssociationInput{
						ClusterName: aws.String(testenv.ClusterName), AssociationId: a.Association.AssociationId, RoleArn: aws.String(roleA),
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config:             podIdentityConfig(c.ns, "api", roleB, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: podIdentityConfig(c.ns, "api", roleB, `  pod_identity = {
    tags = { team = "payments" }
  }`),
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkAssociation("api", roleB),
					func(*terraform.State) error {
						a, err := c.association("api")
						if err != nil || a == nil || a.Association.Tags["team"] != "payments" {
							return fmt.Errorf("association tags of %v: %w", a, err)
						}
						return nil
					},
				),
			},
			{
				// Someone turns session tags off: drift.
				PreConfig: func() {
					a, err := c.association("api")
					if err != nil || a == nil {
						t.Fatalf("no association to edit: %v", err)
					}
					if _, err := eksClient(t).UpdatePodIdentityAssociation(context.Background(), &eks.UpdatePodIdentityAssociationInput{
						ClusterName: aws.String(testenv.ClusterName), AssociationId: a.Association.AssociationId, DisableSessionTags: aws.Bool(true),
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: podIdentityConfig(c.ns, "api", roleB, `  pod_identity = {
    tags = { team = "payments" }
  }`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// Apply puts it back; then someone retags it: drift too.
				Config: podIdentityConfig(c.ns, "api", roleB, `  pod_identity = {
    tags = { team = "payments" }
  }`),
			},
			{
				PreConfig: func() {
					a, err := c.association("api")
					if err != nil || a == nil {
						t.Fatalf("no association to tag: %v", err)
					}
					if _, err := eksClient(t).TagResource(context.Background(), &eks.TagResourceInput{
						ResourceArn: a.Association.AssociationArn, Tags: map[string]string{"team": "billing"},
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config: podIdentityConfig(c.ns, "api", roleB, `  pod_identity = {
    tags = { team = "payments" }
  }`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// TestAccPodIdentity_foreignAssociation: an association someone else made
// stops the plan, naming it and the import; imported, a matching
// configuration plans nothing; one an EKS add-on owns can be neither
// taken nor imported.
func TestAccPodIdentity_foreignAssociation(t *testing.T) {
	c := newTestCluster(t)
	role := podIdentityRole(t, "pi-foreign")
	c.createSA("api")
	c.createSA("addon")
	client := eksClient(t)
	made, err := client.CreatePodIdentityAssociation(context.Background(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(c.ns), ServiceAccount: aws.String("api"), RoleArn: aws.String(role),
	})
	if err != nil {
		t.Fatal(err)
	}
	addon, err := client.CreatePodIdentityAssociation(context.Background(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(c.ns), ServiceAccount: aws.String("addon"), RoleArn: aws.String(role),
	})
	if err != nil {
		t.Fatal(err)
	}
	addonID := aws.ToString(addon.Association.AssociationId)
	if err := testenv.SetAssociationOwner(context.Background(), addonID, "arn:aws:eks:us-east-1:"+testenv.AccountID+":addon/"+testenv.ClusterName+"/vpc-cni/x"); err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(made.Association.AssociationId)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      podIdentityConfig(c.ns, "api", role, ""),
				ExpectError: regexp.MustCompile(`(?s)Pod Identity Association Already Exists.*` + id + `.*terraform import`),
			},
			{
				Config:      podIdentityConfig(c.ns, "addon", role, ""),
				ExpectError: regexp.MustCompile(`(?s)Owned by an EKS Add-on.*` + addonID),
			},
		},
	})
	before := c.pods("api")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Imported with a matching configuration, it plans nothing
				// and touches no pod.
				Config:          podIdentityConfig(c.ns, "api", role, ""),
				ResourceName:    resourceAddr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   c.ns + "/api",
				ImportPlanChecks: resource.ImportPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(resourceAddr, plancheck.ResourceActionNoop),
				}},
			},
		},
	})
	if now := c.pods("api"); len(uids(now)) != len(uids(before)) {
		t.Errorf("the import touched pods: %d before, %d after", len(before), len(now))
	}
	if a, err := c.association("addon"); err != nil || a == nil || aws.ToString(a.Association.AssociationId) != addonID {
		t.Errorf("the add-on's association changed: %v %v", a, err)
	}
}

// TestAccPodIdentity_clusterMismatch: a cluster_name whose EKS cluster
// reports another issuer than the connection stops the plan, naming both;
// an unknown name, too.
func TestAccPodIdentity_clusterMismatch(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	role := podIdentityRole(t, "pi-mismatch")
	other := strings.Replace(podIdentityConfig(c.ns, "api", role, ""), `trust_check  = "off"`, `trust_check  = "off"
  oidc_issuer  = "https://oidc.eks.us-east-1.amazonaws.com/id/OTHERCLUSTER"`, 1)
	unknown := strings.Replace(podIdentityConfig(c.ns, "api", role, ""), fmt.Sprintf("%q", testenv.ClusterName), `"no-such-cluster"`, 1)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: other, ExpectError: regexp.MustCompile(`(?s)EKS Cluster Is Not the Connected Cluster.*OTHERCLUSTER`)},
			{Config: unknown, ExpectError: regexp.MustCompile(`(?s)Unable to Describe EKS Cluster.*no-such-cluster`)},
		},
	})
	if a, err := c.association("api"); err != nil || a != nil {
		t.Errorf("a stopped plan made an association: %v %v", a, err)
	}
}

// TestAccPodIdentity_trustCheck: at plan, a role that trusts only IRSA, or
// narrows Pod Identity to another namespace, stops the plan with the
// statement to add; one narrowed to this ServiceAccount passes; warn
// plans anyway. Nothing reaches EKS.
func TestAccPodIdentity_trustCheck(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	irsaOnly := trustedRole(t, "system:serviceaccount:"+c.ns+":api")
	narrow := func(ns string) string {
		return createRole(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},`+
			`"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:RequestTag/kubernetes-namespace":"`+ns+`",`+
			`"aws:RequestTag/eks-cluster-name":"`+testenv.ClusterName+`"}}}]}`)
	}
	otherNS, thisNS := narrow("billing"), narrow(c.ns)
	checked := func(role, mode string) string {
		return strings.Replace(podIdentityConfig(c.ns, "api", role, ""), `trust_check  = "off"`, `trust_check  = "`+mode+`"`, 1)
	}
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: checked(irsaOnly, "error"), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Trust Policy Does Not Allow EKS Pod Identity.*no Allow statement lets pods.eks.amazonaws.com call sts:AssumeRole.*"Service": "pods.eks.amazonaws.com"`)},
			{Config: checked(otherNS, "error"), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Trust Policy Does Not Allow EKS Pod Identity.*kubernetes-namespace billing, not ` + c.ns)},
			{Config: checked(thisNS, "error"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: checked(otherNS, "warn"), PlanOnly: true, ExpectNonEmptyPlan: true},
		},
	})
	if a, err := c.association("api"); err != nil || a != nil {
		t.Errorf("a plan made an association: %v %v", a, err)
	}
}

// TestAccPodIdentity_trustPolicyRendered: the data source and the function
// render, for a migration, one document trusting both mechanisms; a role
// made with it is accepted by the EKS API (whose emulator reads trust
// policies with its own parser) and passes both mechanisms' trust checks.
func TestAccPodIdentity_trustPolicyRendered(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	var rendered string
	config := fmt.Sprintf(`
provider "irsa" {
  cluster_name = %q
}

data "irsa_trust_policy" "both" {
  service_accounts = ["%s/api"]
  mechanisms       = ["irsa", "pod_identity"]
}

output "pod_identity_only" {
  value = provider::irsa::trust_policy({
    service_accounts = ["%s/api"]
    mechanisms       = ["pod_identity"]
    cluster_name     = %q
  })
}
`, testenv.ClusterName, c.ns, c.ns, testenv.ClusterName)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				func(s *terraform.State) error {
					rendered = s.RootModule().Resources["data.irsa_trust_policy.both"].Primary.Attributes["json"]
					for _, want := range []string{`"Federated"`, `"sts:AssumeRoleWithWebIdentity"`, `"pods.eks.amazonaws.com"`, `"sts:TagSession"`, `"aws:RequestTag/kubernetes-namespace": "` + c.ns + `"`} {
						if !strings.Contains(rendered, want) {
							return fmt.Errorf("the document lacks %s:\n%s", want, rendered)
						}
					}
					return nil
				},
				resource.TestMatchOutput("pod_identity_only", regexp.MustCompile(`"aws:RequestTag/eks-cluster-name": "`+testenv.ClusterName+`"`)),
			),
		}},
	})
	role := createRole(t, rendered)
	// EKS accepts the role for an association.
	client := eksClient(t)
	made, err := client.CreatePodIdentityAssociation(context.Background(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(c.ns), ServiceAccount: aws.String("probe"), RoleArn: aws.String(role),
	})
	if err != nil {
		t.Fatalf("EKS refused the rendered policy's role: %v", err)
	}
	if _, err := client.DeletePodIdentityAssociation(context.Background(), &eks.DeletePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), AssociationId: made.Association.AssociationId,
	}); err != nil {
		t.Fatal(err)
	}
	checked := func(mechanism string) string {
		return strings.Replace(migrationConfig(c.ns, "api", role, mechanism), `trust_check  = "off"`, `trust_check  = "error"`, 1)
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: checked("irsa"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: checked("pod_identity"), PlanOnly: true, ExpectNonEmptyPlan: true},
		},
	})
}

// TestAccPodIdentity_bothMechanismsWarns: another tool's IRSA annotation on
// a pod_identity binding's ServiceAccount is a warning at refresh (the
// webhook gives Pod Identity precedence), not drift of the binding.
func TestAccPodIdentity_bothMechanismsWarns(t *testing.T) {
	c := newTestCluster(t)
	role := podIdentityRole(t, "pi-both")
	c.createSA("api")
	tf := newTerraformCLI(t, podIdentityConfig(c.ns, "api", role, ""))
	t.Cleanup(func() { tf.run("destroy", "-auto-approve", "-input=false") })
	if code, out := tf.run("apply", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	c.annotate("api", irsa.RoleARNAnnotation, testRoleC)
	code, out := tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 0 || !regexp.MustCompile(`(?s)Warning: Service Account Has Both Mechanisms.*`+regexp.QuoteMeta(testRoleC)).MatchString(out) {
		t.Fatalf("plan exited %d, want 0 with the warning naming %s:\n%s", code, testRoleC, out)
	}
}
