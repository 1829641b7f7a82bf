package awsiam

import (
	"context"
	"fmt"
	"time"
)

// DefaultNotFoundWindow is how long a NoSuchEntity is asked again before it
// is believed. IAM is eventually consistent: a role or OIDC provider created
// a moment ago in the same apply can be reported missing for a few seconds.
const DefaultNotFoundWindow = 10 * time.Second

// retryNotFound calls call until it answers something else than
// NoSuchEntity or the window is over, doubling the pause from a twentieth
// of the window. A context that ends first is not a definitive answer: the
// error then wraps the context's, not NoSuchEntity.
func retryNotFound[T any](ctx context.Context, window time.Duration, call func() (T, error)) (T, error) {
	v, err := call()
	if window <= 0 {
		return v, err
	}
	deadline := time.Now().Add(window)
	pause := window / 20
	for IsNotFound(err) && time.Now().Add(pause).Before(deadline) {
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			var zero T
			return zero, fmt.Errorf("%w while waiting to ask IAM again (last answer: %s)", ctx.Err(), err.Error())
		case <-timer.C:
		}
		pause *= 2
		v, err = call()
	}
	return v, err
}
