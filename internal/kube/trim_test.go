package kube

import (
	"fmt"
	"reflect"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube/kubetest"
)

// leanPod has every field the readers of pods read (the engine, IRSA, and
// what EKS Pod Identity's judgement reads: every container's and init
// container's env and envFrom, mounts, projected token volumes, the
// ServiceAccount, the node, metadata, phase, conditions, container
// readiness), each with a value of its own.
func leanPod() *corev1.Pod {
	exp := int64(86400)
	ctr := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example/" + name + ":1",
			Env: []corev1.EnvVar{
				{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/" + name},
				{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
				{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"},
				{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
				{Name: "FROM_FIELD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "aws"}}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "aws-iam-token", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", ReadOnly: true},
				{Name: "eks-pod-identity-token", MountPath: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount", ReadOnly: true},
			},
		}
	}
	deleted := metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 5, 0, time.UTC))
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "api-7f9c-a", Namespace: "apps", UID: types.UID("uid-1"), ResourceVersion: "4711",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)),
			DeletionTimestamp: &deleted,
			Labels:            map[string]string{"app": "api", "controller-revision-hash": "r2"},
			Annotations:       map[string]string{"eks.amazonaws.com/skip-containers": "sidecar", "eks.amazonaws.com/token-expiration": "3600"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-7f9c", UID: "rs-uid", Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "api",
			NodeName:           "node-1",
			InitContainers:     []corev1.Container{ctr("init")},
			Containers:         []corev1.Container{ctr("app"), ctr("sidecar")},
			Volumes: []corev1.Volume{
				{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "sts.amazonaws.com", ExpirationSeconds: &exp, Path: "token"}},
				}}}},
				{Name: "eks-pod-identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "pods.eks.amazonaws.com", ExpirationSeconds: &exp, Path: "eks-pod-identity-token"}},
				}}}},
				{Name: "data"},
			},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Started: ptr.To(true)}, {Name: "sidecar", Ready: false}},
		},
	}
}

// The oracle is the list of what the readers read (the function's
// contract), each field looked at on its own, not TrimPod's code.
func TestTrimPod_keepsWhatTheReadersRead(t *testing.T) {
	t.Parallel()
	whole := kubetest.Fatten(leanPod())
	trimmed := TrimPod(whole)
	containers := func(p *corev1.Pod) any {
		var out []any
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				// The mounts of the webhooks' token volumes, which the
				// mechanisms look up by these names.
				var mounts []corev1.VolumeMount
				for _, m := range c.VolumeMounts {
					if m.Name == "aws-iam-token" || m.Name == "eks-pod-identity-token" {
						mounts = append(mounts, m)
					}
				}
				out = append(out, c.Name, c.Image, c.Env, c.EnvFrom, mounts)
			}
		}
		return out
	}
	tokens := func(p *corev1.Pod) any {
		var out []any
		for _, v := range p.Spec.Volumes {
			// The webhooks' token volumes, which the mechanisms look up
			// by these names.
			if v.Projected == nil || (v.Name != "aws-iam-token" && v.Name != "eks-pod-identity-token") {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					out = append(out, v.Name, *src.ServiceAccountToken)
				}
			}
		}
		return out
	}
	readiness := func(p *corev1.Pod) any {
		var out []any
		for _, s := range p.Status.ContainerStatuses {
			out = append(out, s.Name, s.Ready, s.Started)
		}
		return out
	}
	for name, get := range map[string]func(*corev1.Pod) any{
		"name":                    func(p *corev1.Pod) any { return p.Name },
		"namespace":               func(p *corev1.Pod) any { return p.Namespace },
		"uid":                     func(p *corev1.Pod) any { return p.UID },
		"resourceVersion":         func(p *corev1.Pod) any { return p.ResourceVersion },
		"creationTimestamp":       func(p *corev1.Pod) any { return p.CreationTimestamp },
		"deletionTimestamp":       func(p *corev1.Pod) any { return p.DeletionTimestamp },
		"labels":                  func(p *corev1.Pod) any { return p.Labels },
		"annotations":             func(p *corev1.Pod) any { return p.Annotations },
		"ownerReferences":         func(p *corev1.Pod) any { return p.OwnerReferences },
		"spec.serviceAccountName": func(p *corev1.Pod) any { return p.Spec.ServiceAccountName },
		"spec.nodeName":           func(p *corev1.Pod) any { return p.Spec.NodeName },
		"containers":              containers,
		"token volumes":           tokens,
		"status.phase":            func(p *corev1.Pod) any { return p.Status.Phase },
		"the Ready condition's status": func(p *corev1.Pod) any {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					return c.Status
				}
			}
			return nil
		},
		"container readiness": readiness,
	} {
		want := get(whole)
		if reflect.ValueOf(want).IsZero() {
			t.Fatalf("%s: the fixture leaves it empty, so the check checks nothing", name)
		}
		if got := get(&trimmed); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: trimmed %v, want %v", name, got, want)
		}
	}
}

