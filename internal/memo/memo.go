// Package memo holds answers fetched once for every caller of a run: a plan
// of 500 bindings asks IAM for a role, and EKS for its cluster and its
// associations, once, however many bindings ask, and at the same time.
package memo

import (
	"context"
	"sync"
)

// Value is one answer. The first caller fetches it while later ones wait,
// each as long as its own context lets it. An answer keep calls definitive
// is kept for every later caller; another (throttling, a failure that may
// pass) goes to the callers that waited for it and is asked again by the
// next. A fetch cut short by its caller's context answers nobody else:
// the callers that waited ask again themselves. The zero Value is empty.
type Value[T any] struct {
	mu   sync.Mutex
	call *call[T]
}

type call[T any] struct {
	done     chan struct{}
	val      T
	err      error
	canceled bool // the fetching caller's context ended first
}

// Get returns the kept answer, waits for the one being fetched, or fetches
// it with ctx.
func (v *Value[T]) Get(ctx context.Context, keep func(error) bool, fetch func(context.Context) (T, error)) (T, error) {
	for {
		v.mu.Lock()
		c := v.call
		if c == nil {
			c = &call[T]{done: make(chan struct{})}
			v.call = c
			v.mu.Unlock()
			c.val, c.err = fetch(ctx)
			c.canceled = c.err != nil && ctx.Err() != nil
			if c.canceled || !keep(c.err) {
				v.mu.Lock()
				v.call = nil
				v.mu.Unlock()
			}
			close(c.done)
			return c.val, c.err
		}
		v.mu.Unlock()
		select {
		case <-c.done:
			if !c.canceled {
				return c.val, c.err
			}
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// Map is a Value per key.
type Map[K comparable, T any] struct {
	mu     sync.Mutex
	values map[K]*Value[T]
}

// Get is Value.Get for key's value.
func (m *Map[K, T]) Get(ctx context.Context, key K, keep func(error) bool, fetch func(context.Context) (T, error)) (T, error) {
	m.mu.Lock()
	if m.values == nil {
		m.values = map[K]*Value[T]{}
	}
	v, ok := m.values[key]
	if !ok {
		v = &Value[T]{}
		m.values[key] = v
	}
	m.mu.Unlock()
	return v.Get(ctx, keep, fetch)
}

// Always keeps every answer, failures too.
func Always(error) bool { return true }

// Successes keeps only answers without an error.
func Successes(err error) bool { return err == nil }
