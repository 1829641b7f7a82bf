package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// These helpers are for tests and benchmarks running against an exported
// environment (see Main): they read the variables it exports.

// ErrNoWebhookKnob is returned by SetWebhookCacheDelay when the running
// webhook is upstream's, which has no such knob.
var ErrNoWebhookKnob = errors.New("the running pod identity webhook has no cache-delay knob (upstream binary)")

// RESTConfig is the admin configuration of the exported environment.
func RESTConfig() (*rest.Config, error) {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		return nil, errors.New("KUBECONFIG is not set: run against `make testenv-up` or from testenv.Main")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}

// Clientset is an admin clientset for the exported environment.
func Clientset() (kubernetes.Interface, error) {
	cfg, err := RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func webhookClient() (*http.Client, string, error) {
	url := os.Getenv("IRSA_TESTENV_WEBHOOK_URL")
	if url == "" {
		return nil, "", errors.New("IRSA_TESTENV_WEBHOOK_URL is not set: run against `make testenv-up` or from testenv.Main")
	}
	ca, err := os.ReadFile(os.Getenv("IRSA_TESTENV_CA_CERT"))
	if err != nil {
		return nil, "", fmt.Errorf("read IRSA_TESTENV_CA_CERT: %w", err)
	}
	return trustingClient(ca), url, nil
}

// trustingClient is an HTTP client that trusts the environment's CA.
func trustingClient(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// SetWebhookCacheDelay makes the webhook apply changes to the ServiceAccounts
// of namespace to its cache only after d, which reproduces the informer race
// on demand. Zero removes the delay.
func SetWebhookCacheDelay(ctx context.Context, namespace string, d time.Duration) error {
	hc, url, err := webhookClient()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url+"/testenv/cache-delay?namespace="+neturl.QueryEscape(namespace), strings.NewReader(d.String()))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNoWebhookKnob
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("set webhook cache delay: %s: %s", resp.Status, body)
	}
	return nil
}

// SetWebhookOutage takes the pod identity webhook away from namespace (down
// true) or gives it back, as a webhook outage with failurePolicy Ignore would:
// pods are admitted without mutation. It returns once the API server acts on
// the change, checked with dry-run pods of ServiceAccount sa, which must
// carry a role annotation.
func SetWebhookOutage(ctx context.Context, client kubernetes.Interface, namespace, sa string, down bool) error {
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:null}}}`, WebhookOutageLabel)
	if down {
		patch = fmt.Appendf(nil, `{"metadata":{"labels":{%q:"true"}}}`, WebhookOutageLabel)
	}
	if _, err := client.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	return WaitWebhookMutates(ctx, client, namespace, sa, !down)
}

// WaitWebhookMutates waits until pods of ServiceAccount namespace/sa are
// mutated by the webhook (want true) or admitted untouched (want false). It
// probes with dry-run pods: webhooks without side effects run on them, and
// nothing is created. The webhook reads ServiceAccounts from an informer
// cache, so a just-annotated ServiceAccount needs this before tests that
// check the mutation rather than the race.
func WaitWebhookMutates(ctx context.Context, client kubernetes.Interface, namespace, sa string, want bool) error {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: namespace},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		mutated := slices.ContainsFunc(p.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "AWS_ROLE_ARN" })
		return mutated == want, nil
	})
}
