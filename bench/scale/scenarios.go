package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Tools, as the report names them.
const (
	toolOurs            = "irsa"
	toolOursPodIdentity = "irsa, mechanism pod_identity"
	toolAnnotations     = "kubernetes_annotations"
	toolKubectlSeq      = "kubectl, sequential"
	toolAlone           = "Terraform alone"
	toolNoop            = "time_static (no-op provider)"
	toolFloor           = "irsa's schema, no-op"
)

// planTools are the tools of the plans, in the order they alternate.
var planTools = []tool{oursTool, peerTool, noopTool, floorTool, aloneTool}

// shapes are the configuration shapes the plans run in.
var shapes = []shape{blockEach, forEach}

// cell is one scenario measured for one tool.
type cell struct {
	scenario string
	tool     string
	bindings int // what "per binding" divides by
	samples  []sample
}

// comparison puts ours next to a peer in the summary, and next to the
// no-op provider and our schema's floor where there are (the plans).
type comparison struct{ ours, peer, noop, floor *cell }

// results are everything measured.
type results struct {
	cells       []*cell
	comparisons []comparison
	incomplete  string // why the run stopped early; empty when it did not
}

// measured reports whether any command was measured.
func (r *results) measured() bool {
	return slices.ContainsFunc(r.cells, func(c *cell) bool { return len(c.samples) > 0 })
}

func (r *results) add(scenario, tool string, bindings int) *cell {
	c := &cell{scenario: scenario, tool: tool, bindings: bindings}
	r.cells = append(r.cells, c)
	return c
}

func (r *results) compare(ours, peer *cell) {
	r.comparisons = append(r.comparisons, comparison{ours: ours, peer: peer})
}

func (r *results) compareWithFloor(ours, peer, noop, floor *cell) {
	r.comparisons = append(r.comparisons, comparison{ours: ours, peer: peer, noop: noop, floor: floor})
}

var (
	applyArgs = []string{"apply", "-auto-approve", "-input=false", "-no-color"}
	planArgs  = []string{"plan", "-input=false", "-no-color", "-detailed-exitcode"}
)

func (b *bench) withParallelism(args []string) []string {
	return append(slices.Clone(args), "-parallelism="+strconv.Itoa(b.parallelism))
}

func (b *bench) dir(name string) string { return filepath.Join(b.work, name) }

// planDir is the working directory of t's plan state of n bindings in shape s.
func (b *bench) planDir(t tool, s shape, n int) string {
	name := fmt.Sprintf("%s-plan-%d", t.prefix, n)
	if s == blockEach {
		name += "-blocks"
	}
	return b.dir(name)
}

