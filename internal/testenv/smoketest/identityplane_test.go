package smoketest

import (
	"os"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// TestEKSIdentityPlane_AssociationToCredentials is the environment's EKS
// identity plane end to end, as a user meets it: a ServiceAccount bound by
// IRSA gets web identity credentials (moto STS); an association made
// through the EKS API emulator with the SDK's EKS client, once propagated,
// gives its new pods container credentials (precedence over IRSA) that the
// SDK's default chain turns, through the agent stand-in, EKS Auth and moto
// AssumeRole, into a session of the association's role; pods created
// before keep web identity; once the association's deletion has
// propagated, new pods get web identity again. The oracles are the STS ARN
// formats and EKS's documented session name (IRSA.md).
func TestEKSIdentityPlane_AssociationToCredentials(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	irsaRole, irsaARN := createTrustRole(t, ctx, "plane-irsa", webIdentityTrust(ns, "app"))
	piRole := "plane-pi-" + rand.String(6)
	piARN, err := testenv.CreatePodIdentityRole(ctx, piRole)
	if err != nil {
		t.Fatal(err)
	}
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: irsaARN})
	wantWebIdentity := func(t *testing.T, what string) {
		t.Helper()
		pod := createdPod(t, ctx, client, ns, "app")
		id, err := testenv.IdentityOf(ctx, pod, "app")
		if err != nil {
			t.Fatalf("%s: the SDK chain with the pod's environment failed: %v", what, err)
		}
		if !assumedRolePattern(irsaRole, `[^/]+`).MatchString(id.ARN) || id.Source != "WebIdentityCredentials" {
			t.Errorf("%s: caller %s from %q, want a web identity session of %s", what, id.ARN, id.Source, irsaRole)
		}
	}

	wantWebIdentity(t, "before the association")
	before := createdPod(t, ctx, client, ns, "app")

	assoc := associate(t, ctx, ns, "app", piARN)
	waitContainerCredentials(t, ctx, client, ns, "app")

	pod := createdPod(t, ctx, client, ns, "app")
	c := container(t, *pod, "app")
	if got, want := envValue(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), os.Getenv("IRSA_TESTENV_AGENT_URL")+"/v1/credentials"; got != want || want == "/v1/credentials" {
		t.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI = %q, want the agent stand-in %q", got, want)
	}
	if hasEnv(c, "AWS_ROLE_ARN") || hasEnv(c, "AWS_WEB_IDENTITY_TOKEN_FILE") {
		t.Error("a pod of an associated ServiceAccount also got web identity: Pod Identity takes precedence")
	}
	id, err := testenv.IdentityOf(ctx, pod, "app")
	if err != nil {
		t.Fatalf("the SDK chain with the associated pod's environment failed: %v", err)
	}
	session := `eks-irsa-local-` + regexp.QuoteMeta(pod.Name) + `-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	if !assumedRolePattern(piRole, session).MatchString(id.ARN) || id.Source != "CredentialsEndpointProvider" {
		t.Errorf("caller %s from %q, want an eks- session of %s from the container provider", id.ARN, id.Source, piRole)
	}
	sess, err := testenv.EKSAuthSession(ctx, id.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.AssociationID != aws.ToString(assoc.AssociationId) || sess.RoleARN != piARN {
		t.Errorf("EKS Auth answered with association %s and role %s, want %s (Create's) and %s", sess.AssociationID, sess.RoleARN, aws.ToString(assoc.AssociationId), piARN)
	}

	// A pod keeps the mechanism it was admitted with.
	if id, err := testenv.IdentityOf(ctx, before, "app"); err != nil || !assumedRolePattern(irsaRole, `[^/]+`).MatchString(id.ARN) {
		t.Errorf("a pod created before the association: %+v, %v; want its web identity session of %s", id, err, irsaRole)
	}

	dissociate(t, ctx, assoc)
	waitWebhookDropsContainerCredentials(t, ctx, client, ns, "app")
	wantWebIdentity(t, "after the association was deleted")
}
