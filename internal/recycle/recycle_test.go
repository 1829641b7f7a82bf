package recycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// The engine's fast tier: Recycle against the fake clientset, whose
// reactors play controllers, the webhook and faults (fakecluster_test.go).

// bounded is the test's context with a deadline, so an engine that never
// finishes fails the test instead of hanging it.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// allCredentialed fails the test unless every live pod carries roleA,
// except the names in except; it fails when no pod is left to judge.
func allCredentialed(t *testing.T, c *fakeCluster, except ...string) {
	t.Helper()
	judged := 0
	for name, p := range c.livePods() {
		if slices.Contains(except, name) {
			continue
		}
		judged++
		if v := (roleCredentials{role: roleA}).Judge(p); !v.Credentialed {
			t.Errorf("pod %s: %s", name, v.Reason)
		}
	}
	if judged == 0 {
		t.Fatalf("no live pod to judge (except %v): every pod was lost", except)
	}
}

func TestRecycle_rolloutRestartsOnlyStaleWorkloads(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 3)
	c.webhookRole = roleA
	res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Events(), []string{"restart Deployment/api"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if len(res.Plan.Restart) != 1 || len(res.Retried) != 0 {
		t.Errorf("result = %+v", res)
	}
	allCredentialed(t, c)
}

var connectionReset = &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}

// Every phase survives the faults an overloaded or restarting API server
// gives: 429 without a budget behind it, 500, 503 and a reset connection.
func TestRecycle_transientFaultsInEveryPhase(t *testing.T) {
	t.Parallel()
	faults := map[string]error{
		"429":   apierrors.NewTooManyRequests("slow down", 1),
		"500":   apierrors.NewInternalError(errors.New("etcdserver: leader changed")),
		"503":   apierrors.NewServiceUnavailable("apiserver is shutting down"),
		"reset": connectionReset,
	}
	phases := []struct {
		name                        string
		strategy                    Strategy
		verb, resource, subresource string
		skip, times                 int
	}{
		{"list pods to plan", StrategyRollout, "list", "pods", "", 0, 2},
		{"read ReplicaSet owners", StrategyRollout, "get", "replicasets", "", 0, 2},
		{"read Deployment owners", StrategyRollout, "get", "deployments", "", 0, 2},
		{"restart", StrategyRollout, "patch", "deployments", "", 0, 2},
		{"rollout status", StrategyRollout, "get", "deployments", "", 1, 3},
		{"read a new ReplicaSet while waiting", StrategyRollout, "get", "replicasets", "", 1, 3},
		{"list pods while waiting", StrategyRollout, "list", "pods", "", 1, 3},
		{"gate dry run", StrategyRollout, "create", "pods", "", 0, 2},
		{"delete", StrategyDelete, "delete", "pods", "", 0, 2},
		{"evict", StrategyEvict, "create", "pods", "eviction", 0, 2},
	}
	for fault, ferr := range faults {
		for _, ph := range phases {
			t.Run(ph.name+"/"+fault, func(t *testing.T) {
				t.Parallel()
				c := newFakeCluster(t)
				c.deployment("api", 2)
				c.webhookRole = roleA
				c.fail(ph.verb, ph.resource, ph.subresource, ph.skip, ph.times, ferr)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if _, err := c.pods().Recycle(ctx, c.options(ph.strategy)); err != nil {
					t.Fatalf("Recycle: %v", err)
				}
				allCredentialed(t, c)
			})
		}
	}
}

