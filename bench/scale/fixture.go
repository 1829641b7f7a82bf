package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// The roles the bindings flip between. trust_check is off: IAM is not what
// is measured, and kubernetes_annotations does not look at it.
const (
	roleA = "arn:aws:iam::" + testenv.AccountID + ":role/bench-a"
	roleB = "arn:aws:iam::" + testenv.AccountID + ":role/bench-b"
)

// layout is the fixture's shape, from the issue at -scale 1.
type layout struct {
	namespaces int   // 50
	perNS      int   // app and bare ServiceAccounts per namespace: 10
	replicas   int   // pods per Deployment: 10
	planSizes  []int // bindings per plan: 50, 200, 500
	recycle    int   // recycled bindings, one per namespace: 50
}

func newLayout(scale float64) layout {
	l := layout{namespaces: max(1, int(math.Round(50*scale))), perNS: 10, replicas: 10}
	total := l.namespaces * l.perNS
	for _, n := range []int{50, 200, 500} {
		if n = min(total, max(1, int(math.Round(float64(n)*scale)))); !slices.Contains(l.planSizes, n) {
			l.planSizes = append(l.planSizes, n)
		}
	}
	l.recycle = l.namespaces
	return l
}

// total is the number of app (and of bare) ServiceAccounts.
func (l layout) total() int { return l.namespaces * l.perNS }

// sa is one ServiceAccount of the fixture.
type sa struct{ namespace, name string }

func namespaceName(i int) string { return fmt.Sprintf("bench-%02d", i) }

// podIdentityNamespaceName names the pod_identity bindings' namespaces,
// apart from the others: the plans then run on the fixture, whose
// namespaces hold no pods but those of the app and role-change
// ServiceAccounts.
func podIdentityNamespaceName(i int) string { return fmt.Sprintf("bench-pi-%02d", i) }

// apps are the first n ServiceAccounts with credentialed 10-replica
// Deployments, namespace by namespace: 50 bindings are all of the first 5
// namespaces, 500 all of the 50.
func (l layout) apps(n int) []sa {
	var out []sa
	for ns := 0; ns < l.namespaces && len(out) < n; ns++ {
		for i := 0; i < l.perNS && len(out) < n; i++ {
			out = append(out, sa{namespaceName(ns), fmt.Sprintf("app-%d", i)})
		}
	}
	return out
}

// podIdentity are the ServiceAccounts of the pod_identity bindings, perNS
// in each of namespaces of their own, as many as the apps' (500 at -scale
// 1): bare until their associations have propagated, then each backs a
// Deployment like an app ServiceAccount.
func (l layout) podIdentity() []sa {
	var out []sa
	for ns := range l.namespaces {
		for i := range l.perNS {
			out = append(out, sa{podIdentityNamespaceName(ns), fmt.Sprintf("pi-%d", i)})
		}
	}
	return out
}

// bare are the ServiceAccounts of one apply-create set (createSet), perNS
// in each namespace, without pods or annotations.
func (l layout) bare(set string) []sa {
	var out []sa
	for ns := range l.namespaces {
		for i := range l.perNS {
			out = append(out, sa{namespaceName(ns), fmt.Sprintf("%s-%d", set, i)})
		}
	}
	return out
}

// allBare are the ServiceAccounts of every apply-create set: one per tool and run.
func (l layout) allBare(runs int) []sa {
	var out []sa
	for r := range runs {
		out = slices.Concat(out, l.bare(createSet("ours", r)), l.bare(createSet("peer", r)))
	}
	return out
}

// oneEach is the ServiceAccount name in every namespace, for the role
// change: "rc" recycled by the provider in a state of its own, "ri" by the
// provider in the state of every app binding, "kc" by kubectl. Each backs a
// 10-replica Deployment, so all recycle the same number of pods. The
// provider's two states need sets of their own: a ServiceAccount has one
// binding, and a second state binding it to another role is refused.
func (l layout) oneEach(name string) []sa {
	out := make([]sa, 0, l.namespaces)
	for ns := range l.namespaces {
		out = append(out, sa{namespaceName(ns), name})
	}
	return out
}

// fixtureLimit bounds the fixture's concurrent creates.
const fixtureLimit = 32

