package awseks

import (
	"context"
	"sync/atomic"

	"github.com/aws/smithy-go/middleware"
)

// countCalls counts every attempt the client sends, retries included: what
// EKS sees, as its request quotas count.
func countCalls(n *atomic.Int64) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("irsaCountCalls",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}