// Pods that start while the recycle waits belong to no workload it touched:
// a bare pod and a Job's pod without credentials are never deleted or
// evicted, whatever the strategy.
func TestRecycle_podsCreatedMeanwhileAreNeverTouched(t *testing.T) {
	t.Parallel()
	for _, strategy := range []Strategy{StrategyRollout, StrategyEvict, StrategyDelete} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			c := newFakeCluster(t)
			c.deployment("api", 2)
			c.webhookRole = roleA
			c.onList(2, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.missNext = 2 // the webhook misses both: a short outage
				for _, p := range []struct{ name, kind string }{{"bare", ""}, {"batch-x", KindJob}} {
					if err := c.addPod(p.name, p.kind, "batch"); err != nil {
						t.Error(err)
					}
				}
			})
			if _, err := c.pods().Recycle(bounded(t), c.options(strategy)); err != nil {
				t.Fatal(err)
			}
			for _, ev := range c.Events() {
				if strings.HasSuffix(ev, " bare") || strings.HasSuffix(ev, " batch-x") {
					t.Errorf("touched a pod created meanwhile: %s", ev)
				}
			}
			live := c.livePods()
			if live["bare"] == nil || live["batch-x"] == nil {
				t.Errorf("pods created meanwhile are gone: %v", live)
			}
			allCredentialed(t, c, "bare", "batch-x")
		})
	}
}

