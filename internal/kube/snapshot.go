package kube

import (
	"context"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DefaultSnapshotAge bounds how long a snapshot serves a namespace. A plan's
// reads happen within seconds of each other; a provider process that lives
// longer (a console, a very long plan) looks again rather than answer from
// an old picture.
const DefaultSnapshotAge = time.Minute

// snapshotPageSize pages namespace LISTs, so a namespace with many pods is
// read in bounded responses.
const snapshotPageSize = 500

// sharedPodsLimit is the most pods a namespace may have for the snapshot to
// list it whole and keep every pod (trimmed) for the bindings to come. A
// larger namespace is mostly pods of ServiceAccounts no binding asks about:
// there each ServiceAccount asked about is listed alone (a field selector),
// once, so memory grows with the pods of bound ServiceAccounts, not with the
// namespace. Whether a namespace is larger shows on the first page (the API
// server's remainingItemCount), or by counting while paging.
const sharedPodsLimit = 2000

// Snapshot shares the reads of one Terraform operation between bindings:
// each namespace's ServiceAccounts and pods are listed once, by the first
// binding that asks, and every other binding of that namespace is answered
// from those lists. A refresh of hundreds of bindings then costs two LISTs
// per namespace instead of a GET and a LIST per binding.
//
// Only what informs (Read, plan warnings, the first guess of an apply) comes
// from a snapshot. Writes stay safe on their own: an apply is conditional on
// the resourceVersion it was decided on, so a ServiceAccount that changed
// since the snapshot is read again; and pods are always listed fresh before
// anything is recycled.
type Snapshot struct {
	client kubernetes.Interface
	maxAge time.Duration
	now    func() time.Time

	mu sync.Mutex
	// serviceAccounts and pods are per namespace.
	serviceAccounts map[string]*listing[[]corev1.ServiceAccount]
	pods            map[string]*listing[podsBySA]
	// saPods are the pods of one ServiceAccount of a namespace too large
	// to keep whole (sharedPodsLimit).
	saPods map[types.NamespacedName]*listing[[]podRecord]
	// saOverrides are ServiceAccounts this process wrote or looked up one
	// by one since its namespace was listed (nil: deleted or missing;
	// lookUp: changed, to be read again by name).
	saOverrides map[types.NamespacedName]*corev1.ServiceAccount
	// podsDirty are ServiceAccounts whose pods this process recycled: the
	// namespace list no longer describes them.
	podsDirty map[types.NamespacedName]bool
	// listForbidden are namespaces where RBAC allows getting a
	// ServiceAccount by name but not listing them.
	listForbidden map[string]bool
}

// lookUp marks a ServiceAccount this process changed without seeing the
// result.
var lookUp = &corev1.ServiceAccount{}

// listing is one LIST (a namespace's, or a ServiceAccount's pods), fetched
// once for every caller waiting on it.
type listing[T any] struct {
	done  chan struct{}
	items T
	err   error
	at    time.Time
}

// NewSnapshot returns an empty snapshot reading through client; maxAge 0
// means DefaultSnapshotAge.
func NewSnapshot(client kubernetes.Interface, maxAge time.Duration) *Snapshot {
	if maxAge == 0 {
		maxAge = DefaultSnapshotAge
	}
	return &Snapshot{
		client:          client,
		maxAge:          maxAge,
		now:             time.Now,
		serviceAccounts: map[string]*listing[[]corev1.ServiceAccount]{},
		pods:            map[string]*listing[podsBySA]{},
		saPods:          map[types.NamespacedName]*listing[[]podRecord]{},
		saOverrides:     map[types.NamespacedName]*corev1.ServiceAccount{},
		podsDirty:       map[types.NamespacedName]bool{},
		listForbidden:   map[string]bool{},
	}
}

// list returns the listing of key from m, fetching it when there is none,
// it failed, or it is too old. Concurrent callers share one fetch.
func list[K comparable, T any](ctx context.Context, s *Snapshot, m map[K]*listing[T], key K, fetch func(context.Context) (T, error), onRefetch func()) (T, error) {
	s.mu.Lock()
	l, ok := m[key]
	if ok {
		select {
		case <-l.done:
			if l.err != nil || s.now().Sub(l.at) > s.maxAge {
				ok = false
			}
		default: // being fetched: wait for it
		}
	}
	if !ok {
		l = &listing[T]{done: make(chan struct{})}
		m[key] = l
		if onRefetch != nil {
			onRefetch()
		}
		s.mu.Unlock()
		// The fetch serves every waiter, so one caller's cancel does not
		// fail the others; the client's own timeout still bounds it.
		l.items, l.err = fetch(context.WithoutCancel(ctx))
		l.at = s.now()
		close(l.done)
		return l.items, l.err
	}
	s.mu.Unlock()
	select {
	case <-l.done:
		return l.items, l.err
	case <-ctx.Done():
		var none T
		return none, ctx.Err()
	}
}

// ServiceAccount returns the ServiceAccount as the snapshot knows it. One
// missing from the namespace list is looked up by name before it is
// reported missing (as an apierrors NotFound): it may have been created
// since, by another resource of the same apply.
func (s *Snapshot) ServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s.mu.Lock()
	override, overridden := s.saOverrides[key]
	forbidden := s.listForbidden[namespace]
	s.mu.Unlock()
	switch {
	case overridden && override == nil:
		return nil, notFound(name)
	case overridden && override != lookUp:
		return override.DeepCopy(), nil
	case overridden:
		forbidden = true // changed by this process: ask for it by name
	}
	if !forbidden {
		sas, err := list(ctx, s, s.serviceAccounts, namespace, func(ctx context.Context) ([]corev1.ServiceAccount, error) {
			return s.listServiceAccounts(ctx, namespace)
		}, s.forgetServiceAccountOverrides(namespace))
		switch {
		case apierrors.IsForbidden(err):
			// RBAC may grant get on named ServiceAccounts only.
			s.mu.Lock()
			s.listForbidden[namespace] = true
			s.mu.Unlock()
		case err != nil:
			return nil, err
		default:
			if i := slices.IndexFunc(sas, func(sa corev1.ServiceAccount) bool { return sa.Name == name }); i >= 0 {
				return sas[i].DeepCopy(), nil
			}
		}
	}
	var sa *corev1.ServiceAccount
	err := OnTransient(ctx, func() (err error) {
		sa, err = s.client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		s.Remember(namespace, name, nil)
	case err == nil:
		s.Remember(namespace, name, sa.DeepCopy())
	}
	return sa, err
}

// forgetServiceAccountOverrides drops a namespace's overrides when its list
// is fetched again (called with mu held): the new list is newer than them.
func (s *Snapshot) forgetServiceAccountOverrides(namespace string) func() {
	return func() {
		for k := range s.saOverrides {
			if k.Namespace == namespace {
				delete(s.saOverrides, k)
			}
		}
	}
}

// Remember records a ServiceAccount as this process last saw or wrote it
// (nil: it does not exist), so later reads do not answer from an older list.
func (s *Snapshot) Remember(namespace, name string, sa *corev1.ServiceAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saOverrides[types.NamespacedName{Namespace: namespace, Name: name}] = sa
}

// Forget drops what the snapshot knows of a ServiceAccount and its pods
// after this process changed them without knowing the outcome: the next
// reads of them ask the API server.
func (s *Snapshot) Forget(namespace, name string) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saOverrides[key] = lookUp
	s.podsDirty[key] = true
}

