package kube

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// transientBackoff paces retries of calls that failed for a reason that
// passes: the API server overloaded (429, 5xx) or the connection dropped.
// Six tries over about eight seconds.
var transientBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 6}

// IsTransient reports an error worth retrying as it is.
func IsTransient(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err) || utilnet.IsProbableEOF(err)
}

// OnTransient runs fn, retrying it while it fails transiently and ctx lasts.
// A context that ended stops it before the next call.
func OnTransient(ctx context.Context, fn func() error) error {
	return retry.OnError(transientBackoff, func(err error) bool { return ctx.Err() == nil && IsTransient(err) }, func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn()
	})
}