// An OnDelete StatefulSet never replaces pods after a template change: the
// engine deletes them one at a time from the highest ordinal, each
// replacement up before the next goes.
func TestRecycle_onDeleteStatefulSetOneByOne(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.statefulSet("db", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
	c.webhookRole = roleA
	res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Events(), []string{"delete db-2", "delete db-1", "delete db-0"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if len(res.Plan.Restart) != 0 {
		t.Errorf("an OnDelete StatefulSet was restarted: %+v", res.Plan.Restart)
	}
	allCredentialed(t, c)
}

// A pod whose replacement is not back holds up the next: with controllers
// stuck, only the first pod goes, and the error names what is not done.
func TestRecycle_pacedReplacementStopsWhenAReplacementDoesNotComeBack(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.statefulSet("db", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})
	c.webhookRole = roleA
	c.stuck = true
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.pods().Recycle(ctx, c.options(StrategyRollout))
	var nd *NotDoneError
	if !errors.As(err, &nd) || !strings.Contains(strings.Join(nd.Pending, ";"), "StatefulSet/db: 2 of 3 pods") {
		t.Fatalf("err = %v, want not done naming StatefulSet/db", err)
	}
	if got, want := c.Events(), []string{"delete db-2"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// A partitioned StatefulSet is restarted for the ordinals its partition
// rolls, judged done against the partition; pods below it are left alone.
func TestRecycle_partitionedStatefulSet(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.statefulSet("db", 3, appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](1)}})
	c.webhookRole = roleA
	res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
	if err != nil {
		t.Fatal(err)
	}
	if got := leftAloneNames(res.Plan.LeftAlone); !slices.Equal(got, []string{"db-0"}) {
		t.Errorf("left alone = %v, want [db-0]", got)
	}
	if got, want := c.Events(), []string{"restart StatefulSet/db"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	allCredentialed(t, c, "db-0")
}

// A Deployment past its progress deadline fails the wait at once, naming
// it, instead of running into the timeout.
func TestRecycle_progressDeadlineFailsAtOnce(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 2, func(d *appsv1.Deployment) {
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "api-2" has timed out progressing.`}}
	})
	c.webhookRole = roleA
	c.stuck = true
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := c.pods().Recycle(ctx, c.options(StrategyRollout))
	var failed *RolloutFailedError
	if !errors.As(err, &failed) || failed.Workload != (Workload{KindDeployment, "api"}) {
		t.Fatalf("err = %v, want the rollout of Deployment/api failed", err)
	}
	if ctx.Err() != nil {
		t.Error("the wait ran into the timeout instead of failing on the condition")
	}
}

// The boundary between old and new pods is the API server's: a server
// clock hours ahead of ours changes nothing.
func TestRecycle_serverClockAheadOfOurs(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.now = time.Now().Add(5 * time.Hour)
	c.deployment("api", 2)
	c.webhookRole = roleA
	c.missNext = 1 // one replacement races the webhook's cache
	res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Retried) != 1 {
		t.Errorf("retried = %v, want the one replacement the webhook missed", res.Retried)
	}
	allCredentialed(t, c)
}

// A replacement the webhook missed goes through the strategy again: under
// evict it is evicted, never deleted past its budget.
func TestRecycle_missedReplacementReentersTheStrategy(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 1)
	c.webhookRole = roleA
	c.missNext = 1
	res, err := c.pods().Recycle(bounded(t), c.options(StrategyEvict))
	if err != nil {
		t.Fatal(err)
	}
	events := c.Events()
	if len(events) != 2 || !strings.HasPrefix(events[0], "evict ") || !strings.HasPrefix(events[1], "evict ") {
		t.Errorf("events = %v, want two evictions", events)
	}
	if len(res.Retried) != 1 {
		t.Errorf("retried = %v", res.Retried)
	}
	allCredentialed(t, c)
}

// An eviction a budget blocks forever is retried until the timeout (not
// for a fixed number of tries), then ends with the budget named, and
// nothing deleted.
func TestRecycle_evictionBlockedForever(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 2)
	c.webhookRole = roleA
	c.evictionBlocked = true
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Second)
	defer cancel()
	_, err := c.pods().Recycle(ctx, c.options(StrategyEvict))
	if !errors.Is(err, ErrEvictionBlocked) {
		t.Fatalf("err = %v, want eviction blocked", err)
	}
	if ctx.Err() == nil {
		t.Error("gave up on the eviction before the timeout")
	}
	if len(c.livePods()) != 2 || len(c.Events()) != 0 {
		t.Errorf("pods = %d, events = %v: nothing may go", len(c.livePods()), c.Events())
	}
}

// An eviction refused with 409 because the pod was replaced meanwhile (its
// UID precondition) counts as done. The provider finds that out with the
// list it needs anyway, never a get on pods, which no mode grants.
func TestRecycle_evictionConflictOnAReplacedPod(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 1)
	c.webhookRole = roleA
	conflicted := false
	c.client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		create, ok := a.(k8stesting.CreateActionImpl)
		if !ok || a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev, ok := create.GetObject().(*policyv1.Eviction)
		if !ok {
			return true, nil, fmt.Errorf("eviction of %T", create.GetObject())
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if conflicted {
			return false, nil, nil
		}
		conflicted = true
		name := ev.Name
		if err := c.remove(name); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, name, errors.New("Precondition failed: UID in precondition"))
	})
	if _, err := c.pods().Recycle(bounded(t), c.options(StrategyEvict)); err != nil {
		t.Fatal(err)
	}
	if !conflicted {
		t.Fatal("no eviction was refused: the test tests nothing")
	}
	allCredentialed(t, c)
	for _, a := range c.client.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "pods" {
			t.Errorf("the engine got a pod (%v): the evict mode grants list on pods, not get", a)
		}
	}
}

// A cancel in the middle (Ctrl-C) stops at once: the first restart went
// out, the second never does.
func TestRecycle_cancelMidRestart(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 1)
	c.deployment("worker", 1)
	c.webhookRole = roleA
	ctx, cancel := context.WithCancel(t.Context())
	c.client.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return false, nil, nil
	})
	_, err := c.pods().Recycle(ctx, c.options(StrategyRollout))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	if got := c.Events(); len(got) != 1 {
		t.Errorf("events = %v, want one restart", got)
	}
}

// The gate stops a recycle before it touches anything when the webhook
// would not credential new pods, and says why.
func TestRecycle_gate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*fakeCluster)
		cause GateCause // "" passes
	}{
		{"no webhook registered", func(c *fakeCluster) {}, GateNotRegistered},
		{"registered but down", func(c *fakeCluster) { c.registerWebhook(nil) }, GateNotMutated},
		{"registered, namespace left out", func(c *fakeCluster) {
			c.registerWebhook(&metav1.LabelSelector{MatchLabels: map[string]string{"irsa": "enabled"}})
		}, GateExcluded},
		{"cache stuck on the old role", func(c *fakeCluster) {
			c.webhookRole, c.staleRole, c.probesUntilCaughtUp = roleA, roleB, 1000
		}, GateStaleCache},
		{"cache catches up", func(c *fakeCluster) {
			c.webhookRole, c.staleRole, c.probesUntilCaughtUp = roleA, roleB, 3
		}, ""},
		{"another mechanism takes precedence", func(c *fakeCluster) { c.webhookOther = true }, GateSuperseded},
		{"webhook unreachable", func(c *fakeCluster) {
			c.fail("create", "pods", "", 0, 1000, apierrors.NewInternalError(errors.New(`failed calling webhook "iam-for-pods.amazonaws.com": connection refused`)))
		}, GateUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeCluster(t)
			c.deployment("api", 2)
			tt.setup(c)
			_, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
			var gate *GateError
			switch {
			case tt.cause == "" && err != nil:
				t.Fatalf("err = %v, want the gate to pass", err)
			case tt.cause != "" && (!errors.As(err, &gate) || gate.Cause != tt.cause):
				t.Fatalf("err = %v, want gate %q", err, tt.cause)
			case tt.cause != "" && len(c.Events()) != 0:
				t.Errorf("the gate failed but the recycle acted: %v", c.Events())
			}
		})
	}
	t.Run("a refused dry run skips the gate and says so", func(t *testing.T) {
		t.Parallel()
		c := newFakeCluster(t)
		c.deployment("api", 1)
		c.webhookRole = roleA
		c.fail("create", "pods", "", 0, 1, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "ci" cannot create resource "pods"`)))
		res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
		if err != nil || res.GateSkipped == nil || !strings.Contains(res.GateSkipped.Error(), "cannot create") {
			t.Fatalf("err = %v, skipped = %v", err, res.GateSkipped)
		}
		allCredentialed(t, c)
	})
}

