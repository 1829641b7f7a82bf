// Package smoketest proves the local environment behaves like EKS where the
// provider depends on it: pods of a Deployment are scheduled to the kwok node
// and become Ready, the pod identity webhook mutates them through the real
// admission path, the API server serves the EKS-style issuer, and moto knows
// the cluster's OIDC provider.
package smoketest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const role = "arn:aws:iam::123456789012:role/smoke"

func setup(t *testing.T) (context.Context, kubernetes.Interface, string) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("needs the local environment: set TF_ACC=1 (make test does)")
	}
	ctx := t.Context()
	client, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "smoke-" + rand.String(6)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ctx, client, ns
}

func createSA(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, annotations map[string]string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitWebhookSees(t, ctx, client, ns, name)
}

// waitWebhookSees waits until the webhook mutates pods of ServiceAccount
// ns/name.
func waitWebhookSees(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string) {
	t.Helper()
	if err := testenv.WaitWebhookMutates(ctx, client, ns, name, true); err != nil {
		t.Fatalf("the webhook never saw ServiceAccount %s/%s: %v", ns, name, err)
	}
}

func TestDeploymentPodsAreScheduledReadyAndMutated(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: role})

	labels := map[string]string{"app": "smoke"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{podidentity.SkipContainersAnnotation: "skipped"},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName: "app",
					InitContainers:     []corev1.Container{{Name: "init", Image: "busybox"}},
					Containers: []corev1.Container{
						{Name: "app", Image: "app"},
						{Name: "preset", Image: "app", Env: []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111111111111:role/own"}}},
						{Name: "skipped", Image: "app"},
					},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=smoke"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		if len(pods) != 3 {
			return false, nil
		}
		for _, p := range pods {
			if p.Spec.NodeName != testenv.FakeNodeName || p.Status.Phase != corev1.PodRunning || !ready(p) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("3 pods Running and Ready on %s: %v (have %d)", testenv.FakeNodeName, err, len(pods))
	}

	for _, p := range pods {
		app := container(t, p, "app")
		if v := envValue(app, "AWS_ROLE_ARN"); v != role {
			t.Errorf("%s: app AWS_ROLE_ARN = %q, want %q", p.Name, v, role)
		}
		if v := envValue(app, "AWS_WEB_IDENTITY_TOKEN_FILE"); v != "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" {
			t.Errorf("%s: app AWS_WEB_IDENTITY_TOKEN_FILE = %q", p.Name, v)
		}
		if v := envValue(initContainer(t, p, "init"), "AWS_ROLE_ARN"); v != role {
			t.Errorf("%s: init container AWS_ROLE_ARN = %q, want %q", p.Name, v, role)
		}
		preset := container(t, p, "preset")
		if v := envValue(preset, "AWS_ROLE_ARN"); v != "arn:aws:iam::111111111111:role/own" {
			t.Errorf("%s: preset container AWS_ROLE_ARN = %q, want its own value", p.Name, v)
		}
		if hasEnv(preset, "AWS_WEB_IDENTITY_TOKEN_FILE") {
			t.Errorf("%s: preset container got AWS_WEB_IDENTITY_TOKEN_FILE", p.Name)
		}
		skipped := container(t, p, "skipped")
		if hasEnv(skipped, "AWS_ROLE_ARN") || hasMount(skipped) {
			t.Errorf("%s: skipped container was mutated: %+v", p.Name, skipped.Env)
		}
		aud, exp := tokenProjection(p)
		if aud != "sts.amazonaws.com" || exp != 86400 {
			t.Errorf("%s: token volume audience %q expiration %d, want sts.amazonaws.com 86400", p.Name, aud, exp)
		}
	}
}

func TestServiceAccountAnnotationsShapeTheMutation(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "tuned", map[string]string{
		podidentity.RoleARNAnnotation:              role,
		podidentity.AudienceAnnotation:             "custom.example.com",
		podidentity.STSRegionalEndpointsAnnotation: "true",
		podidentity.TokenExpirationAnnotation:      "300",
	})
	p := createPod(t, ctx, client, ns, "tuned", nil)
	app := container(t, *p, "app")
	if v := envValue(app, "AWS_STS_REGIONAL_ENDPOINTS"); v != "regional" {
		t.Errorf("AWS_STS_REGIONAL_ENDPOINTS = %q, want regional", v)
	}
	aud, exp := tokenProjection(*p)
	if aud != "custom.example.com" || exp != 600 {
		t.Errorf("token volume audience %q expiration %d, want custom.example.com and 600 (the floor)", aud, exp)
	}
}

