package smoketest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// These tests prove credentials, not env vars: a pod created through the
// real API server and mutated by the webhook is handed to the SDK's default
// chain, with its own environment and a token minted as the kubelet would,
// and sts:GetCallerIdentity says whose credentials came out. Expected ARNs
// and tags are written from the STS ARN format and the EKS user guide
// (IRSA.md), not from the code under test.

const account = "123456789012"

// createTrustRole creates a role in moto with trust policy trust, named
// name plus a random suffix, and returns its name and ARN.
func createTrustRole(t *testing.T, ctx context.Context, name, trust string) (string, string) {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name = name + "-" + rand.String(6)
	out, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
	return name, aws.ToString(out.Role.Arn)
}

// setTrust gives role name the trust policy trust (IAM
// UpdateAssumeRolePolicy in moto).
func setTrust(t *testing.T, ctx context.Context, name, trust string) {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iam.NewFromConfig(cfg).UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(trust)}); err != nil {
		t.Fatalf("update the trust policy of %s: %v", name, err)
	}
}

func webIdentityTrust(ns, sa string) string {
	issuer := strings.TrimPrefix(os.Getenv("IRSA_TESTENV_OIDC_ISSUER"), "https://")
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
"Principal":{"Federated":"arn:aws:iam::%s:oidc-provider/%s"},"Action":"sts:AssumeRoleWithWebIdentity",
"Condition":{"StringEquals":{"%s:sub":"system:serviceaccount:%s:%s","%s:aud":"sts.amazonaws.com"}}}]}`,
		account, issuer, issuer, ns, sa, issuer)
}

// podIdentityTrust is the documented trust policy of a Pod Identity role,
// with the actions given.
func podIdentityTrust(service string, actions ...string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":%q},"Action":[%s]}]}`,
		service, `"`+strings.Join(actions, `","`)+`"`)
}

