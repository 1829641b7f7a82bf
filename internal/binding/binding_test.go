package binding

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

const role = "arn:aws:iam::123456789012:role/api"

// The orchestration against the fake clientset: which step runs, what an
// outcome says after each kind of failure. The engine's behaviour is
// tested in internal/recycle, IRSA's judgement in internal/irsa, and end to end against the real cluster in
// internal/provider.

func barePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + types.UID(name), CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
		Spec:       corev1.PodSpec{ServiceAccountName: "api", Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// webhookDown answers dry-run pod creates as an API server whose pod
// identity webhook is away: the pod comes back as sent. (The fake
// clientset would otherwise store a dry-run object.)
func webhookDown(client *fake.Clientset) *fake.Clientset {
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		create, ok := a.(k8stesting.CreateActionImpl)
		if !ok || len(create.GetCreateOptions().DryRun) == 0 {
			return false, nil, nil
		}
		return true, create.GetObject(), nil
	})
	return client
}

func spec(strategy recycle.Strategy) Spec {
	return Spec{
		Namespace: "ns", ServiceAccount: "api", Binding: irsa.Binding{RoleARN: role},
		Restart: Restart{Strategy: strategy, Wait: true, GateTimeout: 50 * time.Millisecond},
	}
}

func TestApply_missingServiceAccountChangesNothing(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), spec(recycle.StrategyDelete), Ownership{})
	var nf *NotFoundError
	if !errors.As(err, &nf) || out.Annotated || out.Created {
		t.Fatalf("outcome %+v, err %v: want not found, nothing done", out, err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestApply_createsTheServiceAccountWhenAsked(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	s := spec(recycle.StrategyNone)
	s.CreateServiceAccount = true
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), s, Ownership{})
	if err != nil || !out.Annotated || !out.Created {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
	sa, err := client.CoreV1().ServiceAccounts("ns").Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil || sa.Annotations[irsa.RoleARNAnnotation] != role {
		t.Fatalf("ServiceAccount %+v, err %v", sa, err)
	}
}

// The gate fails (the webhook injects nothing): the annotation stays, no
// pod is touched, and the outcome still says which pods are stale.
func TestApply_gateFailureKeepsTheAnnotationAndReportsStalePods(t *testing.T) {
	t.Parallel()
	client := webhookDown(fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}}, barePod("bare")))
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), spec(recycle.StrategyDelete), Ownership{})
	var gate *recycle.GateError
	if !errors.As(err, &gate) || gate.Cause != recycle.GateNotRegistered {
		t.Fatalf("err = %v, want the gate to fail", err)
	}
	if !out.Annotated || len(out.Stale) != 1 || out.Stale[0].Pod.Name != "bare" {
		t.Fatalf("outcome %+v: want annotated, with the bare pod stale", out)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("a pod was deleted although the gate failed")
		}
	}
}

// Interrupted (the operation's context canceled), the last look at the
// pods still runs, under its own deadline.
func TestApply_canceledStillReportsStalePods(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}}, barePod("bare"))
	ctx, cancel := context.WithCancel(t.Context())
	client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel() // Ctrl-C during the gate's dry run
		return true, nil, context.Canceled
	})
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(ctx, spec(recycle.StrategyDelete), Ownership{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	if !out.Annotated || len(out.Stale) != 1 {
		t.Fatalf("outcome %+v: want annotated, with the stale pod reported", out)
	}
}

// When even the last look fails, every pod the plan named counts as
// stale, so the next plan looks again rather than trusting an empty list.
func TestApply_unreadablePodsCountAsStale(t *testing.T) {
	t.Parallel()
	client := webhookDown(fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}}, barePod("bare")))
	lists := 0
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists++
		if lists > 1 {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), spec(recycle.StrategyDelete), Ownership{})
	if err == nil {
		t.Fatal("want the gate to fail")
	}
	if len(out.Stale) != 1 || out.Stale[0].Pod.Name != "bare" {
		t.Fatalf("stale = %+v, want the planned pod", out.Stale)
	}
}