// Pods that wait behind unrelated pods: a not-Ready pod of another workload
// of the ServiceAccount never holds the recycle up.
func TestRecycle_unrelatedPodsNeverBlock(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 1)
	c.webhookRole = roleA
	c.mu.Lock()
	if err := c.addPod("other-1-x", KindReplicaSet, "other-1"); err != nil {
		t.Fatal(err)
	}
	c.mu.Unlock()
	obj, err := c.client.Tracker().Get(podsGVR, testNS, "other-1-x")
	if err != nil {
		t.Fatal(err)
	}
	notReady, ok := obj.(*corev1.Pod)
	if !ok {
		t.Fatalf("tracker returned %T", obj)
	}
	notReady.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	if err := c.client.Tracker().Update(podsGVR, notReady, testNS); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.pods().Recycle(ctx, c.options(StrategyRollout)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Pods(testNS).Get(ctx, "other-1-x", metav1.GetOptions{}); err != nil {
		t.Errorf("the unrelated pod: %v", err)
	}
}

// A rollout already under way (an apply interrupted mid-recycle, or
// someone else's) replaces the pods of older revisions by itself: the
// recycle waits for it rather than starting another or deleting pods under
// it. A stale pod of the revision being rolled out is not replaced by it:
// then the workload is restarted.
func TestRecycle_rolloutAlreadyUnderWay(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		rsRevision string
		await      bool
		// polling: watches refused, the wait reads every round.
		polling bool
	}{
		{"stale pods all of an older revision: wait for it", "1", true, false},
		{"stale pods all of an older revision: wait for it, polling", "1", true, true},
		{"stale pods of the revision being rolled out: restart", "2", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeCluster(t)
			c.refuseWatch = tt.polling
			c.deployment("api", 2, func(d *appsv1.Deployment) {
				d.Status.UpdatedReplicas = 1
				d.Annotations = map[string]string{revisionAnnotation: "2"}
			})
			rsGVR := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
			obj, err := c.client.Tracker().Get(rsGVR, testNS, "api-1")
			if err != nil {
				t.Fatal(err)
			}
			rs, ok := obj.(*appsv1.ReplicaSet)
			if !ok {
				t.Fatalf("tracker returned %T", obj)
			}
			rs.Annotations = map[string]string{revisionAnnotation: tt.rsRevision}
			if err := c.client.Tracker().Update(rsGVR, rs, testNS); err != nil {
				t.Fatal(err)
			}
			c.webhookRole = roleA
			if tt.await {
				// While the engine waits (its second look at the pods
				// when it polls; once it watches the Deployment
				// otherwise), the Deployment controller finishes the
				// rollout.
				finish := func() {
					c.mu.Lock()
					defer c.mu.Unlock()
					for _, name := range []string{"api-1-a", "api-1-b"} {
						if err := c.remove(name); err != nil {
							t.Error(err)
						}
					}
					gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
					obj, err := c.client.Tracker().Get(gvr, testNS, "api")
					if err != nil {
						t.Error(err)
						return
					}
					d, ok := obj.(*appsv1.Deployment)
					if !ok {
						t.Errorf("tracker returned %T", obj)
						return
					}
					d.Status.UpdatedReplicas = 2
					if err := c.client.Tracker().Update(gvr, d, testNS); err != nil {
						t.Error(err)
					}
				}
				if tt.polling {
					c.onList(3, finish)
				} else {
					c.onWatch("deployments", finish)
				}
			}
			res, err := c.pods().Recycle(bounded(t), c.options(StrategyRollout))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Plan.Restart) != 1 || res.Plan.Restart[0].InProgress != tt.await {
				t.Errorf("plan = %+v, want in progress %v", res.Plan.Restart, tt.await)
			}
			restarted := slices.Contains(c.Events(), "restart Deployment/api")
			if restarted == tt.await {
				t.Errorf("events = %v, want a restart: %v", c.Events(), !tt.await)
			}
			allCredentialed(t, c)
		})
	}
}

