package testenv

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The objects the environment creates in the cluster and in IAM once its
// components run: the kwok node, the webhook registration, the OIDC provider.

// createFakeNode registers the node kwok plays the kubelet for.
// fakeNodePods is how many pods the kwok node takes: more than the
// benchmark's fixture holds at once (11,500 pods, and the role change's
// surge), so that no pod stays Pending for want of room.
const fakeNodePods = "50000"

func createFakeNode(ctx context.Context, client kubernetes.Interface, procs []*Process) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        FakeNodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": FakeNodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourcePods:   resource.MustParse(fakeNodePods),
				corev1.ResourceCPU:    resource.MustParse("1000"),
				corev1.ResourceMemory: resource.MustParse("4Ti"),
			},
			Allocatable: corev1.ResourceList{
				corev1.ResourcePods:   resource.MustParse(fakeNodePods),
				corev1.ResourceCPU:    resource.MustParse("1000"),
				corev1.ResourceMemory: resource.MustParse("4Ti"),
			},
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the kwok node: %w", err)
	}
	return pollAlive(ctx, "the kwok node to become Ready", procs, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, FakeNodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // kwok has not registered it yet: keep polling
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// WebhookConfiguration is the registration of the pod identity webhook, the
// same shape as upstream's deployment manifest, with a URL (of the /mutate
// endpoint) instead of a Service because the webhook runs on loopback outside
// the cluster.
func WebhookConfiguration(url string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	// Ignore, as upstream's manifest and EKS ship it: a webhook that is
	// down lets pods start without credentials, silently. The provider
	// must notice that; a test environment that failed pod creation
	// instead would hide it.
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "iam-for-pods.amazonaws.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      ptr.To(url),
				CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
			TimeoutSeconds:          ptr.To[int32](10),
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "eks.amazonaws.com/skip-pod-identity-webhook", Operator: metav1.LabelSelectorOpDoesNotExist,
			}}},
			// Not upstream's: lets a test take the webhook away from its own
			// namespace only (SetWebhookOutage) without disturbing tests
			// running in parallel.
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: WebhookOutageLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
			}}},
		}},
	}
}

func registerWebhook(ctx context.Context, client kubernetes.Interface, url string, caBundle []byte) error {
	_, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, WebhookConfiguration(url+"/mutate", caBundle), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("register the pod identity webhook: %w", err)
	}
	return nil
}

// seedIAM creates the cluster's OIDC provider in moto, as `eksctl utils
// associate-iam-oidc-provider` does on a real account.
func seedIAM(ctx context.Context, motoURL, issuer string) error {
	client := iam.New(iam.Options{
		Region:       Region,
		BaseEndpoint: aws.String(motoURL),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
	_, err := client.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url:            aws.String(issuer),
		ClientIDList:   []string{"sts.amazonaws.com"},
		ThumbprintList: []string{strings.Repeat("9", 40)},
	})
	return err
}
