package podidentity

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube/kubetest"
)

// The snapshot hands out trimmed pods (kube.TrimPod): over every fixture of
// TestJudge, as written and fattened with what real pods carry, a trimmed
// pod gets the whole one's verdict and Injected's answer.
func TestJudge_trimmedPodsAreJudgedAlike(t *testing.T) {
	t.Parallel()
	for _, tt := range judgeCases() {
		e := Expectation{Associated: tt.associated, ChangedAt: changedAt}
		for variant, whole := range map[string]*corev1.Pod{"as written": tt.pod, "fattened": kubetest.Fatten(tt.pod)} {
			trimmed := kube.TrimPod(whole)
			if got, want := e.Judge(&trimmed), e.Judge(whole); got != want {
				t.Errorf("%s, %s: trimmed %+v, whole %+v", tt.name, variant, got, want)
			}
			if got, want := e.Injected(&trimmed), e.Injected(whole); got != want {
				t.Errorf("%s, %s: Injected trimmed %v, whole %v", tt.name, variant, got, want)
			}
		}
	}
}

// The comparison can fail: each part of a pod the Pod Identity judgement
// reads, dropped, changes some fixture's verdict.
func TestJudge_fixturesNoticeEachPartPodIdentityReads(t *testing.T) {
	t.Parallel()
	each := func(p *corev1.Pod, f func(*corev1.Container)) {
		for i := range p.Spec.InitContainers {
			f(&p.Spec.InitContainers[i])
		}
		for i := range p.Spec.Containers {
			f(&p.Spec.Containers[i])
		}
	}
	for part, drop := range map[string]func(*corev1.Pod){
		"env":                func(p *corev1.Pod) { each(p, func(c *corev1.Container) { c.Env = nil }) },
		"volume mounts":      func(p *corev1.Pod) { each(p, func(c *corev1.Container) { c.VolumeMounts = nil }) },
		"container names":    func(p *corev1.Pod) { each(p, func(c *corev1.Container) { c.Name = "" }) },
		"projected volumes":  func(p *corev1.Pod) { p.Spec.Volumes = nil },
		"labels":             func(p *corev1.Pod) { p.Labels = nil },
		"annotations":        func(p *corev1.Pod) { p.Annotations = nil },
		"creation timestamp": func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{} },
	} {
		noticed := false
		for _, tt := range judgeCases() {
			e := Expectation{Associated: tt.associated, ChangedAt: changedAt}
			trimmed := kube.TrimPod(tt.pod)
			drop(&trimmed)
			if e.Judge(&trimmed) != e.Judge(tt.pod) {
				noticed = true
				break
			}
		}
		if !noticed {
			t.Errorf("no fixture's verdict changes without the pods' %s", part)
		}
	}
}

// The snapshot keeps only the volumes and mounts it names as the webhook's
// token volumes: this mechanism's must be one of them.
func TestTrimPod_keepsThisMechanismsTokenVolume(t *testing.T) {
	t.Parallel()
	if !slices.Contains(kube.WebhookTokenVolumes, TokenVolumeName) {
		t.Errorf("kube.WebhookTokenVolumes %v does not name %q: the snapshot would drop this mechanism's token volume", kube.WebhookTokenVolumes, TokenVolumeName)
	}
}
