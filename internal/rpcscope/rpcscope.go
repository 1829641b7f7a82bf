// Package rpcscope keeps what an RPC's context holds from outliving the
// RPC.
//
// terraform-plugin-framework keeps the cancel function of every RPC's
// context until the provider is stopped (proto6server.Server.registerContext
// appends each to a slice that only StopProvider empties), and with it the
// whole context: terraform-plugin-go's and the framework's loggers, the gRPC
// stream. That is about 13 KB an RPC, which a plan of 500 bindings (1,500
// RPCs) holds to the end: half the plugin's live heap, and garbage
// collector work on every cycle. Server hands the framework, for the RPCs
// Terraform sends per resource, a context that reaches the RPC's only until
// the RPC returns.
package rpcscope

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// Server wraps s: its per-resource, per-data-source and per-function RPCs
// run under a context released when they return. The others (schemas,
// configuration, stop) run once or twice a process and pass through.
func Server(s tfprotov6.ProviderServer) tfprotov6.ProviderServer { return server{s} }

type server struct{ tfprotov6.ProviderServer }

// scoped runs call with a context that is the RPC's until call returns.
func scoped[Req, Resp any](ctx context.Context, req Req, call func(context.Context, Req) (Resp, error)) (Resp, error) {
	c := newReleasable(ctx)
	defer c.release()
	return call(c, req)
}

func (s server) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ValidateResourceConfig)
}

func (s server) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	return scoped(ctx, req, s.ProviderServer.UpgradeResourceState)
}

func (s server) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ReadResource)
}

func (s server) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	return scoped(ctx, req, s.ProviderServer.PlanResourceChange)
}

func (s server) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ApplyResourceChange)
}

func (s server) ImportResourceState(ctx context.Context, req *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ImportResourceState)
}

func (s server) ValidateDataResourceConfig(ctx context.Context, req *tfprotov6.ValidateDataResourceConfigRequest) (*tfprotov6.ValidateDataResourceConfigResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ValidateDataResourceConfig)
}

func (s server) ReadDataSource(ctx context.Context, req *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	return scoped(ctx, req, s.ProviderServer.ReadDataSource)
}

func (s server) CallFunction(ctx context.Context, req *tfprotov6.CallFunctionRequest) (*tfprotov6.CallFunctionResponse, error) {
	return scoped(ctx, req, s.ProviderServer.CallFunction)
}

// releasable is the RPC's context until release: its values, deadline and
// error. After release it holds no values and no deadline. Done stays the
// RPC's channel, which gRPC closes once the RPC has ended, so a context
// derived from this one is canceled with the RPC as before, and Err agrees
// with Done.
type releasable struct {
	mu   sync.RWMutex
	ctx  context.Context // nil once released
	done <-chan struct{}
}

func newReleasable(ctx context.Context) *releasable { return &releasable{ctx: ctx, done: ctx.Done()} }

func (c *releasable) release() {
	c.mu.Lock()
	c.ctx = nil
	c.mu.Unlock()
}

func (c *releasable) parent() context.Context {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ctx
}

func (c *releasable) Deadline() (time.Time, bool) {
	if p := c.parent(); p != nil {
		return p.Deadline()
	}
	return time.Time{}, false
}

func (c *releasable) Done() <-chan struct{} { return c.done }

func (c *releasable) Err() error {
	if p := c.parent(); p != nil {
		return p.Err()
	}
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func (c *releasable) Value(key any) any {
	if p := c.parent(); p != nil {
		return p.Value(key)
	}
	return nil
}
