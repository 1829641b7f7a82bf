package recycle_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// The engine against the real control plane and pod identity webhook of the
// local environment: what the fake clientset cannot show is how a real API
// server's watches behave (resourceVersions, bookmarks, field selectors).

func TestMain(m *testing.M) { testenv.Main(m) }

const testRole = "arn:aws:iam::123456789012:role/recycle-wait"

// counted is a client whose requests are counted by kind ("watch pods",
// "list pods", "get deployments"); refuseWatch answers watches 403, as RBAC
// without the watch verb does.
type counted struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counted) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

func countingClient(t *testing.T, refuseWatch bool) (kubernetes.Interface, *counted) {
	t.Helper()
	cfg, err := testenv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{n: map[string]int{}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			kind := requestKind(r)
			c.mu.Lock()
			c.n[kind]++
			c.mu.Unlock()
			if refuseWatch && strings.HasPrefix(kind, "watch ") {
				body := `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"watch is not granted"}`
				return &http.Response{StatusCode: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client, c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestKind names a namespaced request: /api/v1/namespaces/NS/pods is
// "list pods", .../deployments/NAME "get deployments", ?watch=true "watch".
func requestKind(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	i := 0
	for i < len(parts) && parts[i] != "namespaces" {
		i++
	}
	rest := parts[min(i+2, len(parts)):]
	if len(rest) == 0 {
		return strings.ToLower(r.Method) + " " + r.URL.Path
	}
	resource := rest[0]
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		return "watch " + resource
	case r.Method == http.MethodGet && len(rest) == 1:
		return "list " + resource
	case r.Method == http.MethodGet:
		return "get " + resource
	}
	return strings.ToLower(r.Method) + " " + strings.Join(rest[:1], "/")
}

// rolloutWorld is a namespace with a Deployment of n Ready pods running as a
// ServiceAccount that the role annotation has just been put on: every pod is
// stale.
func rolloutWorld(t *testing.T, n int32) (ns string) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("needs the local environment: set TF_ACC=1 (make test does)")
	}
	admin, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ns = "wait-" + rand.String(8)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			// A rollout of a few seconds, one pod at a time: long enough
			// for a wait that polled to read many times.
			MinReadySeconds: 2,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0))}},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "app"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			},
		},
	}
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(readyPods(t, admin, ns, int(n))); n == 0 {
		t.Fatal("no pods")
	}
	sa, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.Annotations = map[string]string{irsa.RoleARNAnnotation: testRole}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// readyPods waits for n live, Ready pods of the Deployment.
func readyPods(t *testing.T, client kubernetes.Interface, ns string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range list.Items {
			if kube.IsLive(&p) {
				pods = append(pods, p)
			}
		}
		if len(pods) != n {
			return false, nil
		}
		for _, p := range pods {
			ready := false
			for _, c := range p.Status.Conditions {
				ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			}
			if !ready {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%d Ready pods in %s: %v (have %d)", n, ns, err, len(pods))
	}
	return pods
}

// recycleAndCheck recycles the world's pods and checks, without the
// engine's own judgement, that every live pod is new and carries the role
// (the webhook's AWS_ROLE_ARN in every container).
func recycleAndCheck(t *testing.T, ns string, client kubernetes.Interface, n int) time.Duration {
	t.Helper()
	admin, err := testenv.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, p := range readyPods(t, admin, ns, n) {
		before[string(p.UID)] = true
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := (recycle.Engine{Conn: kube.Conn{Client: client, FieldManager: "irsa-test"}}).Recycle(ctx, recycle.RecycleOptions{
		Namespace: ns, ServiceAccount: "app", Credentials: irsa.Expectation{RoleARN: testRole},
		Strategy: recycle.StrategyRollout, Wait: true, MaxRetries: 3, GateTimeout: 30 * time.Second,
	})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Restart) != 1 {
		t.Fatalf("plan %+v, want the Deployment restarted", res.Plan)
	}
	for _, p := range readyPods(t, admin, ns, n) {
		if before[string(p.UID)] {
			t.Errorf("pod %s was not replaced", p.Name)
		}
		for _, c := range p.Spec.Containers {
			role := ""
			for _, e := range c.Env {
				if e.Name == "AWS_ROLE_ARN" {
					role = e.Value
				}
			}
			if role != testRole {
				t.Errorf("pod %s container %s: AWS_ROLE_ARN %q, want %q", p.Name, c.Name, role, testRole)
			}
		}
	}
	return took
}

// The wait reads the pods and the Deployment once and watches them: however
// long the rollout takes (seconds here: minReadySeconds, one pod at a
// time), it lists the pods twice in all (the plan, the wait) and gets the
// Deployment twice (its owner, the wait), where a LIST and a GET a second
// used to be the cost.
func TestAccRecycle_waitWatches(t *testing.T) {
	const replicas = 4
	ns := rolloutWorld(t, replicas)
	client, n := countingClient(t, false)
	took := recycleAndCheck(t, ns, client, replicas)
	t.Logf("recycle of %d pods took %s: %d pod LISTs, %d Deployment GETs, %d pod watches, %d Deployment watches",
		replicas, took.Round(time.Millisecond), n.get("list pods"), n.get("get deployments"), n.get("watch pods"), n.get("watch deployments"))
	if n.get("watch pods") != 1 || n.get("watch deployments") != 1 {
		t.Errorf("%d pod watches and %d Deployment watches, want one each", n.get("watch pods"), n.get("watch deployments"))
	}
	if took < 3*time.Second {
		t.Fatalf("the recycle took %s: too short to tell a watch from polling", took)
	}
	if got := n.get("list pods"); got > 2 {
		t.Errorf("%d pod LISTs, want 2: the plan's and the wait's first look", got)
	}
	if got := n.get("get deployments"); got > 2 {
		t.Errorf("%d Deployment GETs, want 2: the owner's and the wait's first look", got)
	}
}

// Where RBAC grants no watch (the least-privilege guide's roles), the wait
// reads every round, as before, and asks for each watch once.
func TestAccRecycle_waitPollsWithoutWatch(t *testing.T) {
	const replicas = 2
	ns := rolloutWorld(t, replicas)
	client, n := countingClient(t, true)
	took := recycleAndCheck(t, ns, client, replicas)
	t.Logf("recycle of %d pods took %s: %d pod LISTs, %d Deployment GETs", replicas, took.Round(time.Millisecond), n.get("list pods"), n.get("get deployments"))
	if n.get("watch pods") != 1 || n.get("watch deployments") != 1 {
		t.Errorf("%d pod watches and %d Deployment watches refused, want one each (never asked again)", n.get("watch pods"), n.get("watch deployments"))
	}
	// A read a second while it waits, besides the plan's.
	if want := 1 + int(took/time.Second)/2; n.get("list pods") < want {
		t.Errorf("%d pod LISTs in %s, want at least %d: the wait did not read the pods every round", n.get("list pods"), took, want)
	}
}
