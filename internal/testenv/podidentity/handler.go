package podidentity

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Handler serves the admission endpoint (/mutate) and the test knob
// (/testenv/cache-delay?namespace=NS, body: a Go duration).
type Handler struct {
	Cache *ServiceAccountCache
	Cfg   Config
	// Identities are the ServiceAccounts of the container-credentials file
	// (--watch-container-credentials-config); nil when it is not watched.
	Identities *Identities
	// ContainerCredentials are the --container-credentials-* flags.
	ContainerCredentials ContainerCredentialsConfig
	// Grace is --service-account-lookup-grace-period.
	Grace time.Duration
	Log   *slog.Logger
}

// Routes returns the HTTP routes of the webhook.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", h.mutate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.Cache.HasSynced() {
			http.Error(w, "service account cache not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /testenv/cache-delay", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, h.Cache.Delay(r.URL.Query().Get("namespace")).String())
	})
	mux.HandleFunc("PUT /testenv/cache-delay", h.setDelay)
	return mux
}

func (h *Handler) setDelay(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d, err := time.ParseDuration(string(body))
	if err != nil || d < 0 {
		http.Error(w, fmt.Sprintf("want a non-negative Go duration such as 3s, got %q", body), http.StatusBadRequest)
		return
	}
	ns := r.URL.Query().Get("namespace")
	h.Cache.SetDelay(ns, d)
	h.Log.Info("service account cache delay changed", "namespace", ns, "delay", d)
	_, _ = io.WriteString(w, d.String())
}

func (h *Handler) mutate(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "expected Content-Type application/json", http.StatusUnsupportedMediaType)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("could not decode AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	review.Response = h.review(r, review.Request)
	review.Response.UID = review.Request.UID
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

func (h *Handler) review(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: err.Error()}}
	}
	pod.Namespace = req.Namespace
	saName := pod.Spec.ServiceAccountName
	if saName == "" {
		saName = "default"
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	log := h.Log.With("pod", name, "namespace", pod.Namespace, "serviceAccount", saName)
	before := pod.DeepCopy()
	var mode string
	if h.Identities != nil && h.Identities.Has(pod.Namespace, saName) {
		// As upstream: the file wins over the annotations, and the cache is
		// read without waiting for a ServiceAccount it does not have yet.
		entry, found := h.Cache.Get(r.Context(), pod.Namespace, saName, 0)
		mode = "container credentials"
		if !MutateContainerCredentials(&pod, entry, found, h.ContainerCredentials, h.Cfg) {
			log.Info("pod not mutated: skipped")
			return allow
		}
	} else {
		entry, found := h.Cache.Get(r.Context(), pod.Namespace, saName, h.Grace)
		if !found || entry.RoleARN == "" {
			log.Info("pod not mutated", "inCache", found)
			return allow
		}
		mode = "web identity " + entry.RoleARN
		if !Mutate(&pod, entry, h.Cfg) {
			log.Info("pod not mutated: already has what it needs")
			return allow
		}
	}
	patch, err := specPatch(before, &pod)
	if err != nil {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: err.Error()}}
	}
	log.Info("pod mutated", "mode", mode)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// specPatch replaces the lists the mutation may touch. Like upstream it
// writes whole lists rather than per-element operations, and adds the
// pod-identity label to the labels the pod has, or as the first one.
func specPatch(before, after *corev1.Pod) ([]byte, error) {
	var ops []patchOp
	if v, ok := after.Labels[PodIdentityLabel]; ok && before.Labels[PodIdentityLabel] != v {
		if before.Labels == nil {
			ops = append(ops, patchOp{Op: "add", Path: "/metadata/labels", Value: map[string]string{PodIdentityLabel: v}})
		} else {
			ops = append(ops, patchOp{Op: "add", Path: "/metadata/labels/" + jsonPointerEscape(PodIdentityLabel), Value: v})
		}
	}
	ops = append(ops, patchOp{Op: "add", Path: "/spec/volumes", Value: after.Spec.Volumes})
	ops = append(ops, patchOp{Op: "add", Path: "/spec/containers", Value: after.Spec.Containers})
	if len(before.Spec.InitContainers) > 0 {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/initContainers", Value: after.Spec.InitContainers})
	}
	return json.Marshal(ops)
}

// jsonPointerEscape escapes a key for a JSON pointer (RFC 6901).
func jsonPointerEscape(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