// createFixture creates the namespaces and every ServiceAccount (bare: the
// apply-create sets and the pod_identity ServiceAccounts, when those
// scenarios run), and the
// Deployments of the app and kc ServiceAccounts, whose role annotation is
// set at creation so the webhook injects into every pod. The rc and ri
// Deployments come later (createDeployments), once the provider has
// annotated their ServiceAccounts.
func (b *bench) createFixture(ctx context.Context, l layout, bare []sa) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fixtureLimit)
	var namespaces []string
	for ns := range l.namespaces {
		namespaces = append(namespaces, namespaceName(ns))
	}
	for _, s := range bare {
		if !slices.Contains(namespaces, s.namespace) {
			namespaces = append(namespaces, s.namespace)
		}
	}
	for _, ns := range namespaces {
		g.Go(func() error {
			_, err := b.client.CoreV1().Namespaces().Create(gctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create namespaces: %w", err)
	}
	// The namespaces' default ServiceAccount is not needed: pods name theirs.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(fixtureLimit)
	annotated := map[string]string{"eks.amazonaws.com/role-arn": roleA}
	for _, s := range l.apps(l.total()) {
		g.Go(func() error { return b.createServiceAccount(gctx, s, annotated) })
	}
	for _, s := range l.oneEach("kc") {
		g.Go(func() error { return b.createServiceAccount(gctx, s, annotated) })
	}
	for _, s := range slices.Concat(bare, l.oneEach("rc"), l.oneEach("ri")) {
		g.Go(func() error { return b.createServiceAccount(gctx, s, nil) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create ServiceAccounts: %w", err)
	}
	// The webhook reads ServiceAccounts from an informer cache: wait until
	// it sees the last one annotated before creating pods.
	last := l.oneEach("kc")[l.namespaces-1]
	if err := testenv.WaitWebhookMutates(ctx, b.client, last.namespace, last.name, true); err != nil {
		return fmt.Errorf("wait for the webhook to see the annotations: %w", err)
	}
	return b.createDeployments(ctx, slices.Concat(l.apps(l.total()), l.oneEach("kc")), l.replicas)
}

func (b *bench) createServiceAccount(ctx context.Context, s sa, annotations map[string]string) error {
	_, err := b.client.CoreV1().ServiceAccounts(s.namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Annotations: annotations},
	}, metav1.CreateOptions{FieldManager: "bench-fixture"})
	return err
}

// createDeployments creates one Deployment per ServiceAccount, named after it.
func (b *bench) createDeployments(ctx context.Context, sas []sa, replicas int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fixtureLimit)
	for _, s := range sas {
		g.Go(func() error {
			labels := map[string]string{"app": s.name}
			_, err := b.client.AppsV1().Deployments(s.namespace).Create(gctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To(int32(replicas)),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							ServiceAccountName: s.name,
							Containers:         []corev1.Container{{Name: "app", Image: "bench"}},
						},
					},
				},
			}, metav1.CreateOptions{FieldManager: "bench-fixture"})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create Deployments: %w", err)
	}
	return nil
}

// settle waits until every Deployment of the fixture is rolled out and
// every pod is Running with the role's credentials, and no other pod
// (an old one terminating) is left: the next measurement starts from a
// quiet cluster. want is the number of pods.
func (b *bench) settle(ctx context.Context, want int) error {
	began := time.Now()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 15*time.Minute, true, func(ctx context.Context) (bool, error) {
		deps, err := b.client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, d := range deps.Items {
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != *d.Spec.Replicas ||
				d.Status.ReadyReplicas != *d.Spec.Replicas || d.Status.Replicas != *d.Spec.Replicas {
				last = fmt.Sprintf("Deployment %s/%s: %d of %d updated and ready", d.Namespace, d.Name, d.Status.ReadyReplicas, *d.Spec.Replicas)
				return false, nil
			}
		}
		pods, err := b.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err
		}
		running, credentialed := 0, 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
			// IRSA's variable, or EKS Pod Identity's (the pi ServiceAccounts).
			if slices.ContainsFunc(p.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
				return e.Name == "AWS_ROLE_ARN" || e.Name == "AWS_CONTAINER_CREDENTIALS_FULL_URI"
			}) {
				credentialed++
			}
		}
		last = fmt.Sprintf("%d pods, %d Running, %d credentialed, want %d", len(pods.Items), running, credentialed, want)
		return len(pods.Items) == want && running == want && credentialed == want, nil
	})
	if err != nil {
		return fmt.Errorf("the cluster did not settle (%s): %w", last, err)
	}
	fmt.Fprintf(os.Stderr, "  settled in %.1fs: %s\n", time.Since(began).Seconds(), last)
	return nil
}
