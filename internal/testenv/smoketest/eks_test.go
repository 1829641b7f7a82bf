package smoketest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

func eksClient(t *testing.T) *eks.Client {
	t.Helper()
	c, err := testenv.EKSClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// associate creates the Pod Identity association of ns/sa with role
// through the EKS API emulator, as a user's tooling would (the SDK's EKS
// client), and deletes it when the test ends unless dissociate did. It
// returns at once: the association takes effect once it has propagated
// (waitContainerCredentials).
func associate(t *testing.T, ctx context.Context, ns, sa, roleARN string, mod ...func(*eks.CreatePodIdentityAssociationInput)) *ekstypes.PodIdentityAssociation {
	t.Helper()
	in := &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(ns), ServiceAccount: aws.String(sa), RoleArn: aws.String(roleARN),
	}
	for _, m := range mod {
		m(in)
	}
	e := eksClient(t)
	out, err := e.CreatePodIdentityAssociation(ctx, in)
	if err != nil {
		t.Fatalf("create the Pod Identity association of %s/%s: %v", ns, sa, err)
	}
	t.Cleanup(func() {
		_, err := e.DeletePodIdentityAssociation(context.Background(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testenv.ClusterName), AssociationId: out.Association.AssociationId})
		var nf *ekstypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("delete the Pod Identity association of %s/%s: %v", ns, sa, err)
		}
	})
	return out.Association
}

// dissociate deletes association a through the EKS API emulator.
func dissociate(t *testing.T, ctx context.Context, a *ekstypes.PodIdentityAssociation) {
	t.Helper()
	if _, err := eksClient(t).DeletePodIdentityAssociation(ctx, &eks.DeletePodIdentityAssociationInput{ClusterName: a.ClusterName, AssociationId: a.AssociationId}); err != nil {
		t.Fatalf("delete the Pod Identity association %s: %v", aws.ToString(a.AssociationId), err)
	}
}

// waitWebhookDropsContainerCredentials waits until new pods of ns/sa get
// no container credentials: a deletion has propagated.
func waitWebhookDropsContainerCredentials(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, sa string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return !hasEnv(dryRunPod(t, ctx, client, ns, sa).Spec.Containers[0], "AWS_CONTAINER_CREDENTIALS_FULL_URI"), nil
	})
	if err != nil {
		t.Fatalf("new pods of %s/%s kept container credentials after the association was deleted: %v", ns, sa, err)
	}
}

// TestEKSDescribeClusterMatchesTheAPIServer: the EKS API emulator's
// cluster is the environment's, so a cluster name can be checked against
// the Kubernetes connection as on EKS. The oracle is the API server
// itself (its discovery document) and the kubeconfig.
func TestEKSDescribeClusterMatchesTheAPIServer(t *testing.T) {
	t.Parallel()
	ctx, client, _ := setup(t)
	out, err := eksClient(t).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(testenv.ClusterName)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Cluster.Identity.Oidc.Issuer); got != discovery.Issuer || got == "" {
		t.Errorf("identity.oidc.issuer = %q, want the API server's issuer %q", got, discovery.Issuer)
	}
	rest, err := testenv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Cluster.Endpoint); got != rest.Host {
		t.Errorf("endpoint = %q, want the kubeconfig's server %q", got, rest.Host)
	}
	ca, err := os.ReadFile(os.Getenv("IRSA_TESTENV_CA_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Cluster.CertificateAuthority.Data); got != base64.StdEncoding.EncodeToString(ca) {
		t.Error("certificateAuthority.data is not the cluster CA, base64-encoded")
	}
	if got := aws.ToString(out.Cluster.Arn); got != "arn:aws:eks:us-east-1:123456789012:cluster/"+testenv.ClusterName || got != testenv.ClusterARN() {
		t.Errorf("arn = %q", got)
	}
}

// TestEKSAssociationReachesTheWebhookAfterPropagating: an association made
// through the EKS API, with a role in moto, gives the ServiceAccount's new
// pods container credentials through the real admission path, once it
// has propagated; deleting it gives them web identity again. The
// environment's own propagation delay is used (not changed: other tests
// share the emulator).
func TestEKSAssociationReachesTheWebhookAfterPropagating(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	createSA(t, ctx, client, ns, "app", map[string]string{podidentity.RoleARNAnnotation: role})
	roleARN, err := testenv.CreatePodIdentityRole(ctx, "smoke-pod-identity-"+rand.String(6))
	if err != nil {
		t.Fatal(err)
	}
	p, err := testenv.EKSPropagation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	delay, err := time.ParseDuration(p.Delay)
	if err != nil {
		t.Fatal(err)
	}

	e := eksClient(t)
	began := time.Now()
	out, err := e.CreatePodIdentityAssociation(ctx, &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(ns), ServiceAccount: aws.String("app"), RoleArn: aws.String(roleARN),
	})
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			_, _ = e.DeletePodIdentityAssociation(context.Background(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testenv.ClusterName), AssociationId: out.Association.AssociationId})
		}
	})
	// Eventually consistent, as on AWS: just after the call, pods still
	// get web identity. Only checked while the delay has surely not passed.
	if pod := dryRunPod(t, ctx, client, ns, "app"); hasEnv(pod.Spec.Containers[0], "AWS_CONTAINER_CREDENTIALS_FULL_URI") && time.Since(began) < delay {
		t.Errorf("container credentials %v after Create, before the propagation delay %v", time.Since(began), delay)
	}
	waitContainerCredentials(t, ctx, client, ns, "app")
	if took := time.Since(began); took < delay {
		t.Errorf("the association took effect after %v, before the propagation delay %v", took, delay)
	}

	if _, err := e.DeletePodIdentityAssociation(ctx, &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testenv.ClusterName), AssociationId: out.Association.AssociationId}); err != nil {
		t.Fatal(err)
	}
	deleted = true
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, delay+30*time.Second, true, func(ctx context.Context) (bool, error) {
		c := dryRunPod(t, ctx, client, ns, "app").Spec.Containers[0]
		return envValue(c, "AWS_ROLE_ARN") == role && !hasEnv(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"), nil
	})
	if err != nil {
		t.Fatalf("after the association was deleted, pods of %s/app never got web identity again: %v", ns, err)
	}
}