func TestCheckHolder(t *testing.T) {
	t.Parallel()
	// held is the ServiceAccount as bindings holders (comma-separated
	// IDs) applied role, each as its own manager "irsa/ID".
	held := func(holders, role string) *corev1.ServiceAccount {
		a := map[string]string{}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns", Annotations: a}}
		if role != "" {
			a[irsa.RoleARNAnnotation] = role
		}
		for _, id := range strings.Split(holders, ",") {
			if id != "" {
				sa.ManagedFields = append(sa.ManagedFields, metav1.ManagedFieldsEntry{Manager: "irsa/" + id, Operation: metav1.ManagedFieldsOperationApply,
					FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)})
			}
		}
		return sa
	}
	// legacy is the ServiceAccount as earlier releases left it: the
	// shared manager, and the holders in the old annotation.
	legacy := func(holders, role string) *corev1.ServiceAccount {
		sa := held("", role)
		sa.Annotations[irsa.LegacyHolderAnnotation] = holders
		sa.ManagedFields = append(sa.ManagedFields, metav1.ManagedFieldsEntry{Manager: "irsa", Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{},"f:irsa-dev/binding-id":{}}}}`)})
		return sa
	}
	other := "arn:aws:iam::123456789012:role/other"
	tests := []struct {
		name      string
		sa        *corev1.ServiceAccount
		coHolders []string
		conflict  bool
	}{
		{name: "nobody holds it", sa: held("", "")},
		{name: "we hold it", sa: held("me", role)},
		{name: "we hold it with another role: ours to change", sa: held("me", other)},
		{name: "another binding, same annotations: shared", sa: held("them", role), coHolders: []string{"them"}},
		{name: "another binding, other role: conflict", sa: held("them", other), coHolders: []string{"them"}, conflict: true},
		{name: "shared with us, the other wants it changed", sa: held("them,me", other), coHolders: []string{"them"}, conflict: true},
		{name: "an extra annotation the other binding set", sa: func() *corev1.ServiceAccount {
			sa := held("them", role)
			sa.Annotations[irsa.AudienceAnnotation] = "custom"
			sa.ManagedFields = append(sa.ManagedFields, metav1.ManagedFieldsEntry{Manager: "irsa/them", Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/audience":{}}}}`)})
			return sa
		}(), coHolders: []string{"them"}, conflict: true},
		{name: "an extra annotation another tool set: not the bindings' business", sa: func() *corev1.ServiceAccount {
			sa := held("them", role)
			sa.Annotations[irsa.AudienceAnnotation] = "custom"
			sa.ManagedFields = append(sa.ManagedFields, metav1.ManagedFieldsEntry{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/audience":{}}}}`)})
			return sa
		}(), coHolders: []string{"them"}},
		{name: "legacy: another binding, same role: shared", sa: legacy("them", role), coHolders: []string{"them"}},
		{name: "legacy: another binding, other role: conflict", sa: legacy("them", other), coHolders: []string{"them"}, conflict: true},
		{name: "legacy: ours, another role: ours to change", sa: legacy("me", other)},
		{name: "legacy and new side by side", sa: func() *corev1.ServiceAccount {
			sa := legacy("old", role)
			sa.ManagedFields = append(sa.ManagedFields, held("new", role).ManagedFields...)
			return sa
		}(), coHolders: []string{"new", "old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			co, err := CheckHolder(tt.sa, "me", map[string]string{irsa.RoleARNAnnotation: role}, "irsa")
			var he *HeldError
			if (err != nil) != tt.conflict || (err != nil && !errors.As(err, &he)) {
				t.Fatalf("err = %v, want conflict %v", err, tt.conflict)
			}
			if fmt.Sprint(co) != fmt.Sprint(tt.coHolders) {
				t.Errorf("co-holders %v, want %v", co, tt.coHolders)
			}
		})
	}
}

// Apply decides on a snapshot's copy of the ServiceAccount when it has one;
// a refusal is confirmed by a fresh read before it is reported. (That the API
// server refuses an apply on an outdated copy, which the fake does not, is
// tested against the real one in internal/provider.)
func TestApply_decidesOnTheSnapshotOnlyWhatTheServerConfirms(t *testing.T) {
	t.Parallel()
	current := func(client *fake.Clientset) *corev1.ServiceAccount {
		sa, err := client.CoreV1().ServiceAccounts("ns").Get(context.Background(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sa
	}
	tests := []struct {
		name string
		// snapshot is what the snapshot answers, from the live object.
		snapshot func(live *corev1.ServiceAccount) (*corev1.ServiceAccount, error)
		gets     int
	}{
		{name: "current copy: no read at all", snapshot: func(live *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
			return live, nil
		}},
		{name: "copy held by another binding, since released: confirmed, then applied", gets: 1, snapshot: func(live *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
			live.Annotations = map[string]string{irsa.LegacyHolderAnnotation: "gone", irsa.RoleARNAnnotation: "arn:aws:iam::123456789012:role/old"}
			return live, nil
		}},
		{name: "missing from the snapshot, created since: confirmed, then applied", gets: 1, snapshot: func(*corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
			return nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), "api")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}})
			// Give the live object a resourceVersion the snapshot's copy can lag behind.
			live := current(client)
			live.Labels = map[string]string{"touched": "yes"}
			if _, err := client.CoreV1().ServiceAccounts("ns").Update(t.Context(), live, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			seen := current(client)
			b := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}, Lookup: func(context.Context, string, string) (*corev1.ServiceAccount, error) {
				return tt.snapshot(seen.DeepCopy())
			}}
			client.ClearActions()
			s := spec(recycle.StrategyNone)
			out, err := b.Apply(t.Context(), s, Ownership{ID: "me"})
			if err != nil || !out.Annotated {
				t.Fatalf("outcome %+v, err %v", out, err)
			}
			if got := current(client).Annotations[irsa.RoleARNAnnotation]; got != role {
				t.Errorf("role annotation %q, want %q", got, role)
			}
			gets := 0
			for _, a := range client.Actions() {
				if a.GetVerb() == "get" && a.GetResource().Resource == "serviceaccounts" {
					gets++
				}
			}
			gets-- // current() in the assertion above
			if gets != tt.gets {
				t.Errorf("%d fresh reads of the ServiceAccount, want %d", gets, tt.gets)
			}
		})
	}
}

// A binding whose apply found nothing to recycle reports from the list it
// planned from: one LIST of pods in all.
func TestApply_nothingToRecycleListsPodsOnce(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}})
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), spec(recycle.StrategyRollout), Ownership{})
	if err != nil || !out.Annotated || len(out.Stale) != 0 {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
	calls := map[string]int{}
	for _, a := range client.Actions() {
		calls[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	want := map[string]int{"get serviceaccounts": 1, "patch serviceaccounts": 1, "list pods": 1}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", calls, want)
	}
}