// podsBySA is one namespace's live pods, trimmed (podRecord), by
// ServiceAccount; nil when the namespace is too large to keep whole.
type podsBySA map[string][]podRecord

// Pods returns the live pods that run as ServiceAccount sa and match
// selector, like PodsOf, from the namespace's pod list, trimmed (TrimPod).
// Each call builds its pods from the snapshot's records (a few hundred
// bytes a pod where a corev1.Pod is 1.2 KiB); their maps and slices are
// the snapshot's, shared with every caller: read them, never change them.
func (s *Snapshot) Pods(ctx context.Context, namespace, sa, selector string) ([]corev1.Pod, error) {
	sel, err := ParseSelector(selector)
	if err != nil {
		return nil, err
	}
	key := types.NamespacedName{Namespace: namespace, Name: sa}
	s.mu.Lock()
	dirty := s.podsDirty[key]
	s.mu.Unlock()
	if dirty {
		return PodsOf(ctx, s.client, namespace, sa, selector)
	}
	bySA, err := list(ctx, s, s.pods, namespace, func(ctx context.Context) (podsBySA, error) {
		return s.listPods(ctx, namespace)
	}, s.forgetDirtyPods(namespace))
	if err != nil {
		return nil, err
	}
	mine := bySA[sa]
	if bySA == nil {
		mine, err = list(ctx, s, s.saPods, key, func(ctx context.Context) ([]podRecord, error) {
			return s.listPodsOf(ctx, namespace, sa)
		}, nil)
		if err != nil {
			return nil, err
		}
	}
	return selectPods(mine, sel), nil
}

