package recycle

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// fakeCluster is client-go's fake clientset with reactors that play the
// parts a real cluster has and the fake lacks: controllers that re-create
// what is deleted or evicted, a rollout on restart, a pod identity webhook
// whose view of the ServiceAccount the test controls, and faults on demand.
// The acceptance tests run the same engine against a real control plane;
// this tier is for what a real cluster will not do when asked.
type fakeCluster struct {
	t      *testing.T
	client *fake.Clientset

	mu sync.Mutex
	// webhookRole is what the webhook injects into new pods; "" injects
	// nothing (down or not registered).
	webhookRole string
	// webhookOther makes the webhook inject another mechanism's
	// credentials, which it gives precedence.
	webhookOther bool
	// missNext is how many of the next pods the webhook misses (its
	// cache lags).
	missNext int
	// probesUntilCaughtUp: dry runs that still see stale before the
	// webhook injects webhookRole.
	probesUntilCaughtUp int
	staleRole           string
	// stuck controllers never replace pods.
	stuck bool
	// evictionBlocked answers every eviction with 429.
	evictionBlocked bool
	now             time.Time // the API server's clock
	seq             int
	events          []string
	listHooks       map[int]func()
	lists           int
	// refuseWatch answers every watch 403, as the least-privilege guide's
	// roles do: the engine then reads every round.
	refuseWatch bool
	// watchHooks run once when the engine starts watching a resource.
	watchHooks map[string]func()
}

const (
	testNS = "ns"
	testSA = "api"
)

var (
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	rsGVR   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
)

func newFakeCluster(t *testing.T) *fakeCluster {
	c := &fakeCluster{t: t, client: fake.NewClientset(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), listHooks: map[int]func(){}, watchHooks: map[string]func(){}}
	c.client.PrependWatchReactor("*", c.watch)
	c.client.PrependReactor("create", "pods", c.createPod)
	c.client.PrependReactor("delete", "pods", c.deletePod)
	c.client.PrependReactor("list", "pods", c.listPods)
	for _, res := range []string{"deployments", "statefulsets", "daemonsets"} {
		c.client.PrependReactor("patch", res, c.restartWorkload)
	}
	return c
}

func (c *fakeCluster) pods() Engine {
	return Engine{Conn: kube.Conn{Client: c.client, FieldManager: "irsa-test"}}
}

func (c *fakeCluster) record(format string, args ...any) {
	c.events = append(c.events, fmt.Sprintf(format, args...))
}

// Events returns what the engine did, in order.
func (c *fakeCluster) Events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.events...)
}

func (c *fakeCluster) tick() metav1.Time {
	c.now = c.now.Add(time.Second)
	return metav1.NewTime(c.now)
}

// onList runs hook when the engine lists pods for the n-th time.
func (c *fakeCluster) onList(n int, hook func()) { c.listHooks[n] = hook }

// onWatch runs hook once, when the engine starts watching resource, after
// the watch is open: what hook changes reaches the engine as events.
func (c *fakeCluster) onWatch(resource string, hook func()) { c.watchHooks[resource] = hook }

func (c *fakeCluster) watch(a k8stesting.Action) (bool, watch.Interface, error) {
	c.mu.Lock()
	refuse := c.refuseWatch
	res := a.GetResource()
	hook := c.watchHooks[res.Resource]
	delete(c.watchHooks, res.Resource)
	c.mu.Unlock()
	if refuse {
		return true, nil, apierrors.NewForbidden(res.GroupResource(), "", fmt.Errorf("watch is not granted"))
	}
	if hook == nil {
		return false, nil, nil
	}
	w, err := c.client.Tracker().Watch(res, a.GetNamespace())
	if err == nil {
		hook()
	}
	return true, w, err
}

// fail makes the next n requests matching verb, resource and subresource
// fail with err, after the first skip of them pass.
func (c *fakeCluster) fail(verb, resource, subresource string, skip, n int, err error) {
	c.client.PrependReactor(verb, resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != subresource {
			return false, nil, nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if skip > 0 {
			skip--
			return false, nil, nil
		}
		if n == 0 {
			return false, nil, nil
		}
		n--
		return true, nil, err
	})
}

