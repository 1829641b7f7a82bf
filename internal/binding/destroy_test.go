package binding

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/recycle"
)

// Destroy's ownership decisions, each on a ServiceAccount in the state that
// calls for it: what it deletes, what it releases, what it leaves.

// applied is the ServiceAccount after binding id applied the role as
// manager "irsa", through the fake's server-side apply.
func applied(t *testing.T, client *fake.Clientset, id string) *corev1.ServiceAccount {
	t.Helper()
	out, err := Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}.Apply(t.Context(), spec(recycle.StrategyNone), Ownership{ID: id})
	if err != nil || !out.Annotated {
		t.Fatalf("apply: %+v, %v", out, err)
	}
	return serviceAccount(t, client)
}

func serviceAccount(t *testing.T, client *fake.Clientset) *corev1.ServiceAccount {
	t.Helper()
	sa, err := client.CoreV1().ServiceAccounts("ns").Get(t.Context(), "api", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

func destroyer(client *fake.Clientset) Binder {
	return Binder{Conn: kube.Conn{Client: client, FieldManager: "irsa"}}
}

func TestDestroy_deletesOnlyTheServiceAccountItCreated(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns", UID: "ours"}})
	applied(t, client, "me")
	out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me", Created: true, CreatedUID: "ours"}, false)
	if err != nil || !out.Deleted {
		t.Fatalf("outcome %+v, err %v; want deleted", out, err)
	}
	if serviceAccount(t, client) != nil {
		t.Error("the ServiceAccount is still there")
	}

	// Re-created by someone else under the name: left alone. The fake
	// ignores preconditions; the reactor answers as the API server does
	// (TestServiceAccounts_neverTouchAnotherIncarnation asks the real one).
	client = fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns", UID: "theirs"}})
	client.PrependReactor("delete", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		del, ok := a.(k8stesting.DeleteActionImpl)
		if !ok {
			return false, nil, nil
		}
		pre := del.DeleteOptions.Preconditions
		if pre == nil || pre.UID == nil || *pre.UID != "theirs" {
			return true, nil, apierrors.NewConflict(corev1.Resource("serviceaccounts"), "api", errors.New("the UID in the precondition does not match"))
		}
		return false, nil, nil
	})
	out, err = destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me", Created: true, CreatedUID: "ours"}, false)
	if err != nil || !out.Replaced || out.Deleted {
		t.Fatalf("outcome %+v, err %v; want replaced, not deleted", out, err)
	}
	if serviceAccount(t, client) == nil {
		t.Error("someone else's ServiceAccount was deleted")
	}
}

func TestDestroy_keepsACreatedServiceAccountAnotherBindingHolds(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns", UID: "ours"}})
	applied(t, client, "me")
	applied(t, client, "successor") // a create_before_destroy replacement
	out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me", Created: true, CreatedUID: "ours"}, false)
	if err != nil || out.Deleted || !slices.Equal(out.KeptFor, []string{"successor"}) {
		t.Fatalf("outcome %+v, err %v; want kept for the successor", out, err)
	}
	sa := serviceAccount(t, client)
	if sa == nil || sa.Annotations[irsa.RoleARNAnnotation] != role || !slices.Equal(irsa.Holders(sa, "irsa"), []string{"successor"}) {
		t.Errorf("ServiceAccount after destroy: %+v; want the role kept, held by the successor alone", sa)
	}
}

func TestDestroy_releasesAndReportsWhatItLeaves(t *testing.T) {
	t.Parallel()
	t.Run("held by another binding", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}})
		applied(t, client, "other")
		out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me"}, true)
		if err != nil || !slices.Equal(out.HeldBy, []string{"other"}) || out.Recycled {
			t.Fatalf("outcome %+v, err %v; want held by the other, nothing recycled", out, err)
		}
		if serviceAccount(t, client).Annotations[irsa.RoleARNAnnotation] != role {
			t.Error("the other binding's role was removed")
		}
	})
	t.Run("gone", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset()
		out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me"}, true)
		if err != nil || !out.Gone {
			t.Fatalf("outcome %+v, err %v; want gone", out, err)
		}
	})
	t.Run("role kept by another manager", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns",
			Annotations: map[string]string{irsa.RoleARNAnnotation: "arn:aws:iam::123456789012:role/helm"}}})
		out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me"}, true)
		if err != nil || out.RoleStillSet != "arn:aws:iam::123456789012:role/helm" || out.Recycled {
			t.Fatalf("outcome %+v, err %v; want the other manager's role reported, nothing recycled", out, err)
		}
	})
	t.Run("released", func(t *testing.T) {
		t.Parallel()
		client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}})
		applied(t, client, "me")
		out, err := destroyer(client).Destroy(t.Context(), spec(recycle.StrategyNone), Ownership{ID: "me"}, false)
		if err != nil || out.RoleStillSet != "" || len(out.HeldBy) > 0 || out.Gone || out.Recycled {
			t.Fatalf("outcome %+v, err %v; want a plain release", out, err)
		}
		sa := serviceAccount(t, client)
		if _, ok := sa.Annotations[irsa.RoleARNAnnotation]; ok || len(irsa.Holders(sa, "irsa")) > 0 {
			t.Errorf("annotations after release: %v", sa.Annotations)
		}
	})
}

// on_destroy recycles the pods that still carry the role, and lists them
// once: nothing is left in state to report a last look to.
func TestDestroy_onDestroyRecyclesWithoutALastLook(t *testing.T) {
	t.Parallel()
	pod := barePod("holder")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: irsa.EnvRoleARN, Value: role}, {Name: irsa.EnvWebIdentityTokenFile, Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
	}
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}}, pod)
	applied(t, client, "me")
	client.ClearActions()
	s := spec(recycle.StrategyDelete)
	s.Restart.Wait = false
	out, err := destroyer(client).Destroy(t.Context(), s, Ownership{ID: "me"}, true)
	if err != nil || !out.Recycled {
		t.Fatalf("outcome %+v, err %v; want recycled", out, err)
	}
	lists, deleted := 0, false
	for _, a := range client.Actions() {
		switch {
		case a.Matches("list", "pods"):
			lists++
		case a.Matches("delete", "pods"):
			deleted = true
		}
	}
	if !deleted || lists != 1 {
		t.Errorf("%d pod LISTs, deleted %v; want one LIST and the holder of the old role deleted", lists, deleted)
	}
}