// createdPod creates a one-container pod of ServiceAccount sa and reads it
// back, as the webhook mutated it.
func createdPod(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, sa string) *corev1.Pod {
	t.Helper()
	p := createPod(t, ctx, client, ns, sa, nil)
	got, err := client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func assumedRolePattern(role, session string) *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws:sts::` + account + `:assumed-role/` + regexp.QuoteMeta(role) + `/` + session + `$`)
}

func TestCallerIdentity_WebIdentity(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	roleName, roleARN := createTrustRole(t, ctx, "irsa", webIdentityTrust(ns, "app"))
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: roleARN})
	pod := createdPod(t, ctx, client, ns, "app")

	id, err := testenv.IdentityOf(ctx, pod, "app")
	if err != nil {
		t.Fatalf("the SDK chain with the pod's environment failed: %v", err)
	}
	if !assumedRolePattern(roleName, `[^/]+`).MatchString(id.ARN) {
		t.Errorf("caller ARN = %s, want an assumed-role session of %s", id.ARN, roleName)
	}
	if id.Source != "WebIdentityCredentials" || id.Account != account {
		t.Errorf("credentials from %q in account %q, want the SDK's web identity provider in %s", id.Source, id.Account, account)
	}
}

func TestCallerIdentity_NoCredentialsWithoutTheWebhook(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: "arn:aws:iam::" + account + ":role/none"})
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "skipped-", Namespace: ns, Labels: map[string]string{podidentity.SkipPodLabel: "true"}},
		Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	pod, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An unmutated pod has no AWS_* at all: the chain finds no credentials
	// (this process's own, which the environment exports, must not leak in).
	_, err = testenv.CallerIdentity(ctx, pod, "app")
	var sdkErr *testenv.SDKError
	if !errors.As(err, &sdkErr) || !strings.Contains(sdkErr.Message, "credentials") {
		t.Fatalf("CallerIdentity of an unmutated pod = %v, want the SDK's no-credentials error", err)
	}
}

// TestCallerIdentity_PodIdentity runs the container-credentials path end to
// end: associations made through the EKS API emulator → propagated to the
// webhook and EKS Auth → webhook env → agent stand-in → EKS Auth
// (TokenReview, association, trust) → moto AssumeRole.
func TestCallerIdentity_PodIdentity(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	pods := podIdentityTrust("pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession")
	trusted, trustedARN := createTrustRole(t, ctx, "pi", pods)
	untagged, untaggedARN := createTrustRole(t, ctx, "pi-untagged", pods)
	otherService, otherServiceARN := createTrustRole(t, ctx, "pi-ec2", pods)
	noTag, noTagARN := createTrustRole(t, ctx, "pi-notag", pods)
	_, goneARN := createTrustRole(t, ctx, "pi-gone", pods)

	for _, sa := range []string{"trusted", "other-service", "no-tag-session", "tags-disabled", "unassociated"} {
		// No role annotation: only an association gives them credentials.
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// EKS accepts an association only for a role that trusts Pod Identity
	// for both actions; a role can lose that trust afterwards, which only
	// EKS Auth, at credential time, notices.
	trustedAssoc := associate(t, ctx, ns, "trusted", trustedARN)
	associate(t, ctx, ns, "other-service", otherServiceARN)
	associate(t, ctx, ns, "no-tag-session", noTagARN)
	associate(t, ctx, ns, "tags-disabled", untaggedARN, func(in *eks.CreatePodIdentityAssociationInput) { in.DisableSessionTags = aws.Bool(true) })
	gone := associate(t, ctx, ns, "unassociated", goneARN)
	setTrust(t, ctx, otherService, podIdentityTrust("ec2.amazonaws.com", "sts:AssumeRole", "sts:TagSession"))
	setTrust(t, ctx, noTag, podIdentityTrust("pods.eks.amazonaws.com", "sts:AssumeRole"))
	setTrust(t, ctx, untagged, podIdentityTrust("pods.eks.amazonaws.com", "sts:AssumeRole"))
	for _, sa := range []string{"trusted", "other-service", "no-tag-session", "tags-disabled", "unassociated"} {
		waitContainerCredentials(t, ctx, client, ns, sa)
	}
	// A pod mutated while its ServiceAccount had an association keeps the
	// container-credentials env after the association is deleted; once the
	// deletion has propagated, EKS Auth knows no association for it.
	unassociated := createdPod(t, ctx, client, ns, "unassociated")
	dissociate(t, ctx, gone)
	waitWebhookDropsContainerCredentials(t, ctx, client, ns, "unassociated")

	t.Run("trusted", func(t *testing.T) {
		pod := createdPod(t, ctx, client, ns, "trusted")
		if v := envValue(container(t, *pod, "app"), "AWS_CONTAINER_CREDENTIALS_FULL_URI"); !strings.HasPrefix(v, "http://127.0.0.1:") {
			t.Fatalf("AWS_CONTAINER_CREDENTIALS_FULL_URI = %q, want the agent stand-in on loopback", v)
		}
		id, err := testenv.IdentityOf(ctx, pod, "app")
		if err != nil {
			t.Fatalf("the SDK chain with the pod's environment failed: %v", err)
		}
		// The session is named eks-CLUSTER-POD-UUID, cut to 64 characters.
		if !assumedRolePattern(trusted, `eks-irsa-local-`+regexp.QuoteMeta(pod.Name)+`-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).MatchString(id.ARN) {
			t.Errorf("caller ARN = %s, want an eks- session of %s", id.ARN, trusted)
		}
		if id.Source != "CredentialsEndpointProvider" {
			t.Errorf("credentials from %q, want the SDK's container (endpoint) provider", id.Source)
		}
		sess, err := testenv.EKSAuthSession(ctx, id.AccessKeyID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"eks-cluster-arn":            "arn:aws:eks:us-east-1:" + account + ":cluster/irsa-local",
			"eks-cluster-name":           "irsa-local",
			"kubernetes-namespace":       ns,
			"kubernetes-service-account": "trusted",
			"kubernetes-pod-name":        pod.Name,
			"kubernetes-pod-uid":         string(pod.UID),
		}
		if len(sess.Tags) != len(want) {
			t.Errorf("session tags = %v, want %v", sess.Tags, want)
		}
		for k, v := range want {
			if sess.Tags[k] != v {
				t.Errorf("session tag %s = %q, want %q", k, sess.Tags[k], v)
			}
		}
		if id := aws.ToString(trustedAssoc.AssociationId); sess.AssociationID != id || sess.RoleARN != trustedARN {
			t.Errorf("session of association %s for %s, want %s (Create's) for %s", sess.AssociationID, sess.RoleARN, id, trustedARN)
		}
	})

	t.Run("disabled session tags need no sts:TagSession", func(t *testing.T) {
		pod := createdPod(t, ctx, client, ns, "tags-disabled")
		id, err := testenv.IdentityOf(ctx, pod, "app")
		if err != nil {
			t.Fatalf("the SDK chain failed: %v", err)
		}
		if !strings.HasPrefix(id.ARN, "arn:aws:sts::"+account+":assumed-role/"+untagged+"/") {
			t.Errorf("caller ARN = %s, want a session of %s", id.ARN, untagged)
		}
		if sess, err := testenv.EKSAuthSession(ctx, id.AccessKeyID); err != nil || len(sess.Tags) != 0 {
			t.Errorf("session = %+v, %v; want one without tags", sess, err)
		}
	})

	// Refusals reach the application as the SDK's error: the agent answers
	// EKS Auth's status with its code in a plain-text message. A role that
	// lost its trust is AccessDenied at credential time.
	for _, tc := range []struct {
		sa, code string
		status   int
	}{
		{"other-service", "AccessDeniedException", 400},
		{"no-tag-session", "AccessDeniedException", 400},
		{"unassociated", "ResourceNotFoundException", 404},
	} {
		t.Run("refused "+tc.sa, func(t *testing.T) {
			pod := unassociated
			if tc.sa != "unassociated" {
				pod = createdPod(t, ctx, client, ns, tc.sa)
			}
			arn, err := testenv.CallerIdentity(ctx, pod, "app")
			var sdkErr *testenv.SDKError
			if !errors.As(err, &sdkErr) {
				t.Fatalf("CallerIdentity = %q, %v; want the SDK's error", arn, err)
			}
			if !strings.Contains(sdkErr.Message, "("+tc.code+")") || sdkErr.HTTPStatus != tc.status {
				t.Errorf("SDK error %q (HTTP %d), want %s with HTTP %d", sdkErr.Message, sdkErr.HTTPStatus, tc.code, tc.status)
			}
		})
	}
}