// selectPods builds the pods of records that sel matches.
func selectPods(records []podRecord, sel labels.Selector) []corev1.Pod {
	var out []corev1.Pod
	for i := range records {
		if sel.Empty() || sel.Matches(labels.Set(records[i].meta.Labels)) {
			if out == nil {
				out = make([]corev1.Pod, 0, len(records)-i)
			}
			out = append(out, records[i].pod())
		}
	}
	return out
}

// forgetDirtyPods clears a namespace's dirty marks when its pods are listed
// again (called with mu held).
func (s *Snapshot) forgetDirtyPods(namespace string) func() {
	return func() {
		for k := range s.podsDirty {
			if k.Namespace == namespace {
				delete(s.podsDirty, k)
			}
		}
		for k := range s.saPods {
			if k.Namespace == namespace {
				delete(s.saPods, k)
			}
		}
	}
}

// The lists are retried while they fail transiently (429, 5xx, a dropped
// connection), as every read of the provider is.
func (s *Snapshot) listServiceAccounts(ctx context.Context, namespace string) ([]corev1.ServiceAccount, error) {
	var items []corev1.ServiceAccount
	opts := metav1.ListOptions{Limit: snapshotPageSize}
	for {
		var page *corev1.ServiceAccountList
		err := OnTransient(ctx, func() (err error) {
			page, err = s.client.CoreV1().ServiceAccounts(namespace).List(ctx, opts)
			return err
		})
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
		if opts.Continue = page.Continue; opts.Continue == "" {
			return items, nil
		}
	}
}

// listPods lists a namespace's live pods, trimmed, by ServiceAccount; nil
// (and no error) when the namespace has more than sharedPodsLimit pods:
// then nothing is kept.
func (s *Snapshot) listPods(ctx context.Context, namespace string) (podsBySA, error) {
	bySA := podsBySA{}
	var shared sharing
	seen := 0
	opts := metav1.ListOptions{Limit: snapshotPageSize}
	for {
		var page *corev1.PodList
		err := OnTransient(ctx, func() (err error) {
			page, err = s.client.CoreV1().Pods(namespace).List(ctx, opts)
			return err
		})
		if err != nil {
			return nil, err
		}
		seen += len(page.Items)
		if remaining := page.RemainingItemCount; seen > sharedPodsLimit || (remaining != nil && seen+int(*remaining) > sharedPodsLimit) {
			return nil, nil
		}
		for i := range page.Items {
			if pod := &page.Items[i]; IsLive(pod) {
				sa := pod.Spec.ServiceAccountName
				bySA[sa] = append(bySA[sa], shared.record(pod))
			}
		}
		if opts.Continue = page.Continue; opts.Continue == "" {
			return bySA, nil
		}
	}
}

// listPodsOf lists one ServiceAccount's live pods, trimmed.
func (s *Snapshot) listPodsOf(ctx context.Context, namespace, sa string) ([]podRecord, error) {
	pods, err := PodsOf(ctx, s.client, namespace, sa, "")
	if err != nil {
		return nil, err
	}
	out := make([]podRecord, 0, len(pods))
	for i := range pods {
		// The fake clientset ignores field selectors; so may a proxy.
		if pods[i].Spec.ServiceAccountName == sa {
			out = append(out, keep(&pods[i]))
		}
	}
	return out, nil
}

func notFound(name string) error {
	return apierrors.NewNotFound(corev1.Resource("serviceaccounts"), name)
}
