package smoketest

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// TestContainerCredentialsForListedServiceAccount lists one ServiceAccount in
// the webhook's identities file, as the EKS API would after an association,
// and creates pods through the real API server: the listed one gets container
// credentials although it carries the role annotation, an unlisted one with
// the same annotation still gets web identity. Expectations from the webhook's
// documented container-credentials mode and upstream's fixtures.
//
// Not parallel: it rewrites the whole identities file.
func TestContainerCredentialsForListedServiceAccount(t *testing.T) {
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "pod-identity", map[string]string{podidentity.RoleARNAnnotation: role})
	createSA(t, ctx, client, ns, "irsa", map[string]string{podidentity.RoleARNAnnotation: role})

	if err := testenv.SetPodIdentityAssociations(testenv.PodIdentityAssociation{Namespace: ns, ServiceAccount: "pod-identity"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testenv.SetPodIdentityAssociations(); err != nil {
			t.Errorf("empty the identities file: %v", err)
		}
	})
	waitContainerCredentials(t, ctx, client, ns, "pod-identity")

	pi := createPod(t, ctx, client, ns, "pod-identity", map[string]string{"app": "pi"})
	c := container(t, *pi, "app")
	// The environment points the webhook at its agent stand-in (on EKS,
	// upstream's default http://169.254.170.23/v1/credentials).
	if got, want := envValue(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), os.Getenv("IRSA_TESTENV_AGENT_URL")+"/v1/credentials"; got != want {
		t.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI = %q, want %q", got, want)
	}
	const tokenDir = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
	if got := envValue(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); got != tokenDir+"/eks-pod-identity-token" {
		t.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = %q", got)
	}
	for _, name := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		if hasEnv(c, name) {
			t.Errorf("a listed ServiceAccount with the role annotation got %s", name)
		}
	}
	if !hasReadOnlyMount(c, "eks-pod-identity-token", tokenDir) {
		t.Errorf("volume mounts = %+v, want eks-pod-identity-token read-only at %s", c.VolumeMounts, tokenDir)
	}
	audience, expiration := projection(*pi, "eks-pod-identity-token")
	if audience != "pods.eks.amazonaws.com" || expiration < 79200 || expiration > 86400 {
		t.Errorf("token projection: audience %q, expiration %d; want pods.eks.amazonaws.com, the default lifetime jittered into [79200, 86400]", audience, expiration)
	}
	if pi.Labels["eks.amazonaws.com/pod-identity"] != "enabled" || pi.Labels["app"] != "pi" {
		t.Errorf("labels = %v, want app: pi and eks.amazonaws.com/pod-identity: enabled", pi.Labels)
	}

	irsa := createPod(t, ctx, client, ns, "irsa", nil)
	c = container(t, *irsa, "app")
	if got := envValue(c, "AWS_ROLE_ARN"); got != role {
		t.Errorf("unlisted ServiceAccount: AWS_ROLE_ARN = %q, want %q", got, role)
	}
	if hasEnv(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI") {
		t.Error("an unlisted ServiceAccount got container credentials")
	}
	if _, labelled := irsa.Labels["eks.amazonaws.com/pod-identity"]; labelled {
		t.Error("a web identity pod got the pod-identity label")
	}
}

// waitContainerCredentials waits until the webhook has reloaded the
// identities file and gives ns/sa container credentials, probing with
// server-side dry-run creates.
func waitContainerCredentials(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, sa string) {
	t.Helper()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		return hasEnv(p.Spec.Containers[0], "AWS_CONTAINER_CREDENTIALS_FULL_URI"), nil
	})
	if err != nil {
		t.Fatalf("the webhook never gave %s/%s container credentials: %v", ns, sa, err)
	}
}

func hasReadOnlyMount(c corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path && m.ReadOnly {
			return true
		}
	}
	return false
}

func projection(p corev1.Pod, volume string) (string, int64) {
	for _, v := range p.Spec.Volumes {
		if v.Name == volume && v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					return s.ServiceAccountToken.Audience, ptr.Deref(s.ServiceAccountToken.ExpirationSeconds, 0)
				}
			}
		}
	}
	return "", 0
}