// dryRunPod is what the webhook makes of a pod of ns/sa right now.
func dryRunPod(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, sa string) *corev1.Pod {
	t.Helper()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	p, err := client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEKSKnobs drives the running emulator's test knobs through testenv:
// a slower propagation, an add-on's ownerArn, throttling and 5xx that the
// SDK's retryer retries (requests counted by the emulator).
//
// Not parallel: it changes the propagation delay every test shares, and
// puts it back.
func TestEKSKnobs(t *testing.T) {
	ctx, _, ns := setup(t)
	before, err := testenv.EKSPropagation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := time.ParseDuration(before.Delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testenv.SetEKSPropagationDelay(context.Background(), restore); err != nil {
			t.Errorf("restore the propagation delay: %v", err)
		}
		if err := testenv.SetEKSFaults(context.Background(), eksapi.Faults{}); err != nil {
			t.Errorf("disarm the faults: %v", err)
		}
	})
	// No sleeping between retries: the counts are the point, not the backoff.
	e, err := testenv.EKSClient(func(o *eks.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	const slower = 1500 * time.Millisecond
	if err := testenv.SetEKSPropagationDelay(ctx, slower); err != nil {
		t.Fatal(err)
	}
	roleARN, err := testenv.CreatePodIdentityRole(ctx, "smoke-knobs-"+rand.String(6))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	out, err := e.CreatePodIdentityAssociation(ctx, &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(testenv.ClusterName), Namespace: aws.String(ns), ServiceAccount: aws.String("app"), RoleArn: aws.String(roleARN),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := out.Association.AssociationId
	t.Cleanup(func() {
		_, _ = e.DeletePodIdentityAssociation(context.Background(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testenv.ClusterName), AssociationId: id})
	})
	listed := func() bool {
		data, err := os.ReadFile(filepath.Join(os.Getenv("IRSA_TESTENV_STATE"), "pod-identity", "identities.json"))
		if err != nil {
			t.Fatal(err)
		}
		var f struct{ Identities []podidentity.Identity }
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(f.Identities, podidentity.Identity{Namespace: ns, ServiceAccount: "app"})
	}
	if listed() && time.Since(began) < slower {
		t.Errorf("the webhook's identities file listed the association %v after Create, before the delay %v", time.Since(began), slower)
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, slower+10*time.Second, true, func(context.Context) (bool, error) { return listed(), nil }); err != nil {
		t.Fatalf("the identities file never listed the association: %v", err)
	}
	if took := time.Since(began); took < slower {
		t.Errorf("the association reached the identities file after %v, before the delay %v", took, slower)
	}

	const addon = "arn:aws:eks:us-east-1:123456789012:addon/irsa-local/aws-ebs-csi-driver/x"
	if err := testenv.SetAssociationOwner(ctx, aws.ToString(id), addon); err != nil {
		t.Fatal(err)
	}
	d, err := e.DescribePodIdentityAssociation(ctx, &eks.DescribePodIdentityAssociationInput{ClusterName: aws.String(testenv.ClusterName), AssociationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(d.Association.OwnerArn); got != addon {
		t.Errorf("ownerArn = %q, want %q", got, addon)
	}

	// ListClusters alone is faulted: no other test calls it.
	listClusters := func() (int, error) {
		counts, err := testenv.EKSRequestCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, callErr := e.ListClusters(ctx, &eks.ListClustersInput{})
		after, err := testenv.EKSRequestCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return after["ListClusters"] - counts["ListClusters"], callErr
	}
	if err := testenv.SetEKSFaults(ctx, eksapi.Faults{Throttle: 1, ServerErrors: 1, Operations: []string{"ListClusters"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := listClusters(); err != nil || n != 3 {
		t.Errorf("a throttle and a 5xx before success: %d requests, error %v; want 3 requests and success", n, err)
	}
	if err := testenv.SetEKSFaults(ctx, eksapi.Faults{Throttle: 3, Operations: []string{"ListClusters"}}); err != nil {
		t.Fatal(err)
	}
	n, err := listClusters()
	var throttled *ekstypes.ThrottlingException
	if !errors.As(err, &throttled) || n != 3 {
		t.Errorf("throttled past the retries: %d requests, error %v; want 3 requests and a ThrottlingException", n, err)
	}
}
