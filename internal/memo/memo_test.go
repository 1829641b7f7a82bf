package memo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Callers at the same time share one fetch, and later ones the kept answer.
func TestValue_oneFetchForEveryCaller(t *testing.T) {
	t.Parallel()
	var v Value[int]
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (int, error) {
		fetches.Add(1)
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	got := make([]int, 20)
	for i := range got {
		wg.Go(func() {
			n, err := v.Get(t.Context(), Successes, fetch)
			if err != nil {
				t.Error(err)
			}
			got[i] = n
		})
	}
	time.Sleep(50 * time.Millisecond) // every caller is waiting
	close(release)
	wg.Wait()
	if n, _ := v.Get(t.Context(), Successes, fetch); n != 42 {
		t.Errorf("a later caller got %d", n)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 21 callers, want 1", n)
	}
	for i, n := range got {
		if n != 42 {
			t.Errorf("caller %d got %d", i, n)
		}
	}
}

// An answer keep does not keep reaches the callers that waited for it, and
// the next caller asks again.
func TestValue_failureNotKeptIsAskedAgain(t *testing.T) {
	t.Parallel()
	var v Value[string]
	throttled := errors.New("throttled")
	calls := 0
	fetch := func(context.Context) (string, error) {
		calls++
		if calls == 1 {
			return "", throttled
		}
		return "ok", nil
	}
	if _, err := v.Get(t.Context(), Successes, fetch); !errors.Is(err, throttled) {
		t.Fatalf("first: %v", err)
	}
	if s, err := v.Get(t.Context(), Successes, fetch); err != nil || s != "ok" {
		t.Fatalf("second: %q, %v", s, err)
	}
	if _, err := v.Get(t.Context(), Successes, fetch); err != nil || calls != 2 {
		t.Errorf("third: %v after %d fetches, want the kept answer after 2", err, calls)
	}
}

// A definitive failure is kept.
func TestValue_keptFailureIsNotAskedAgain(t *testing.T) {
	t.Parallel()
	var v Value[int]
	gone := errors.New("no such role")
	calls := 0
	fetch := func(context.Context) (int, error) { calls++; return 0, gone }
	for range 3 {
		if _, err := v.Get(t.Context(), Always, fetch); !errors.Is(err, gone) {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("%d fetches, want 1", calls)
	}
}

// The fetching caller's cancel fails only that caller: one waiting asks
// again itself, and gets the answer. Cancellation is never kept, whatever
// keep says.
func TestValue_fetchersCancelFailsOnlyIt(t *testing.T) {
	t.Parallel()
	var v Value[int]
	first, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context) (int, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return 7, nil
	}
	done := make(chan error)
	go func() {
		_, err := v.Get(first, Always, fetch)
		done <- err
	}()
	<-started
	waiter := make(chan int)
	go func() {
		n, err := v.Get(t.Context(), Always, fetch)
		if err != nil {
			t.Error(err)
		}
		waiter <- n
	}()
	time.Sleep(20 * time.Millisecond) // the second caller waits on the first's fetch
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the canceled caller got %v", err)
	}
	if n := <-waiter; n != 7 {
		t.Errorf("the waiting caller got %d, want its own fetch's 7", n)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

// A waiting caller whose own context ends stops waiting; the fetch goes on
// for the others.
func TestValue_waiterStopsWithItsContext(t *testing.T) {
	t.Parallel()
	var v Value[int]
	release := make(chan struct{})
	go func() {
		_, _ = v.Get(t.Context(), Always, func(context.Context) (int, error) { <-release; return 1, nil })
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := v.Get(ctx, Always, func(context.Context) (int, error) { return 2, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the waiter got %v", err)
	}
	close(release)
	if n, err := v.Get(t.Context(), Always, func(context.Context) (int, error) { return 3, nil }); n != 1 || err != nil {
		t.Errorf("after the fetch: %d, %v; want the kept 1", n, err)
	}
}

// Keys are apart.
func TestMap_perKey(t *testing.T) {
	t.Parallel()
	var m Map[string, string]
	calls := 0
	fetch := func(key string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { calls++; return "role " + key, nil }
	}
	for range 2 {
		for _, k := range []string{"a", "b"} {
			if got, _ := m.Get(t.Context(), k, Successes, fetch(k)); got != "role "+k {
				t.Errorf("%s: %q", k, got)
			}
		}
	}
	if calls != 2 {
		t.Errorf("%d fetches for 2 keys, want 2", calls)
	}
}
