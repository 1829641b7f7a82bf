package rpcscope

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// keeper stands for the framework: it keeps every RPC's context, derived
// as registerContext derives it, for the life of the process.
type keeper struct {
	tfprotov6.ProviderServer
	kept []context.CancelFunc
	seen []bool
}

func (k *keeper) ReadResource(ctx context.Context, _ *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	k.kept = append(k.kept, cancel)
	k.seen = append(k.seen, ctx.Value(payloadKey{}) != nil)
	return &tfprotov6.ReadResourceResponse{}, nil
}

type payloadKey struct{}

// heldAfter is how much of the heap n RPCs leave behind, each with a
// context carrying 64 KiB, through s.
func heldAfter(t *testing.T, n int, s tfprotov6.ProviderServer) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), payloadKey{}, make([]byte, 64<<10)))
		if _, err := s.ReadResource(ctx, &tfprotov6.ReadResourceRequest{}); err != nil {
			t.Fatal(err)
		}
		cancel() // gRPC cancels the stream's context when the RPC ends
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
}

func TestServer_rpcContextsDoNotOutliveTheRPC(t *testing.T) {
	const n = 200 // 12.5 MiB of payloads
	bare := &keeper{}
	kept := heldAfter(t, n, bare)
	wrapped := &keeper{}
	released := heldAfter(t, n, Server(wrapped))
	t.Logf("held after %d RPCs: %d KiB unwrapped, %d KiB wrapped", n, kept>>10, released>>10)
	if kept < n*64<<10 {
		t.Fatalf("the unwrapped keeper holds only %d KiB: the test does not show the retention it is about", kept>>10)
	}
	if released > kept/10 {
		t.Errorf("wrapped, %d KiB are held after the RPCs", released>>10)
	}
	for i, ok := range wrapped.seen {
		if !ok {
			t.Fatalf("RPC %d did not see its context's values while it ran", i)
		}
	}
	runtime.KeepAlive(bare)
	runtime.KeepAlive(wrapped)
}

// During the RPC the context is the RPC's: values, cancellation, error.
// After it, it holds nothing and is done with the RPC.
func TestReleasable(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), payloadKey{}, "v"))
	c := newReleasable(parent)
	child, stop := context.WithCancel(c)
	defer stop()
	if c.Value(payloadKey{}) != "v" || c.Err() != nil {
		t.Fatalf("during the RPC: value %v, err %v", c.Value(payloadKey{}), c.Err())
	}
	c.release()
	if c.Value(payloadKey{}) != nil {
		t.Error("a released context still reaches the RPC's values")
	}
	if c.Err() != nil {
		t.Errorf("released before the RPC ended: err %v, want nil until Done closes", c.Err())
	}
	cancel()
	<-child.Done() // a derived context ends with the RPC
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("after the RPC ended: err %v", c.Err())
	}
}