// mutate is the webhook: it injects the role it sees into a new pod.
func (c *fakeCluster) mutate(pod *corev1.Pod, role string) {
	if c.webhookOther {
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].Env = append(pod.Spec.Containers[i].Env, corev1.EnvVar{Name: envOther, Value: "1"})
		}
		return
	}
	if role == "" {
		return
	}
	for i := range pod.Spec.Containers {
		ctr := &pod.Spec.Containers[i]
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: envRole, Value: role})
	}
}

// admit stamps a new pod as the API server would and runs the webhook.
func (c *fakeCluster) admit(pod *corev1.Pod) {
	c.seq++
	if pod.Name == "" {
		pod.Name = fmt.Sprintf("%s%d", pod.GenerateName, c.seq)
	}
	pod.Namespace = testNS
	pod.UID = types.UID(fmt.Sprintf("uid-%d", c.seq))
	pod.CreationTimestamp = c.tick()
	if c.missNext > 0 {
		c.missNext--
	} else {
		c.mutate(pod, c.webhookRole)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
}

func (c *fakeCluster) createPod(a k8stesting.Action) (bool, runtime.Object, error) {
	create, ok := a.(k8stesting.CreateActionImpl)
	if !ok {
		return false, nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if create.GetSubresource() == "eviction" {
		ev, ok := create.GetObject().(*policyv1.Eviction)
		if !ok {
			return true, nil, fmt.Errorf("eviction of %T", create.GetObject())
		}
		if c.evictionBlocked {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		}
		c.record("evict %s", ev.Name)
		return true, nil, c.remove(ev.Name)
	}
	sent, ok := create.GetObject().(*corev1.Pod)
	if !ok {
		return false, nil, nil
	}
	pod := sent.DeepCopy()
	if len(create.GetCreateOptions().DryRun) > 0 {
		role := c.webhookRole
		if c.probesUntilCaughtUp > 0 {
			c.probesUntilCaughtUp--
			role = c.staleRole
		}
		c.seq++
		pod.Name = pod.GenerateName + "dryrun"
		pod.CreationTimestamp = c.tick()
		c.mutate(pod, role)
		return true, pod, nil
	}
	return false, nil, nil
}

func (c *fakeCluster) deletePod(a k8stesting.Action) (bool, runtime.Object, error) {
	del, ok := a.(k8stesting.DeleteActionImpl)
	if !ok {
		return false, nil, nil
	}
	name := del.GetName()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("delete %s", name)
	return true, nil, c.remove(name)
}

func (c *fakeCluster) listPods(k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	c.lists++
	hook := c.listHooks[c.lists]
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return false, nil, nil
}

// remove deletes a pod and, unless controllers are stuck, has its
// controller create the replacement. Called with mu held.
func (c *fakeCluster) remove(name string) error {
	obj, err := c.client.Tracker().Get(podsGVR, testNS, name)
	if err != nil {
		return err
	}
	old, ok := obj.(*corev1.Pod)
	if !ok {
		return fmt.Errorf("tracker returned %T", obj)
	}
	if err := c.client.Tracker().Delete(podsGVR, testNS, name); err != nil {
		return err
	}
	owner := metav1.GetControllerOf(old)
	if c.stuck || owner == nil || owner.Kind == KindJob {
		return nil
	}
	next := old.Name
	if owner.Kind != KindStatefulSet {
		next = fmt.Sprintf("%s-r%d", owner.Name, c.seq+1)
	}
	return c.addPod(next, owner.Kind, owner.Name)
}

// addPod creates a pod through the webhook. Called with mu held.
func (c *fakeCluster) addPod(name, kind, owner string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": testSA}},
		Spec:       corev1.PodSpec{ServiceAccountName: testSA, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	if kind != "" {
		pod.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, Controller: ptr.To(true)}}
	}
	c.admit(pod)
	return c.client.Tracker().Create(podsGVR, pod, testNS)
}

// restartWorkload plays the controller of a rollout: every pod of the
// workload replaced at once, under a new ReplicaSet for a Deployment.
func (c *fakeCluster) restartWorkload(a k8stesting.Action) (bool, runtime.Object, error) {
	patch, ok := a.(k8stesting.PatchActionImpl)
	if !ok {
		return false, nil, nil
	}
	kind := map[string]string{"deployments": KindDeployment, "statefulsets": KindStatefulSet, "daemonsets": KindDaemonSet}[patch.GetResource().Resource]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("restart %s/%s", kind, patch.GetName())
	if c.stuck {
		return false, nil, nil
	}
	list, err := c.client.Tracker().List(podsGVR, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, testNS)
	if err != nil {
		return true, nil, err
	}
	newOwnerKind, newOwner := kind, patch.GetName()
	if kind == KindDeployment {
		c.seq++
		newOwnerKind, newOwner = KindReplicaSet, fmt.Sprintf("%s-v%d", patch.GetName(), c.seq)
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: newOwner, Namespace: testNS,
			OwnerReferences: []metav1.OwnerReference{{Kind: KindDeployment, Name: patch.GetName(), Controller: ptr.To(true)}}}}
		if err := c.client.Tracker().Create(rsGVR, rs, testNS); err != nil {
			return true, nil, err
		}
	}
	pods, ok := list.(*corev1.PodList)
	if !ok {
		return true, nil, fmt.Errorf("tracker listed %T", list)
	}
	for _, obj := range pods.Items {
		owner := metav1.GetControllerOf(&obj)
		if owner == nil {
			continue
		}
		mine := owner.Kind == kind && owner.Name == patch.GetName()
		if kind == KindDeployment && owner.Kind == KindReplicaSet && strings.HasPrefix(owner.Name, patch.GetName()+"-") {
			mine = true
		}
		if !mine {
			continue
		}
		if err := c.client.Tracker().Delete(podsGVR, testNS, obj.Name); err != nil {
			return true, nil, err
		}
		next := obj.Name
		if kind != KindStatefulSet {
			next = fmt.Sprintf("%s-n%d", newOwner, c.seq+1)
		}
		if kind == KindStatefulSet && ordinal(obj.Name) < c.partition(patch.GetName()) {
			// Held back by the partition: put it back untouched.
			if err := c.client.Tracker().Create(podsGVR, &obj, testNS); err != nil {
				return true, nil, err
			}
			continue
		}
		if err := c.addPod(next, newOwnerKind, newOwner); err != nil {
			return true, nil, err
		}
	}
	if kind == KindDeployment {
		// The Deployment controller's status once every pod is new.
		gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		obj, err := c.client.Tracker().Get(gvr, testNS, patch.GetName())
		if err != nil {
			return true, nil, err
		}
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return true, nil, fmt.Errorf("tracker returned %T", obj)
		}
		n := replicas(d.Spec.Replicas)
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = n, n, n, n
		if err := c.client.Tracker().Update(gvr, d, testNS); err != nil {
			return true, nil, err
		}
	}
	if kind == KindStatefulSet {
		// The StatefulSet controller's status after rolling the ordinals
		// at or above the partition: a partitioned set never converges
		// on one revision.
		gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
		obj, err := c.client.Tracker().Get(gvr, testNS, patch.GetName())
		if err != nil {
			return true, nil, err
		}
		sts, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			return true, nil, fmt.Errorf("tracker returned %T", obj)
		}
		partition := int32(c.partition(sts.Name))
		sts.Status.UpdateRevision = fmt.Sprintf("r%d", c.seq)
		if partition == 0 {
			sts.Status.CurrentRevision = sts.Status.UpdateRevision
		}
		sts.Status.UpdatedReplicas = replicas(sts.Spec.Replicas) - partition
		if err := c.client.Tracker().Update(gvr, sts, testNS); err != nil {
			return true, nil, err
		}
	}
	return false, nil, nil
}

