package podidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

// admit sends pod through the handler's /mutate endpoint and returns the pod
// with the returned JSON patch applied, as the API server would.
func admit(t *testing.T, h *Handler, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("uid"), Namespace: p.Namespace, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mutate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.Routes().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /mutate: %d %s", rec.Code, rec.Body)
	}
	var got admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Response == nil || !got.Response.Allowed || got.Response.UID != "uid" {
		t.Fatalf("response = %+v, want allowed with the request's UID", got.Response)
	}
	if len(got.Response.Patch) == 0 {
		return p
	}
	patch, err := jsonpatch.DecodePatch(got.Response.Patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", got.Response.Patch, err)
	}
	patched, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", got.Response.Patch, err)
	}
	var out corev1.Pod
	if err := json.Unmarshal(patched, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestHandler_ContainerCredentialsTakePrecedence(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "listed", Namespace: "ns", Annotations: map[string]string{RoleARNAnnotation: testRole}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "unlisted", Namespace: "ns", Annotations: map[string]string{RoleARNAnnotation: testRole}}},
	)
	saCache, err := NewServiceAccountCache(t.Context(), client, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return saCache.HasSynced(), nil
	}); err != nil {
		t.Fatal(err)
	}
	ids := &Identities{}
	if err := ids.Load([]byte(`{"identities":[{"namespace":"ns","serviceAccount":"listed"}]}`)); err != nil {
		t.Fatal(err)
	}
	h := &Handler{
		Cache: saCache, Cfg: DefaultConfig(), Log: slog.New(slog.DiscardHandler),
		Identities: ids, ContainerCredentials: DefaultContainerCredentialsConfig(),
	}
	podOf := func(sa string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: labels},
			Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "main", Image: "app"}}},
		}
	}

	t.Run("listed, no labels", func(t *testing.T) {
		t.Parallel()
		got := admit(t, h, podOf("listed", nil))
		c := got.Spec.Containers[0]
		if v, _ := env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"); v != "http://169.254.170.23/v1/credentials" {
			t.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI = %q", v)
		}
		if _, ok := env(c, "AWS_ROLE_ARN"); ok {
			t.Error("a listed ServiceAccount with a role annotation got AWS_ROLE_ARN")
		}
		if got.Labels["eks.amazonaws.com/pod-identity"] != "enabled" {
			t.Errorf("labels = %v, want eks.amazonaws.com/pod-identity: enabled", got.Labels)
		}
	})
	t.Run("listed, labels kept", func(t *testing.T) {
		t.Parallel()
		got := admit(t, h, podOf("listed", map[string]string{"app": "web"}))
		want := map[string]string{"app": "web", "eks.amazonaws.com/pod-identity": "enabled"}
		if len(got.Labels) != 2 || got.Labels["app"] != "web" || got.Labels["eks.amazonaws.com/pod-identity"] != "enabled" {
			t.Errorf("labels = %v, want %v", got.Labels, want)
		}
	})
	t.Run("unlisted gets web identity", func(t *testing.T) {
		t.Parallel()
		got := admit(t, h, podOf("unlisted", nil))
		c := got.Spec.Containers[0]
		if v, _ := env(c, "AWS_ROLE_ARN"); v != testRole {
			t.Errorf("AWS_ROLE_ARN = %q, want %q", v, testRole)
		}
		if _, ok := env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI"); ok {
			t.Error("an unlisted ServiceAccount got container credentials")
		}
		if _, ok := got.Labels["eks.amazonaws.com/pod-identity"]; ok {
			t.Error("a web identity pod got the pod-identity label")
		}
	})
	t.Run("without the file watched, a listed name is web identity", func(t *testing.T) {
		t.Parallel()
		off := *h
		off.Identities = nil
		got := admit(t, &off, podOf("listed", nil))
		if v, _ := env(got.Spec.Containers[0], "AWS_ROLE_ARN"); v != testRole {
			t.Errorf("AWS_ROLE_ARN = %q, want %q", v, testRole)
		}
	})
}
