package recycle

import (
	"context"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// The wait's view of what it waits for: the ServiceAccount's live pods and
// each restarted workload, each read once (a LIST, a GET) and then kept up to
// date by a WATCH from that read's resourceVersion, as `kubectl rollout
// status` and informers do. A round of the wait then costs no request, where
// it used to cost a LIST and a GET per workload: a role change of 50
// Deployments of 10 pods makes about four requests per binding to wait,
// instead of two a second.
//
// watch is not in the least-privilege guide's roles, and is not needed: a
// watch the API server refuses (403, 405) is not asked for again, and that
// source is read every round instead, as before. A watch that ends (a
// timeout, a dropped connection) resumes from the last resourceVersion; one
// too old to resume (410 Gone) is replaced by a fresh read.

// source is one thing the view keeps: how to read it whole and how to watch
// it from a resourceVersion. Watches last WatchTimeoutSeconds, under the
// client's request timeout, and resume.
type source struct {
	read  func(ctx context.Context) (items []runtime.Object, resourceVersion string, err error)
	watch func(ctx context.Context, resourceVersion string) (watch.Interface, error)
	// keep returns what to keep of an object the watch delivers; false
	// drops it (not ours, or no longer live).
	keep func(runtime.Object) (runtime.Object, bool)
}

// watched is one source's objects by name.
type watched struct {
	src   source
	items map[string]runtime.Object
	rv    string
	w     *following // nil: not watching
	read  bool
	// polling: the API server refused the watch; read every round.
	polling bool
}

// sync brings the objects up to date: the events delivered since the last
// sync, without waiting for more; a read when there is no watch to follow.
func (v *watched) sync(ctx context.Context) error {
	if v.w != nil && v.drain() {
		return nil
	}
	if v.read && v.rv != "" && !v.polling && v.start(ctx) == nil && v.drain() {
		return nil // resumed where the ended watch left off
	}
	items, rv, err := v.src.read(ctx)
	if err != nil {
		return err
	}
	v.items = make(map[string]runtime.Object, len(items))
	for _, obj := range items {
		if kept, ok := v.src.keep(obj); ok {
			v.items[name(kept)] = kept
		}
	}
	v.rv, v.read = rv, true
	if !v.polling && v.start(ctx) == nil {
		v.drain()
	}
	return nil
}

// start watches from the last resourceVersion. A refusal that will not
// pass turns the source to polling.
func (v *watched) start(ctx context.Context) error {
	w, err := v.src.watch(ctx, v.rv)
	switch {
	case err == nil:
		v.w = follow(w)
	case apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err) || apierrors.IsBadRequest(err):
		v.polling = true
	}
	return err
}

// drain applies the events the watch has delivered; false when the watch
// ended (and, if it ended too old to resume, forgets where it was).
func (v *watched) drain() bool {
	events, ended := v.w.take()
	for _, ev := range events {
		switch ev.Type {
		case watch.Added, watch.Modified:
			if kept, ok := v.src.keep(ev.Object); ok {
				v.items[name(kept)] = kept
			} else {
				delete(v.items, name(ev.Object))
			}
		case watch.Deleted:
			delete(v.items, name(ev.Object))
		case watch.Error:
			v.stop()
			if err := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				v.rv = ""
			}
			return false
		}
		if acc, err := meta.Accessor(ev.Object); err == nil && acc.GetResourceVersion() != "" {
			v.rv = acc.GetResourceVersion()
		}
	}
	if ended {
		v.w = nil
		return false
	}
	return true
}

func (v *watched) stop() {
	if v.w != nil {
		v.w.stop()
		v.w = nil
	}
}

// following is a watch's events as they arrive. A goroutine takes each off
// the watch's channel at once: client-go's channel is unbuffered, and its
// decoder reads the next event only once the last was taken, so a round of
// the wait that took only what was ready at that instant applied one or two
// events and fell seconds behind a rollout (hundreds of pod updates); it
// now applies every event delivered since the last round.
type following struct {
	w      watch.Interface
	mu     sync.Mutex
	events []watch.Event
	ended  bool // the channel closed: the watch timed out, failed or was stopped
}

func follow(w watch.Interface) *following {
	f := &following{w: w}
	go func() {
		for ev := range w.ResultChan() {
			f.mu.Lock()
			f.events = append(f.events, ev)
			f.mu.Unlock()
		}
		f.mu.Lock()
		f.ended = true
		f.mu.Unlock()
	}()
	return f
}

// take returns the events delivered since the last take, and whether the
// watch has ended after them.
func (f *following) take() ([]watch.Event, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	events := f.events
	f.events = nil
	return events, f.ended
}

// stop ends the watch; its goroutine ends when the channel closes.
func (f *following) stop() { f.w.Stop() }

func name(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return acc.GetName()
}

// waitView is what one recycle's wait looks at, shared by its waits (paced
// replacements wait once per pod, side by side).
type waitView struct {
	client             kubernetes.Interface
	namespace, sa, sel string
	selector           labels.Selector
	selectErr          error

	mu        sync.Mutex
	pods      *watched
	workloads map[Workload]*watched
}

func newWaitView(client kubernetes.Interface, namespace, sa, selector string) *waitView {
	v := &waitView{client: client, namespace: namespace, sa: sa, sel: selector, workloads: map[Workload]*watched{}}
	v.selector, v.selectErr = kube.ParseSelector(selector)
	return v
}