// What no reader reads is dropped: a trimmed fat pod is the trimmed lean
// one, and trimming again changes nothing.
func TestTrimPod_dropsTheRest(t *testing.T) {
	t.Parallel()
	lean := TrimPod(leanPod())
	fat := kubetest.Fatten(leanPod())
	trimmed := TrimPod(fat)
	if !reflect.DeepEqual(trimmed, lean) {
		t.Error("a trimmed fat pod differs from the trimmed lean one: TrimPod keeps something no reader reads")
	}
	if again := TrimPod(&trimmed); !reflect.DeepEqual(again, trimmed) {
		t.Error("trimming a trimmed pod changed it")
	}
	if size(t, &trimmed) >= size(t, fat) {
		t.Errorf("trimmed %d bytes, whole %d", size(t, &trimmed), size(t, fat))
	}
}

func size(t *testing.T, p *corev1.Pod) int {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// pagingServer answers pod LISTs as the API server does: by pages of
// Limit with a continue token and remainingItemCount, and the
// spec.serviceAccountName field selector applied; remainingItemCount only
// when counted (an API server may leave it out).
func pagingServer(c *countingClient, pods []corev1.Pod, counted bool) {
	c.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.calls["list pods"]++ // answered here, before the counting reactor
		c.mu.Unlock()
		l, ok := a.(k8stesting.ListActionImpl)
		if !ok {
			return false, nil, nil
		}
		opts := l.GetListOptions()
		var match []corev1.Pod
		sel := fields.Everything()
		if opts.FieldSelector != "" {
			var err error
			if sel, err = fields.ParseSelector(opts.FieldSelector); err != nil {
				return true, nil, err
			}
		}
		for _, p := range pods {
			if sel.Matches(fields.Set{"spec.serviceAccountName": p.Spec.ServiceAccountName}) {
				match = append(match, p)
			}
		}
		start := 0
		if opts.Continue != "" {
			start, _ = strconv.Atoi(opts.Continue)
		}
		end := len(match)
		out := &corev1.PodList{}
		if opts.Limit > 0 && start+int(opts.Limit) < end {
			end = start + int(opts.Limit)
			out.Continue = strconv.Itoa(end)
			if counted && opts.FieldSelector == "" {
				out.RemainingItemCount = ptr.To(int64(len(match) - end))
			}
		}
		for _, p := range match[start:end] {
			out.Items = append(out.Items, *p.DeepCopy())
		}
		return true, out, nil
	})
}

// podsOfOthers is n pods of other ServiceAccounts, as fat as real ones.
func podsOfOthers(n int) []corev1.Pod {
	pods := make([]corev1.Pod, n)
	for i := range pods {
		p := kubetest.Fatten(leanPod())
		p.DeletionTimestamp = nil
		p.Name = fmt.Sprintf("other-%d", i)
		p.Spec.ServiceAccountName = fmt.Sprintf("other-%d", i%100)
		pods[i] = *p
	}
	return pods
}