// setupPlans writes and applies, unmeasured, one state per plan size, shape
// and tool (the no-op provider and Terraform alone included), over the app
// ServiceAccounts (already annotated with roleA, their pods credentialed: the
// apply changes nothing in the cluster).
func (b *bench) setupPlans(ctx context.Context, l layout) error {
	for _, n := range l.planSizes {
		for _, s := range shapes {
			for _, t := range planTools {
				dir := b.planDir(t, s, n)
				if err := writeConfig(dir, t, s, bindingsOf(l.apps(n), roleA)); err != nil {
					return err
				}
				if err := b.run(ctx, b.terraform(fmt.Sprintf("setup %s plan %d %s", t.prefix, n, s), dir, b.withParallelism(applyArgs)...)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// planModes are the two plans measured of every state.
var planModes = []struct {
	name string
	args []string
}{
	{"plan -refresh-only", append(slices.Clone(planArgs), "-refresh-only")},
	{"plan", planArgs},
}

// planTarget is a state a plan is measured in, and by which tool.
type planTarget struct {
	tool tool
	dir  string
}

// plans measures `plan -refresh-only` and `plan` of each size in each
// shape, alternating ours, the peer, the no-op provider and Terraform alone.
func (b *bench) plans(ctx context.Context, l layout, res *results) error {
	for _, n := range l.planSizes {
		for _, s := range shapes {
			targets := make([]planTarget, len(planTools))
			for i, t := range planTools {
				targets[i] = planTarget{t, b.planDir(t, s, n)}
			}
			if err := b.alternatePlans(ctx, res, fmt.Sprintf("%d bindings, %s", n, s), n, targets); err != nil {
				return err
			}
		}
	}
	return nil
}

// alternatePlans measures each plan mode in every target, the targets
// alternating within each run, as the cells of scenario "<mode>, what";
// the summary sets the first target (ours) against the second (the peer),
// the no-op provider's and our schema's floor's, when among them.
func (b *bench) alternatePlans(ctx context.Context, res *results, what string, n int, targets []planTarget) error {
	for _, mode := range planModes {
		scenario := mode.name + ", " + what
		cells := make([]*cell, len(targets))
		var noop, floor *cell
		for i, t := range targets {
			cells[i] = res.add(scenario, t.tool.name, n)
			switch t.tool.name {
			case toolNoop:
				noop = cells[i]
			case toolFloor:
				floor = cells[i]
			}
		}
		res.compareWithFloor(cells[0], cells[1], noop, floor)
		for r := range b.runs {
			for i, t := range targets {
				cmd := b.terraform(fmt.Sprintf("%s %s %s run %d", t.tool.prefix, mode.name, what, r+1), t.dir, b.withParallelism(mode.args)...)
				cmd.plan = true
				sm, err := b.measure(ctx, cmd)
				if err != nil {
					return err
				}
				cells[i].samples = append(cells[i].samples, sm)
			}
		}
	}
	return nil
}

// applyCreate measures an apply creating a binding (an annotation) on each
// of a set of bare ServiceAccounts, which have no pods, alternating ours and
// the peer. Every run of every tool gets a set of its own, never touched
// before: a destroy does not return a ServiceAccount to where it started
// (kubernetes_annotations' destroy leaves its field manager owning an empty
// annotations map, which a later apply by another manager conflicts with).
//
// Our schema's floor creates as many bindings beside them: what Terraform and
// the framework spend on an apply of instances of our schema (it touches no
// cluster, so its ServiceAccounts need not exist).
func (b *bench) applyCreate(ctx context.Context, l layout, res *results) error {
	n := l.total()
	oursCell := res.add(fmt.Sprintf("apply, create %d", n), toolOurs, n)
	peerCell := res.add(oursCell.scenario, toolAnnotations, n)
	floorCell := res.add(oursCell.scenario, toolFloor, n)
	res.compareWithFloor(oursCell, peerCell, nil, floorCell)
	for r := range b.runs {
		for _, c := range []struct {
			cell *cell
			tool tool
		}{{oursCell, oursTool}, {peerCell, peerTool}, {floorCell, floorTool}} {
			dir := b.dir(fmt.Sprintf("%s-create-%d", c.tool.prefix, r+1))
			if err := writeConfig(dir, c.tool, forEach, bindingsOf(l.bare(createSet(c.tool.prefix, r)), roleA)); err != nil {
				return err
			}
			s, err := b.measure(ctx, b.terraform(fmt.Sprintf("%s apply create %d run %d", c.tool.prefix, n, r+1), dir, b.withParallelism(applyArgs)...))
			if err != nil {
				return err
			}
			c.cell.samples = append(c.cell.samples, s)
		}
	}
	return nil
}

// createSet names the bare ServiceAccounts of one apply-create run.
func createSet(prefix string, run int) string { return fmt.Sprintf("new-%s-%d", prefix, run+1) }

// setupRecycle applies, unmeasured, the two states whose role changes are
// measured: one of only the rc bindings, one of the ri bindings and every
// app binding (50 in a state of 550 at -scale 1). Their ServiceAccounts have
// no pods yet: the Deployments are created afterwards, so they start
// credentialed.
func (b *bench) setupRecycle(ctx context.Context, l layout) error {
	if err := writeConfig(b.dir("ours-recycle"), oursTool, forEach, bindingsOf(l.oneEach("rc"), roleA)); err != nil {
		return err
	}
	if err := b.run(ctx, b.terraform("setup ours recycle", b.dir("ours-recycle"), b.withParallelism(applyArgs)...)); err != nil {
		return err
	}
	if err := writeConfig(b.dir("ours-recycle-in-state"), oursTool, forEach, slices.Concat(bindingsOf(l.apps(l.total()), roleA), bindingsOf(l.oneEach("ri"), roleA))); err != nil {
		return err
	}
	return b.run(ctx, b.terraform("setup ours recycle in state", b.dir("ours-recycle-in-state"), b.withParallelism(applyArgs)...))
}

// kubectlScript is what a platform engineer runs per ServiceAccount:
// annotate, restart, wait. $0 is kubectl; $1 $2 $3 are a line of the list.
const kubectlScript = `"$0" annotate serviceaccount -n "$1" "$2" --overwrite eks.amazonaws.com/role-arn="$3" && ` +
	`"$0" rollout restart -n "$1" deployment/"$2" && ` +
	`"$0" rollout status -n "$1" deployment/"$2" --timeout=10m`

// recycles measures a role change of the rc bindings (a state of their
// own) and of the ri bindings (in the big state) against kubectl on the kc
// ServiceAccounts, in parallel and one by one. Each run flips its set's role between roleA and roleB, and the
// cluster settles (old pods gone) before the next command.
func (b *bench) recycles(ctx context.Context, l layout, res *results, wantPods int) error {
	n := l.recycle
	ours := res.add(fmt.Sprintf("role change, %d bindings x %d pods", n, l.replicas), toolOurs, n)
	oursIn := res.add(fmt.Sprintf("role change, %d bindings x %d pods, in a state of %d", n, l.replicas, l.total()+n), toolOurs, n)
	par := res.add(ours.scenario, fmt.Sprintf("kubectl, xargs -P %d", b.parallelism), n)
	seq := res.add(ours.scenario, toolKubectlSeq, n)
	res.compare(ours, par)
	res.compare(oursIn, par)
	res.compare(ours, seq)
	res.compare(oursIn, seq)

	roles := map[string]string{"rc": roleA, "ri": roleA, "kc": roleA}
	flip := func(name string) string {
		if roles[name] == roleA {
			roles[name] = roleB
		} else {
			roles[name] = roleA
		}
		return roles[name]
	}
	listPath := filepath.Join(b.work, "kubectl-list")
	for r := range b.runs {
		steps := []struct {
			cell *cell
			cmd  func() (command, string, error) // and the ServiceAccount name recycled
		}{
			{ours, func() (command, string, error) {
				err := writeBindings(b.dir("ours-recycle"), bindingsOf(l.oneEach("rc"), flip("rc")))
				return b.terraform(fmt.Sprintf("ours recycle %d run %d", n, r+1), b.dir("ours-recycle"), b.withParallelism(applyArgs)...), "rc", err
			}},
			{par, func() (command, string, error) {
				cmd, err := b.kubectlRecycle(fmt.Sprintf("kubectl -P %d recycle %d run %d", b.parallelism, n, r+1), listPath, l.oneEach("kc"), flip("kc"), b.parallelism)
				return cmd, "kc", err
			}},
			{oursIn, func() (command, string, error) {
				err := writeBindings(b.dir("ours-recycle-in-state"), slices.Concat(bindingsOf(l.apps(l.total()), roleA), bindingsOf(l.oneEach("ri"), flip("ri"))))
				return b.terraform(fmt.Sprintf("ours recycle %d in state run %d", n, r+1), b.dir("ours-recycle-in-state"), b.withParallelism(applyArgs)...), "ri", err
			}},
			{seq, func() (command, string, error) {
				cmd, err := b.kubectlRecycle(fmt.Sprintf("kubectl sequential recycle %d run %d", n, r+1), listPath, l.oneEach("kc"), flip("kc"), 1)
				return cmd, "kc", err
			}},
		}
		for _, st := range steps {
			cmd, name, err := st.cmd()
			if err != nil {
				return err
			}
			s, err := b.measure(ctx, cmd)
			if err != nil {
				return err
			}
			st.cell.samples = append(st.cell.samples, s)
			if err := b.settle(ctx, wantPods); err != nil {
				return err
			}
			if err := b.verifyRole(ctx, name, roles[name], n*l.replicas); err != nil {
				return fmt.Errorf("after %s: %w", cmd.label, err)
			}
		}
	}
	return nil
}

// kubectlRecycle is the kubectl peer: kubectlScript per ServiceAccount,
// parallel ways at once.
func (b *bench) kubectlRecycle(label, listPath string, sas []sa, role string, parallel int) (command, error) {
	var list strings.Builder
	for _, s := range sas {
		fmt.Fprintf(&list, "%s %s %s\n", s.namespace, s.name, role)
	}
	cmd := command{label: label, argv: []string{"xargs", "-P", strconv.Itoa(parallel), "-L", "1", "-a", listPath, "sh", "-c", kubectlScript, b.kubectl}}
	return cmd, os.WriteFile(listPath, []byte(list.String()), 0o644)
}

// verifyRole checks that the want pods of the ServiceAccounts called name
// carry role: the recycle measured really happened.
func (b *bench) verifyRole(ctx context.Context, name, role string, want int) error {
	pods, err := b.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return err
	}
	ok := 0
	for _, p := range pods.Items {
		if envValue(p.Spec.Containers[0], "AWS_ROLE_ARN") == role {
			ok++
		}
	}
	if ok != want || len(pods.Items) != want {
		return fmt.Errorf("%d of %d pods of the %q ServiceAccounts carry %s, want all %d", ok, len(pods.Items), name, role, want)
	}
	return nil
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// podIdentityRole is the role of the pod_identity bindings. Unlike the IRSA
// roles it must exist: EKS (and its emulator) refuses an association whose
// role IAM does not have, or does not trust pods.eks.amazonaws.com.
const podIdentityRole = "bench-pi"

// setupPodIdentity applies, unmeasured, the state of a pod_identity binding
// on every pi ServiceAccount (one association each; they have no pods yet,
// so nothing is recycled), waits until EKS has propagated every association
// to the webhook, and only then creates their Deployments, so every pod
// starts with Pod Identity's container credentials. The refresh is
// compared with the IRSA state and the no-op provider's state of as many
// bindings, which the plans' setup applies; without it, this does.
func (b *bench) setupPodIdentity(ctx context.Context, l layout, plansSetUp bool) error {
	role, err := b.env.CreatePodIdentityRole(ctx, podIdentityRole)
	if err != nil {
		return fmt.Errorf("create the Pod Identity role: %w", err)
	}
	n := l.total()
	if err := writeConfig(b.dir("ourspi-refresh"), oursPodIdentityTool, forEach, bindingsOf(l.podIdentity(), role)); err != nil {
		return err
	}
	if err := b.run(ctx, b.terraform("setup ours pod_identity", b.dir("ourspi-refresh"), b.withParallelism(applyArgs)...)); err != nil {
		return err
	}
	if !plansSetUp {
		for _, t := range []tool{oursTool, noopTool} {
			dir := b.planDir(t, forEach, n)
			if err := writeConfig(dir, t, forEach, bindingsOf(l.apps(n), roleA)); err != nil {
				return err
			}
			if err := b.run(ctx, b.terraform(fmt.Sprintf("setup %s plan %d %s", t.prefix, n, forEach), dir, b.withParallelism(applyArgs)...)); err != nil {
				return err
			}
		}
	}
	if err := b.waitPropagated(ctx, n); err != nil {
		return err
	}
	return b.createDeployments(ctx, l.podIdentity(), l.replicas)
}

// waitPropagated waits until the EKS API emulator has nothing on its way to
// the webhook and lists at least n associations there.
func (b *bench) waitPropagated(ctx context.Context, n int) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := b.env.EKSPropagation(ctx)
		if err != nil {
			return false, err
		}
		last = fmt.Sprintf("%d associations propagated, %d changes pending", len(p.Associations), p.Pending)
		return p.Pending == 0 && len(p.Associations) >= n, nil
	})
	if err != nil {
		return fmt.Errorf("EKS did not propagate the associations (%s): %w", last, err)
	}
	return nil
}

// podIdentityPlans measures `plan -refresh-only` and `plan` of the
// pod_identity state, alternating with the IRSA state of as many bindings
// (in the summary's peer column: what the same refresh costs under the
// default mechanism) and the no-op provider. Each pod_identity binding's
// Read describes its association (ListPodIdentityAssociations has no role,
// so drift needs Describe): the EKS requests are reported beside the
// API server's.
func (b *bench) podIdentityPlans(ctx context.Context, l layout, res *results) error {
	n := l.total()
	return b.alternatePlans(ctx, res, fmt.Sprintf("%d pod_identity bindings, %s", n, forEach), n, []planTarget{
		{oursPodIdentityTool, b.dir("ourspi-refresh")},
		{oursTool, b.planDir(oursTool, forEach, n)},
		{noopTool, b.planDir(noopTool, forEach, n)},
	})
}
