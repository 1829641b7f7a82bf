package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// countingClient is a fake clientset that counts requests by verb and
// resource ("list serviceaccounts").
type countingClient struct {
	*fake.Clientset
	mu    sync.Mutex
	calls map[string]int
}

func newCountingClient(objects ...runtime.Object) *countingClient {
	c := &countingClient{Clientset: fake.NewClientset(objects...), calls: map[string]int{}}
	c.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls[a.GetVerb()+" "+a.GetResource().Resource]++
		return false, nil, nil
	})
	return c
}

func (c *countingClient) count(call string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[call]
}

func serviceAccount(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func podOf(ns, name, sa string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: sa},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// fleet is ns namespaces of per ServiceAccounts, each with one pod.
func fleet(namespaces, per int) []runtime.Object {
	var objs []runtime.Object
	for n := range namespaces {
		ns := fmt.Sprintf("ns-%d", n)
		for i := range per {
			sa := fmt.Sprintf("sa-%d", i)
			objs = append(objs, serviceAccount(ns, sa), podOf(ns, sa+"-pod", sa, nil))
		}
	}
	return objs
}

func TestSnapshot_bindingsOfANamespaceShareTwoLists(t *testing.T) {
	client := newCountingClient(fleet(5, 10)...)
	s := NewSnapshot(client, 0)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for n := range 5 {
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ns, sa := fmt.Sprintf("ns-%d", n), fmt.Sprintf("sa-%d", i)
				got, err := s.ServiceAccount(t.Context(), ns, sa)
				if err != nil || got.Name != sa {
					failures.Add(1)
					return
				}
				pods, err := s.Pods(t.Context(), ns, sa, "")
				if err != nil || len(pods) != 1 || pods[0].Name != sa+"-pod" {
					failures.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d bindings read the wrong answer", failures.Load())
	}
	for call, want := range map[string]int{"list serviceaccounts": 5, "list pods": 5, "get serviceaccounts": 0} {
		if got := client.count(call); got != want {
			t.Errorf("%s: %d requests, want %d (one per namespace)", call, got, want)
		}
	}
}

func TestSnapshot_podsAreFilteredLikeTheFieldSelector(t *testing.T) {
	ns := "apps"
	done := podOf(ns, "finished", "app", nil)
	done.Status.Phase = corev1.PodSucceeded
	terminating := podOf(ns, "terminating", "app", nil)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	terminating.Finalizers = []string{"test/keep"}
	client := newCountingClient(
		podOf(ns, "web", "app", map[string]string{"tier": "web"}),
		podOf(ns, "worker", "app", map[string]string{"tier": "worker"}),
		podOf(ns, "other", "other-sa", map[string]string{"tier": "web"}),
		done, terminating,
	)
	s := NewSnapshot(client, 0)
	for _, tc := range []struct {
		sa, selector string
		want         []string
	}{
		{"app", "", []string{"web", "worker"}},
		{"app", "tier=web", []string{"web"}},
		{"app", "tier!=web", []string{"worker"}},
		{"other-sa", "", []string{"other"}},
		{"nobody", "", nil},
	} {
		pods, err := s.Pods(t.Context(), ns, tc.sa, tc.selector)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pods {
			got = append(got, p.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Pods(%s, %q) = %v, want %v", tc.sa, tc.selector, got, tc.want)
		}
	}
	if _, err := s.Pods(t.Context(), ns, "app", "tier in (("); err == nil {
		t.Error("an invalid selector was accepted")
	}
}

// roleAnnotation is any annotation; the snapshot reads it as data.
const roleAnnotation = "eks.amazonaws.com/role-arn"

func TestSnapshot_serviceAccountsCreatedOrChangedLaterAreLookedUp(t *testing.T) {
	client := newCountingClient(serviceAccount("ns", "listed"))
	s := NewSnapshot(client, 0)
	ctx := t.Context()
	if _, err := s.ServiceAccount(ctx, "ns", "listed"); err != nil {
		t.Fatal(err)
	}

	// Created after the list, by another resource of the same apply.
	if _, err := client.CoreV1().ServiceAccounts("ns").Create(ctx, serviceAccount("ns", "later"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ServiceAccount(ctx, "ns", "later"); err != nil || got.Name != "later" {
		t.Fatalf("a ServiceAccount created after the list: %v, %v", got, err)
	}
	if _, err := s.ServiceAccount(ctx, "ns", "missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("a missing ServiceAccount: %v, want NotFound", err)
	}
	if _, err := s.ServiceAccount(ctx, "ns", "missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("a missing ServiceAccount, again: %v, want NotFound", err)
	}
	if got := client.count("get serviceaccounts"); got != 2 {
		t.Errorf("%d GETs, want 2: one for the late one, one for the missing one, then remembered", got)
	}

	// Changed by this process: read again by name, once.
	changed := serviceAccount("ns", "listed")
	changed.Annotations = map[string]string{roleAnnotation: "arn:aws:iam::111122223333:role/new"}
	if _, err := client.CoreV1().ServiceAccounts("ns").Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Forget("ns", "listed")
	got, err := s.ServiceAccount(ctx, "ns", "listed")
	if err != nil || got.Annotations[roleAnnotation] == "" {
		t.Fatalf("after Forget the snapshot still answers from the old list: %v, %v", got, err)
	}
	if _, err := s.ServiceAccount(ctx, "ns", "listed"); err != nil {
		t.Fatal(err)
	}
	if got := client.count("get serviceaccounts"); got != 3 {
		t.Errorf("%d GETs, want 3 (one more after Forget)", got)
	}
	if got := client.count("list serviceaccounts"); got != 1 {
		t.Errorf("%d LISTs, want 1", got)
	}
}

func TestSnapshot_forgottenPodsAreListedFresh(t *testing.T) {
	client := newCountingClient(podOf("ns", "a-1", "a", nil), podOf("ns", "b-1", "b", nil))
	s := NewSnapshot(client, 0)
	ctx := t.Context()
	if _, err := s.Pods(ctx, "ns", "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods("ns").Delete(ctx, "a-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Forget("ns", "a")
	pods, err := s.Pods(ctx, "ns", "a", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		// The fake ignores field selectors: b's pod may be listed.
		if p.Name == "a-1" {
			t.Fatal("a recycled pod was answered from the old list")
		}
	}
	if pods, _ := s.Pods(ctx, "ns", "b", ""); len(pods) != 1 {
		t.Errorf("the namespace's other pods: %d, want 1 from the list", len(pods))
	}
	if got := client.count("list pods"); got != 2 {
		t.Errorf("%d pod LISTs, want 2: the namespace, then a's alone", got)
	}
}

func TestSnapshot_failuresAreNotKept(t *testing.T) {
	client := newCountingClient(serviceAccount("ns", "app"))
	var failing atomic.Bool
	failing.Store(true)
	client.PrependReactor("list", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		return false, nil, nil
	})
	s := NewSnapshot(client, 0)
	if _, err := s.ServiceAccount(t.Context(), "ns", "app"); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("got %v, want the 503", err)
	}
	failing.Store(false)
	if _, err := s.ServiceAccount(t.Context(), "ns", "app"); err != nil {
		t.Fatalf("the failed list was kept: %v", err)
	}
}

func TestSnapshot_listForbiddenFallsBackToGet(t *testing.T) {
	client := newCountingClient(serviceAccount("ns", "a"), serviceAccount("ns", "b"))
	var lists atomic.Int32
	client.PrependReactor("list", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return true, nil, apierrors.NewForbidden(corev1.Resource("serviceaccounts"), "", errors.New("list is not granted"))
	})
	s := NewSnapshot(client, 0)
	for _, name := range []string{"a", "b", "a"} {
		if got, err := s.ServiceAccount(t.Context(), "ns", name); err != nil || got.Name != name {
			t.Fatalf("%s: %v, %v", name, got, err)
		}
	}
	if got := lists.Load(); got != 1 {
		t.Errorf("%d LISTs, want 1: a forbidden list is not asked again", got)
	}
	if got := client.count("get serviceaccounts"); got != 2 {
		t.Errorf("%d GETs, want 2 (a, b; then remembered)", got)
	}
}

func TestSnapshot_oldListsAreFetchedAgain(t *testing.T) {
	client := newCountingClient(serviceAccount("ns", "app"))
	s := NewSnapshot(client, time.Minute)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	for _, step := range []time.Duration{0, 30 * time.Second, 31 * time.Second} {
		now = now.Add(step)
		if _, err := s.ServiceAccount(ctx, "ns", "app"); err != nil {
			t.Fatal(err)
		}
	}
	if got := client.count("list serviceaccounts"); got != 2 {
		t.Errorf("%d LISTs, want 2: the first, and one after a minute", got)
	}
}

func TestSnapshot_callersGetCopies(t *testing.T) {
	client := newCountingClient(serviceAccount("ns", "app"))
	s := NewSnapshot(client, 0)
	first, err := s.ServiceAccount(t.Context(), "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	first.Annotations = map[string]string{"changed": "by a caller"}
	second, err := s.ServiceAccount(t.Context(), "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Annotations) != 0 {
		t.Errorf("one caller's change reached another: %v", second.Annotations)
	}
}