func (c *fakeCluster) partition(name string) int {
	obj, err := c.client.Tracker().Get(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, testNS, name)
	if err != nil {
		return 0
	}
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return 0
	}
	if ru := sts.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		return int(*ru.Partition)
	}
	return 0
}

func (c *fakeCluster) mustCreate(obj runtime.Object) {
	c.t.Helper()
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		_, err = c.client.AppsV1().Deployments(testNS).Create(c.t.Context(), o, metav1.CreateOptions{})
	case *appsv1.ReplicaSet:
		_, err = c.client.AppsV1().ReplicaSets(testNS).Create(c.t.Context(), o, metav1.CreateOptions{})
	case *appsv1.StatefulSet:
		_, err = c.client.AppsV1().StatefulSets(testNS).Create(c.t.Context(), o, metav1.CreateOptions{})
	case *appsv1.DaemonSet:
		_, err = c.client.AppsV1().DaemonSets(testNS).Create(c.t.Context(), o, metav1.CreateOptions{})
	case *batchv1.Job:
		_, err = c.client.BatchV1().Jobs(testNS).Create(c.t.Context(), o, metav1.CreateOptions{})
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

// stalePods creates n pods of a workload before the annotation: no role.
func (c *fakeCluster) stalePods(kind, owner string, names ...string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	role := c.webhookRole
	c.webhookRole = ""
	defer func() { c.webhookRole = role }()
	for _, n := range names {
		if err := c.addPod(n, kind, owner); err != nil {
			c.t.Fatal(err)
		}
	}
}

// deployment creates a Deployment of n stale pods under ReplicaSet NAME-1.
func (c *fakeCluster) deployment(name string, n int32, mod ...func(*appsv1.Deployment)) {
	c.t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, Generation: 1},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To(n), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: testSA, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: n, UpdatedReplicas: n, AvailableReplicas: n, ReadyReplicas: n}}
	for _, m := range mod {
		m(d)
	}
	c.mustCreate(d)
	c.mustCreate(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: testNS,
		OwnerReferences: []metav1.OwnerReference{{Kind: KindDeployment, Name: name, Controller: ptr.To(true)}}}})
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s-1-%c", name, 'a'+i))
	}
	c.stalePods(KindReplicaSet, name+"-1", names...)
}