// The API server goes away once the rollout has started: the wait keeps
// trying until its deadline, and the error says it lost the API server
// rather than that the pods were not done.
func TestRecycle_apiServerGoneDuringTheWait(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 2)
	c.webhookRole = roleA
	refused := fmt.Errorf("dial tcp 127.0.0.1:6443: connect: %w", syscall.ECONNREFUSED)
	c.client.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		// From the restart on, nothing answers.
		c.fail("get", "deployments", "", 0, 1<<30, refused)
		c.fail("list", "pods", "", 0, 1<<30, refused)
		return false, nil, nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.pods().Recycle(ctx, c.options(StrategyRollout))
	var nd *NotDoneError
	if !errors.As(err, &nd) || !errors.Is(nd.Unreachable, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want not done with the API server unreachable", err)
	}
	if got, want := c.Events(), []string{"restart Deployment/api"}; !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// Two restarts within one second change the template twice: each rolls
// the workload.
func TestRestart_twiceWithinASecond(t *testing.T) {
	t.Parallel()
	c := newFakeCluster(t)
	c.deployment("api", 1)
	c.client.ClearActions()
	at := time.Date(2026, 3, 1, 12, 0, 0, 100, time.UTC)
	for _, now := range []time.Time{at, at.Add(300 * time.Millisecond)} {
		if err := c.pods().restart(t.Context(), testNS, Workload{KindDeployment, "api"}, now); err != nil {
			t.Fatal(err)
		}
	}
	var patches []string
	for _, a := range c.client.Actions() {
		if p, ok := a.(k8stesting.PatchActionImpl); ok {
			patches = append(patches, string(p.GetPatch()))
		}
	}
	if len(patches) != 2 || patches[0] == patches[1] {
		t.Errorf("patches %q: want two that differ", patches)
	}
}