// A namespace of 20,000 pods of other ServiceAccounts and one binding costs
// what a namespace with only the binding's pods costs, in memory (what the
// snapshot holds on to) and about in requests: the first page shows the
// namespace is large, then the binding's ServiceAccount is listed alone.
func TestSnapshot_largeNamespaceKeepsOnlyWhatIsAskedFor(t *testing.T) {
	mine := make([]corev1.Pod, 3)
	for i := range mine {
		p := kubetest.Fatten(leanPod())
		p.DeletionTimestamp = nil
		p.Name = fmt.Sprintf("api-%d", i)
		mine[i] = *p
	}
	retained := func(pods []corev1.Pod) (uint64, *countingClient) {
		client := newCountingClient()
		pagingServer(client, pods, true)
		s := NewSnapshot(client, 0)
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		got, err := s.Pods(t.Context(), "apps", "api", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(mine) {
			t.Fatalf("%d pods of the binding's ServiceAccount, want %d", len(got), len(mine))
		}
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		goruntime.KeepAlive(s)
		if after.HeapAlloc < before.HeapAlloc {
			return 0, client
		}
		return after.HeapAlloc - before.HeapAlloc, client
	}
	alone, aloneClient := retained(mine)
	crowded, crowdedClient := retained(append(podsOfOthers(20000), mine...))
	t.Logf("held after listing: %d bytes alone, %d bytes among 20,000 other pods", alone, crowded)
	if crowded > 4*alone+512<<10 {
		t.Errorf("the snapshot holds %d bytes among 20,000 pods of other ServiceAccounts, %d without them", crowded, alone)
	}
	if got := aloneClient.count("list pods"); got != 1 {
		t.Errorf("small namespace: %d pod LISTs, want 1", got)
	}
	if got := crowdedClient.count("list pods"); got != 2 {
		t.Errorf("large namespace: %d pod LISTs, want 2 (its first page, then the ServiceAccount's pods)", got)
	}
}

// Between the limit and the first page's size: nothing shows it large
// until paging has counted past the limit; the snapshot then lists by
// ServiceAccount too, and every ServiceAccount asked about once.
func TestSnapshot_namespaceFoundLargeWhilePaging(t *testing.T) {
	pods := podsOfOthers(sharedPodsLimit + 1)
	client := newCountingClient()
	pagingServer(client, pods, false)
	s := NewSnapshot(client, 0)
	for range 2 {
		for _, sa := range []string{"other-1", "other-2"} {
			got, err := s.Pods(t.Context(), "apps", sa, "")
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, p := range pods {
				if p.Spec.ServiceAccountName == sa {
					want++
				}
			}
			if len(got) != want || want == 0 {
				t.Fatalf("%s: %d pods, want %d", sa, len(got), want)
			}
		}
	}
	pages := (sharedPodsLimit+1+snapshotPageSize-1)/snapshotPageSize + 2
	if got := client.count("list pods"); got > pages {
		t.Errorf("%d pod LISTs, want at most %d: the namespace's pages once, then each ServiceAccount once", got, pages)
	}
}

// The snapshot's pods are trimmed; each call builds its own pods (one
// caller's change to a pod's fields reaches no other), whose maps and
// slices are the snapshot's, shared rather than copied.
func TestSnapshot_podsAreTrimmedAndTheirPartsShared(t *testing.T) {
	fat := kubetest.Fatten(leanPod())
	fat.DeletionTimestamp = nil
	client := newCountingClient(fat)
	s := NewSnapshot(client, 0)
	first, err := s.Pods(t.Context(), "apps", "api", "")
	if err != nil || len(first) != 1 {
		t.Fatalf("%d pods, %v", len(first), err)
	}
	if want := TrimPod(fat); !reflect.DeepEqual(first[0], want) {
		t.Error("the snapshot's pod is not the trimmed pod")
	}
	first[0].Name = "changed by a caller"
	second, err := s.Pods(t.Context(), "apps", "api", "app=api")
	if err != nil || len(second) != 1 {
		t.Fatalf("%d pods, %v", len(second), err)
	}
	if second[0].Name != fat.Name {
		t.Errorf("one caller's change reached another: %q", second[0].Name)
	}
	if &first[0].Spec.Containers[0].Env[0] != &second[0].Spec.Containers[0].Env[0] {
		t.Error("the second caller got a copy of the env, which is only read")
	}
	if reflect.ValueOf(first[0].Labels).UnsafePointer() != reflect.ValueOf(second[0].Labels).UnsafePointer() {
		t.Error("the second caller got a copy of the labels, which are only read")
	}
}

// What a snapshot holds per pod is a fraction of what a whole pod costs.
func TestSnapshot_holdsAFractionOfWholePods(t *testing.T) {
	const n = 2000
	pods := make([]corev1.Pod, n)
	for i := range pods {
		p := kubetest.Fatten(leanPod())
		p.DeletionTimestamp = nil
		p.Name = fmt.Sprintf("api-%d", i)
		pods[i] = *p
	}
	client := newCountingClient()
	pagingServer(client, pods, true)
	held := func(read func() any) uint64 {
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		kept := read()
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		goruntime.KeepAlive(kept)
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	}
	whole := held(func() any {
		got, err := PodsOf(t.Context(), client, "apps", "api", "")
		if err != nil || len(got) != n {
			t.Fatalf("%d pods, %v", len(got), err)
		}
		return got
	})
	trimmed := held(func() any {
		s := NewSnapshot(client, 0)
		got, err := s.Pods(t.Context(), "apps", "api", "")
		if err != nil || len(got) != n {
			t.Fatalf("%d pods, %v", len(got), err)
		}
		return s
	})
	t.Logf("per pod: whole %d bytes, held by the snapshot %d bytes", whole/n, trimmed/n)
	if trimmed*2 > whole {
		t.Errorf("the snapshot holds %d bytes a pod, a whole pod is %d", trimmed/n, whole/n)
	}
}

// Pods of one workload share their labels, owner, containers, token volumes
// and readiness in the snapshot; pods that differ keep their own: a pod of
// the same ReplicaSet that the webhook did not inject into (created before
// the annotation) keeps its own env, and its verdict stays its own.
func TestSnapshot_podsOfAWorkloadShareLabelsAndOwner(t *testing.T) {
	pod := func(name, hash string) *corev1.Pod {
		p := leanPod()
		p.DeletionTimestamp = nil
		p.Name = name
		p.Labels = map[string]string{"app": "api", "pod-template-hash": hash}
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "api-" + hash, UID: types.UID("rs-" + hash), Controller: ptr.To(true)}}
		return p
	}
	uninjected := pod("a-3", "a")
	for i := range uninjected.Spec.Containers {
		uninjected.Spec.Containers[i].Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}
	}
	unready := pod("a-4", "a")
	unready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	client := newCountingClient(kubetest.Fatten(pod("a-1", "a")), kubetest.Fatten(pod("a-2", "a")), pod("b-1", "b"), uninjected, unready)
	got, err := NewSnapshot(client, 0).Pods(t.Context(), "apps", "api", "")
	if err != nil || len(got) != 5 {
		t.Fatalf("%d pods, %v", len(got), err)
	}
	byName := map[string]corev1.Pod{}
	for _, p := range got {
		byName[p.Name] = p
	}
	env := func(name string) *corev1.EnvVar { return &byName[name].Spec.Containers[0].Env[0] }
	if env("a-1") != env("a-2") || &byName["a-1"].Status.Conditions[0] != &byName["a-2"].Status.Conditions[0] {
		t.Error("two pods of one ReplicaSet with the same containers and readiness hold them twice")
	}
	if got := byName["a-3"].Spec.Containers[0].Env; len(got) != 1 || got[0].Name != "LOG_LEVEL" {
		t.Errorf("the pod the webhook did not inject into reads back env %v", got)
	}
	if got := byName["a-4"].Status.Conditions; len(got) != 1 || got[0].Status != corev1.ConditionFalse {
		t.Errorf("the unready pod reads back conditions %v", got)
	}
	if env("a-4") != env("a-1") {
		t.Error("the unready pod holds its own copy of containers equal to its siblings'")
	}
	same := func(a, b corev1.Pod) bool {
		return reflect.ValueOf(a.Labels).UnsafePointer() == reflect.ValueOf(b.Labels).UnsafePointer() && &a.OwnerReferences[0] == &b.OwnerReferences[0]
	}
	if !same(byName["a-1"], byName["a-2"]) {
		t.Error("two pods of one ReplicaSet hold their labels and owner twice")
	}
	if b := byName["b-1"]; same(byName["a-1"], b) || b.Labels["pod-template-hash"] != "b" || b.OwnerReferences[0].Name != "api-b" {
		t.Errorf("a pod of another ReplicaSet got %v, %v", b.Labels, b.OwnerReferences)
	}
}