// statefulSet creates a StatefulSet of n stale pods.
func (c *fakeCluster) statefulSet(name string, n int32, strategy appsv1.StatefulSetUpdateStrategy) {
	c.t.Helper()
	c.mustCreate(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, Generation: 1},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(n), UpdateStrategy: strategy,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: testSA, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: n, ReadyReplicas: n, UpdatedReplicas: n, CurrentRevision: "r1", UpdateRevision: "r1"}})
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s-%d", name, i))
	}
	c.stalePods(KindStatefulSet, name, names...)
}

// livePods names the pods now in the cluster.
func (c *fakeCluster) livePods() map[string]*corev1.Pod {
	c.t.Helper()
	list, err := c.client.Tracker().List(podsGVR, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, testNS)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]*corev1.Pod{}
	pods, ok := list.(*corev1.PodList)
	if !ok {
		c.t.Fatalf("tracker listed %T", list)
	}
	for _, p := range pods.Items {
		out[p.Name] = &p
	}
	return out
}

func (c *fakeCluster) options(strategy Strategy) RecycleOptions {
	return RecycleOptions{
		Namespace: testNS, ServiceAccount: testSA, Strategy: strategy, Wait: true, MaxRetries: 3,
		Credentials:  roleCredentials{role: roleA},
		PollInterval: time.Millisecond, GateTimeout: 100 * time.Millisecond,
	}
}

// registerWebhook registers a pod identity webhook that the reactors do not
// run: it is down, or (with a namespace selector the test namespace does
// not match) leaves the namespace out.
func (c *fakeCluster) registerWebhook(namespaceSelector *metav1.LabelSelector) {
	c.t.Helper()
	ctx := c.t.Context()
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}}, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	ignore := admissionregistrationv1.Ignore
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-identity-webhook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:              "iam-for-pods.amazonaws.com",
			FailurePolicy:     &ignore,
			NamespaceSelector: namespaceSelector,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
	if _, err := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}