// livePods returns the ServiceAccount's live pods matching the selector,
// trimmed (kube.TrimPod), by name: what kube.PodsOf lists.
func (v *waitView) livePods(ctx context.Context) ([]corev1.Pod, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.selectErr != nil {
		return nil, v.selectErr
	}
	if v.pods == nil {
		v.pods = &watched{src: v.podSource()}
	}
	err := kube.OnTransient(ctx, func() error { return v.pods.sync(ctx) })
	if err != nil {
		return nil, err
	}
	pods := make([]corev1.Pod, 0, len(v.pods.items))
	for _, obj := range v.pods.items {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, *pod)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

func (v *waitView) podSource() source {
	pods := v.client.CoreV1().Pods(v.namespace)
	opts := func(rv string) metav1.ListOptions {
		return metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", v.sa).String(),
			LabelSelector: v.sel, ResourceVersion: rv, AllowWatchBookmarks: true,
		}
	}
	watchOpts := func(rv string) metav1.ListOptions {
		o := opts(rv)
		o.TimeoutSeconds = ptr.To(kube.WatchTimeoutSeconds)
		return o
	}
	return source{
		read: func(ctx context.Context) ([]runtime.Object, string, error) {
			list, err := pods.List(ctx, opts(""))
			if err != nil {
				return nil, "", err
			}
			items := make([]runtime.Object, len(list.Items))
			for i := range list.Items {
				items[i] = &list.Items[i]
			}
			return items, list.ResourceVersion, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) { return pods.Watch(ctx, watchOpts(rv)) },
		keep: func(obj runtime.Object) (runtime.Object, bool) {
			pod, ok := obj.(*corev1.Pod)
			// The selectors again: a fake clientset, or a proxy, may not
			// apply them.
			if !ok || !kube.IsLive(pod) || pod.Spec.ServiceAccountName != v.sa || !v.selector.Matches(labels.Set(pod.Labels)) {
				return nil, false
			}
			trimmed := kube.TrimPod(pod)
			return &trimmed, true
		},
	}
}

// workload returns w as the API server has it now, or its NotFound.
func (v *waitView) workload(ctx context.Context, w Workload) (runtime.Object, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	src, ok := v.workloadSource(w)
	if !ok {
		return nil, nil
	}
	ww := v.workloads[w]
	if ww == nil {
		ww = &watched{src: src}
		v.workloads[w] = ww
	}
	if err := ww.sync(ctx); err != nil {
		return nil, err
	}
	obj, ok := ww.items[w.Name]
	if !ok {
		return nil, apierrors.NewNotFound(appsv1.Resource(workloadResource[w.Kind]), w.Name)
	}
	return obj, nil
}

var workloadResource = map[string]string{KindDeployment: "deployments", KindStatefulSet: "statefulsets", KindDaemonSet: "daemonsets"}

// workloadSource reads a workload by GET (what the guide grants) and
// watches it by name, as kubectl rollout status does.
func (v *waitView) workloadSource(w Workload) (source, bool) {
	apps := v.client.AppsV1()
	byName := func(rv string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", w.Name).String(), ResourceVersion: rv,
			AllowWatchBookmarks: true, TimeoutSeconds: ptr.To(kube.WatchTimeoutSeconds)}
	}
	var get func(ctx context.Context) (runtime.Object, error)
	var watchFn func(ctx context.Context, rv string) (watch.Interface, error)
	switch w.Kind {
	case KindDeployment:
		get = func(ctx context.Context) (runtime.Object, error) {
			return apps.Deployments(v.namespace).Get(ctx, w.Name, metav1.GetOptions{})
		}
		watchFn = func(ctx context.Context, rv string) (watch.Interface, error) {
			return apps.Deployments(v.namespace).Watch(ctx, byName(rv))
		}
	case KindStatefulSet:
		get = func(ctx context.Context) (runtime.Object, error) {
			return apps.StatefulSets(v.namespace).Get(ctx, w.Name, metav1.GetOptions{})
		}
		watchFn = func(ctx context.Context, rv string) (watch.Interface, error) {
			return apps.StatefulSets(v.namespace).Watch(ctx, byName(rv))
		}
	case KindDaemonSet:
		get = func(ctx context.Context) (runtime.Object, error) {
			return apps.DaemonSets(v.namespace).Get(ctx, w.Name, metav1.GetOptions{})
		}
		watchFn = func(ctx context.Context, rv string) (watch.Interface, error) {
			return apps.DaemonSets(v.namespace).Watch(ctx, byName(rv))
		}
	default:
		return source{}, false
	}
	return source{
		read: func(ctx context.Context) ([]runtime.Object, string, error) {
			obj, err := get(ctx)
			if err != nil {
				return nil, "", err
			}
			return []runtime.Object{obj}, objectVersion(obj), nil
		},
		watch: watchFn,
		keep: func(obj runtime.Object) (runtime.Object, bool) {
			return obj, name(obj) == w.Name
		},
	}, true
}

func objectVersion(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return acc.GetResourceVersion()
}

// reads reports whether the next look would cost requests: something is
// not watched (not read yet, refused, or its watch ended).
func (v *waitView) reads() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pods == nil || v.pods.w == nil {
		return true
	}
	for _, ww := range v.workloads {
		if ww.w == nil {
			return true
		}
	}
	return false
}

// reread makes the next look read everything again: after the engine acted
// itself in the middle of a wait (a re-recycle), so that no event still on
// its way can make the view older than the act.
func (v *waitView) reread() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ww := range append([]*watched{v.pods}, valuesOf(v.workloads)...) {
		if ww != nil {
			ww.stop()
			ww.rv = ""
		}
	}
}

// close stops the watches.
func (v *waitView) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ww := range append([]*watched{v.pods}, valuesOf(v.workloads)...) {
		if ww != nil {
			ww.stop()
		}
	}
}

func valuesOf(m map[Workload]*watched) []*watched {
	out := make([]*watched, 0, len(m))
	for _, w := range m {
		out = append(out, w)
	}
	return out
}
