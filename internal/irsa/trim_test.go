package irsa

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube/kubetest"
)

// The snapshot judges trimmed pods (kube.TrimPod): over every fixture of
// TestInspect, as written and with everything a real pod carries besides
// (kubetest.Fatten), a trimmed pod gets the verdict of the whole one, word
// for word, and Injected's answer.
func TestInspect_trimmedPodsAreJudgedAlike(t *testing.T) {
	t.Parallel()
	cases := inspectCases()
	if len(cases) < 20 {
		t.Fatalf("%d fixtures: the comparison would compare little", len(cases))
	}
	for _, tt := range cases {
		for variant, whole := range map[string]*corev1.Pod{"as written": tt.pod, "fattened": kubetest.Fatten(tt.pod)} {
			trimmed := kube.TrimPod(whole)
			if got, want := Inspect(&trimmed, tt.e), Inspect(whole, tt.e); got != want {
				t.Errorf("%s, %s: trimmed %+v, whole %+v", tt.name, variant, got, want)
			}
			if got, want := tt.e.Injected(&trimmed), tt.e.Injected(whole); got != want {
				t.Errorf("%s, %s: Injected trimmed %v, whole %v", tt.name, variant, got, want)
			}
		}
	}
}

// The comparison above can fail: each part of a pod that IRSA's judgement
// reads, dropped from the trimmed pods, changes the verdict of some
// fixture. (So a TrimPod that dropped it would fail the test above.)
func TestInspect_fixturesNoticeEachPartIRSAReads(t *testing.T) {
	t.Parallel()
	eachContainer := func(p *corev1.Pod, f func(*corev1.Container)) {
		for i := range p.Spec.InitContainers {
			f(&p.Spec.InitContainers[i])
		}
		for i := range p.Spec.Containers {
			f(&p.Spec.Containers[i])
		}
	}
	for part, drop := range map[string]func(*corev1.Pod){
		"env values": func(p *corev1.Pod) {
			eachContainer(p, func(c *corev1.Container) {
				env := make([]corev1.EnvVar, len(c.Env))
				for i, e := range c.Env {
					env[i] = corev1.EnvVar{Name: e.Name}
				}
				c.Env = env
			})
		},
		"env":                func(p *corev1.Pod) { eachContainer(p, func(c *corev1.Container) { c.Env = nil }) },
		"volume mounts":      func(p *corev1.Pod) { eachContainer(p, func(c *corev1.Container) { c.VolumeMounts = nil }) },
		"container names":    func(p *corev1.Pod) { eachContainer(p, func(c *corev1.Container) { c.Name = "" }) },
		"init containers":    func(p *corev1.Pod) { p.Spec.InitContainers = nil },
		"projected volumes":  func(p *corev1.Pod) { p.Spec.Volumes = nil },
		"labels":             func(p *corev1.Pod) { p.Labels = nil },
		"annotations":        func(p *corev1.Pod) { p.Annotations = nil },
		"creation timestamp": func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{} },
	} {
		noticed := false
		for _, tt := range inspectCases() {
			trimmed := kube.TrimPod(tt.pod)
			drop(&trimmed)
			if Inspect(&trimmed, tt.e) != Inspect(tt.pod, tt.e) {
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