func TestSkipLabelExcludesThePod(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: role})
	p := createPod(t, ctx, client, ns, "app", map[string]string{podidentity.SkipPodLabel: "true"})
	if hasEnv(container(t, *p, "app"), "AWS_ROLE_ARN") {
		t.Error("pod labelled to skip the webhook was mutated")
	}
	if aud, _ := tokenProjection(*p); aud != "" {
		t.Error("pod labelled to skip the webhook got the token volume")
	}
}

func TestWebhookCacheDelayReproducesTheRace(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	if err := testenv.SetWebhookCacheDelay(ctx, ns, 5*time.Second); errors.Is(err, testenv.ErrNoWebhookKnob) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testenv.SetWebhookCacheDelay(context.Background(), ns, 0) })

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "racy", Namespace: ns, Annotations: map[string]string{podidentity.RoleARNAnnotation: role}}}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := createPod(t, ctx, client, ns, "racy", nil)
	if hasEnv(container(t, *p, "app"), "AWS_ROLE_ARN") {
		t.Fatal("pod created inside the cache delay was mutated; the knob has no effect")
	}
	// A delay, not a block: the webhook catches up.
	waitWebhookSees(t, ctx, client, ns, "racy")
}

func TestIssuerDiscoveryAndOIDCProvider(t *testing.T) {
	t.Parallel()
	ctx, client, _ := setup(t)
	issuer := os.Getenv("IRSA_TESTENV_OIDC_ISSUER")
	if !strings.HasPrefix(issuer, "https://oidc.eks.us-east-1.amazonaws.com/id/") {
		t.Fatalf("IRSA_TESTENV_OIDC_ISSUER = %q, want an EKS-style issuer", issuer)
	}
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != issuer || doc.JWKSURI != issuer+"/keys" {
		t.Errorf("openid-configuration = %+v, want issuer %s", doc, issuer)
	}

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arn := fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", os.Getenv("IRSA_TESTENV_ACCOUNT_ID"), strings.TrimPrefix(issuer, "https://"))
	out, err := iam.NewFromConfig(cfg).GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetOpenIDConnectProvider(%s): %v", arn, err)
	}
	if len(out.ClientIDList) != 1 || out.ClientIDList[0] != "sts.amazonaws.com" {
		t.Errorf("client IDs = %v, want [sts.amazonaws.com]", out.ClientIDList)
	}
}

func createPod(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, sa string, labels map[string]string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bare-", Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func container(t *testing.T, p corev1.Pod, name string) corev1.Container {
	t.Helper()
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("pod %s has no container %s", p.Name, name)
	return corev1.Container{}
}

func initContainer(t *testing.T, p corev1.Pod, name string) corev1.Container {
	t.Helper()
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("pod %s has no init container %s", p.Name, name)
	return corev1.Container{}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func hasEnv(c corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

func hasMount(c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == podidentity.TokenVolumeName {
			return true
		}
	}
	return false
}

func tokenProjection(p corev1.Pod) (string, int64) {
	for _, v := range p.Spec.Volumes {
		if v.Name == podidentity.TokenVolumeName && v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					return s.ServiceAccountToken.Audience, ptr.Deref(s.ServiceAccountToken.ExpirationSeconds, 0)
				}
			}
		}
	}
	return "", 0
}

func TestWebhookOutageIsScopedToOneNamespace(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: role})
	if err := testenv.SetWebhookOutage(ctx, client, ns, "app", true); err != nil {
		t.Fatal(err)
	}
	if p := createPod(t, ctx, client, ns, "app", nil); hasEnv(container(t, *p, "app"), "AWS_ROLE_ARN") {
		t.Fatal("pod created during the outage was mutated")
	}
	if err := testenv.SetWebhookOutage(ctx, client, ns, "app", false); err != nil {
		t.Fatal(err)
	}
	if p := createPod(t, ctx, client, ns, "app", nil); !hasEnv(container(t, *p, "app"), "AWS_ROLE_ARN") {
		t.Fatal("pod created after the outage was not mutated")
	}
}
