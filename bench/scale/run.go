package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

// run brings the environment up, builds the fixture, measures the chosen
// scenarios and writes the report; the environment comes down at the end,
// also when something failed.
func run(ctx context.Context, o options) (err error) {
	began := time.Now()
	root, err := testenv.FindRoot()
	if err != nil {
		return err
	}
	l := newLayout(o.scale)
	b, err := up(ctx, o, root)
	defer func() {
		// The environment goes even when ctx was canceled (interrupt).
		err = errors.Join(err, b.down(o.keep))
	}()
	if err != nil {
		return err
	}

	step := func(what string) { fmt.Fprintf(os.Stderr, "[%6.0fs] %s\n", time.Since(began).Seconds(), what) }
	wantPods := (l.total() + l.namespaces) * l.replicas
	var bare []sa
	if o.has("apply") {
		bare = l.allBare(o.runs)
	}
	if o.has("podidentity") {
		bare = slices.Concat(bare, l.podIdentity())
	}
	step(fmt.Sprintf("fixture: %d namespaces, %d ServiceAccounts with %d-replica Deployments (%d pods), %d bare ServiceAccounts",
		l.namespaces, l.total()+l.namespaces, l.replicas, wantPods, len(bare)))
	if err := b.createFixture(ctx, l, bare); err != nil {
		return err
	}
	if err := b.settle(ctx, wantPods); err != nil {
		return err
	}
	if o.has("plan") {
		step("setup: the plan states, applied once")
		if err := b.setupPlans(ctx, l); err != nil {
			return err
		}
	}
	if o.has("recycle") {
		step("setup: the recycle states, then the recycled Deployments")
		if err := b.setupRecycle(ctx, l); err != nil {
			return err
		}
		if err := b.createDeployments(ctx, slices.Concat(l.oneEach("rc"), l.oneEach("ri")), l.replicas); err != nil {
			return err
		}
		wantPods += 2 * l.recycle * l.replicas
		if err := b.settle(ctx, wantPods); err != nil {
			return err
		}
	}
	if o.has("podidentity") {
		step("setup: the pod_identity state, then its Deployments")
		if err := b.setupPodIdentity(ctx, l, o.has("plan")); err != nil {
			return err
		}
		wantPods += l.total() * l.replicas
		if err := b.settle(ctx, wantPods); err != nil {
			return err
		}
	}
	step(fmt.Sprintf("idle interval of %s", o.idle))
	if b.idle, err = measureIdle(ctx, b.client, o.idle); err != nil {
		return err
	}

	res := &results{}
	if err := b.scenarios(ctx, o, l, res, wantPods, step); err != nil {
		// Forty minutes of measurements are not thrown away for a failure
		// (or an interrupt) in the last one: what was measured is written,
		// marked incomplete, and the README is left alone.
		if res.measured() {
			o.readme = ""
			res.incomplete = err.Error()
			err = errors.Join(err, b.report(o, b.describe(context.WithoutCancel(ctx), o, l, wantPods, time.Since(began)), res))
		}
		return err
	}
	step("report")
	return b.report(o, b.describe(ctx, o, l, wantPods, time.Since(began)), res)
}

// scenarios measures the scenarios o selects into res.
func (b *bench) scenarios(ctx context.Context, o options, l layout, res *results, wantPods int, step func(string)) error {
	if o.has("plan") {
		step("plans")
		if err := b.plans(ctx, l, res); err != nil {
			return err
		}
	}
	if o.has("apply") {
		step("apply, create")
		if err := b.applyCreate(ctx, l, res); err != nil {
			return err
		}
	}
	if o.has("recycle") {
		step("role change and recycle")
		if err := b.recycles(ctx, l, res, wantPods); err != nil {
			return err
		}
	}
	if o.has("podidentity") {
		step("plans of pod_identity bindings")
		if err := b.podIdentityPlans(ctx, l, res); err != nil {
			return err
		}
	}
	return nil
}
