package podidentity

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ServiceAccountCache keeps the resolved Entry of every ServiceAccount, fed by
// an informer like upstream's cache. That is what makes the webhook race real:
// a pod created right after its ServiceAccount was annotated can be admitted
// before the informer has seen the annotation.
//
// The delay knob widens that window on purpose. With a delay, informer events
// are applied to the cache only after the delay has passed, so tests can
// reproduce the race deterministically instead of hoping to hit it. A delay
// can be set for one namespace, so that tests running in parallel against
// the same environment do not slow each other down.
type ServiceAccountCache struct {
	cfg Config

	mu      sync.RWMutex
	entries map[string]Entry
	waiters map[string][]chan struct{}
	delay   time.Duration            // for every namespace
	delays  map[string]time.Duration // per namespace, over delay
	synced  cache.InformerSynced
}

// NewServiceAccountCache starts an informer on all ServiceAccounts.
func NewServiceAccountCache(ctx context.Context, client kubernetes.Interface, cfg Config) (*ServiceAccountCache, error) {
	c := &ServiceAccountCache{
		cfg:     cfg,
		entries: map[string]Entry{},
		waiters: map[string][]chan struct{}{},
		delays:  map[string]time.Duration{},
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Core().V1().ServiceAccounts().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(obj, false) },
		UpdateFunc: func(_, obj any) { c.observe(obj, false) },
		DeleteFunc: func(obj any) { c.observe(obj, true) },
	}); err != nil {
		return nil, err
	}
	c.synced = informer.HasSynced
	factory.Start(ctx.Done())
	return c, nil
}

// HasSynced reports whether the initial list has been applied.
func (c *ServiceAccountCache) HasSynced() bool { return c.synced() }

// SetDelay changes how long informer events of namespace (all namespaces
// when empty) wait before they reach the cache.
func (c *ServiceAccountCache) SetDelay(namespace string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case namespace == "":
		c.delay = d
	case d == 0:
		delete(c.delays, namespace)
	default:
		c.delays[namespace] = d
	}
}

// Delay reports the delay in effect for namespace.
func (c *ServiceAccountCache) Delay(namespace string) time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if d, ok := c.delays[namespace]; ok {
		return d
	}
	return c.delay
}

func (c *ServiceAccountCache) observe(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return
	}
	key := sa.Namespace + "/" + sa.Name
	entry := EntryFor(sa, c.cfg)
	apply := func() { c.set(key, entry, deleted) }
	if d := c.Delay(sa.Namespace); d > 0 {
		time.AfterFunc(d, apply)
		return
	}
	apply()
}

func (c *ServiceAccountCache) set(key string, e Entry, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		delete(c.entries, key)
		return
	}
	c.entries[key] = e
	for _, ch := range c.waiters[key] {
		close(ch)
	}
	delete(c.waiters, key)
}

// Get returns the Entry for namespace/name. When the ServiceAccount is not in
// the cache it waits up to grace for it to arrive, as upstream does with
// --service-account-lookup-grace-period; it never reads the API server, so a
// ServiceAccount the informer has not delivered yet is "not found".
func (c *ServiceAccountCache) Get(ctx context.Context, namespace, name string, grace time.Duration) (Entry, bool) {
	key := namespace + "/" + name
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok || grace <= 0 {
		c.mu.Unlock()
		return e, ok
	}
	ch := make(chan struct{})
	c.waiters[key] = append(c.waiters[key], ch)
	c.mu.Unlock()

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	case <-ctx.Done():
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok = c.entries[key]
	return e, ok
}
