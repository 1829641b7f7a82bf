package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// info is what the results file says about how they were obtained.
type info struct {
	date, command                   string
	machine                         string
	terraform, provider, peer, kube string
	noop                            string // hashicorp/time's version
	kubectl, goVersion              string
	loadStart, loadEnd              string // /proc/loadavg: the machine is shared
	fixture                         string
	duration                        time.Duration
	runs, parallelism               int
	idle                            time.Duration
}

func (b *bench) describe(ctx context.Context, o options, l layout, pods int, took time.Duration) info {
	in := info{
		date:        time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		command:     "make bench" + benchArgs(),
		machine:     machine(),
		goVersion:   runtime.Version(),
		loadStart:   b.loadStart,
		loadEnd:     loadavg(),
		duration:    took,
		runs:        o.runs,
		parallelism: o.parallelism,
		idle:        o.idle,
		fixture: fmt.Sprintf("%d namespaces for the plans, the apply and the role changes; %d ServiceAccounts each backing a %d-replica Deployment (%d pods on one kwok node, "+
			"every one credentialed by the pod identity webhook): %d for the plans, 3 × %d for the role changes%s; "+
			"%d bare ServiceAccounts (no pods, no annotation) for apply-create, a set of %d for each run of each tool",
			l.namespaces, pods/l.replicas, l.replicas, pods, l.total(), l.recycle, podIdentityFixture(o, l), bareCount(o, l), l.total()),
	}
	var tf struct {
		Version string `json:"terraform_version"`
	}
	if out, err := exec.CommandContext(ctx, b.terraformPath, "version", "-json").Output(); err == nil && json.Unmarshal(out, &tf) == nil {
		in.terraform = tf.Version
	} else {
		in.terraform = "unknown"
	}
	in.provider = b.commit
	in.peer = peerVersion()
	in.noop = b.timeVersion
	if v, err := b.client.Discovery().ServerVersion(); err == nil {
		in.kube = v.GitVersion
	}
	in.kubectl = strings.TrimSpace(output(ctx, b.kubectl, "version", "--client", "-o", "yaml"))
	if m := regexp.MustCompile(`gitVersion: (\S+)`).FindStringSubmatch(in.kubectl); m != nil {
		in.kubectl = m[1]
	}
	return in
}

// podIdentityFixture describes the pod_identity ServiceAccounts, when that
// scenario runs.
func podIdentityFixture(o options, l layout) string {
	if !o.has("podidentity") {
		return ""
	}
	return fmt.Sprintf(", %d for the pod_identity bindings, %d to a namespace in %d namespaces of their own (an EKS Pod "+
		"Identity association each, created before their pods, so every pod carries the agent's container credentials)",
		l.total(), l.perNS, l.namespaces)
}

// bareCount is the number of apply-create ServiceAccounts, when it runs.
func bareCount(o options, l layout) int {
	if !o.has("apply") {
		return 0
	}
	return len(l.allBare(o.runs))
}

// commit is the checkout's commit, read when the provider is built.
func commit(ctx context.Context) string {
	c := strings.TrimSpace(output(ctx, "git", "rev-parse", "--short=12", "HEAD"))
	if output(ctx, "git", "status", "--porcelain", "--", ".", ":!bench/results", ":!README.md") != "" {
		c += " (with uncommitted changes)"
	}
	return c
}

// benchArgs are the flags this run was given, as make passes them (but
// -terraform, which make sets).
func benchArgs() string {
	var args []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "terraform" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	if len(args) == 0 {
		return ""
	}
	return " BENCH_FLAGS='" + strings.Join(args, " ") + "'"
}

func output(ctx context.Context, name string, args ...string) string {
	out, _ := exec.CommandContext(ctx, name, args...).Output()
	return string(out)
}

// peerVersion is the hashicorp/kubernetes version pinned by its build module.
func peerVersion() string {
	data, _ := os.ReadFile(filepath.Join("hack", "testenv", "kubernetes-provider", "go.mod"))
	if m := regexp.MustCompile(`github.com/hashicorp/terraform-provider-kubernetes (\S+)`).FindSubmatch(data); m != nil {
		return string(m[1])
	}
	return "unknown"
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`model name\s*: (.*)`).FindSubmatch(data); m != nil {
			cpu = string(m[1])
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s memory, Linux %s", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(kernel)))
}

// stats summarises a cell's samples.
type stats struct {
	wall, minWall, maxWall time.Duration
	requests               counts // median of each key
	total                  float64
	eks                    counts // EKS requests, median of each operation
	rssKB                  int64  // median peak
	cpu                    time.Duration
	changes                bool
}

func (c *cell) stats() stats {
	var s stats
	if len(c.samples) == 0 {
		return s
	}
	walls := make([]time.Duration, 0, len(c.samples))
	totals := make([]float64, 0, len(c.samples))
	rss := make([]int64, 0, len(c.samples))
	cpus := make([]time.Duration, 0, len(c.samples))
	for _, x := range c.samples {
		walls = append(walls, x.wall)
		cpus = append(cpus, x.cpu)
		totals = append(totals, x.requests.total())
		rss = append(rss, x.rssKB)
		s.changes = s.changes || x.changes
	}
	s.wall, s.minWall, s.maxWall = median(walls), slices.Min(walls), slices.Max(walls)
	s.total, s.rssKB, s.cpu = median(totals), median(rss), median(cpus)
	s.requests = medianCounts(c.samples, func(x sample) counts { return x.requests })
	s.eks = medianCounts(c.samples, func(x sample) counts { return x.eks })
	return s
}

// medianCounts is the median of each key of the counts of samples.
func medianCounts(samples []sample, of func(sample) counts) counts {
	keys := map[string]bool{}
	for _, x := range samples {
		for k := range of(x) {
			keys[k] = true
		}
	}
	out := counts{}
	for k := range keys {
		vals := make([]float64, 0, len(samples))
		for _, x := range samples {
			vals = append(vals, of(x)[k])
		}
		if m := median(vals); m > 0 {
			out[k] = m
		}
	}
	return out
}

func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// top lists the n largest keys as "VERB resource N".
func (c counts) top(n int) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(c[b], c[a]), strings.Compare(a, b)) })
	parts := make([]string, 0, n)
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func mib(kb int64) string {
	if kb == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// summary is the comparison table: the README's and stdout's. A plan's row
// also sets ours against the no-op provider, the floor for any provider,
// and against our schema's floor, the floor for ours.
func summary(res *results) string {
	var w strings.Builder
	w.WriteString("| scenario | peer | wall, irsa | wall, peer | ratio | wall, no-op provider | ratio to no-op | " +
		"wall, irsa's schema no-op | ratio to it | requests, irsa | requests, peer | ratio | peak RSS, irsa | peak RSS, peer | peak RSS, irsa's schema no-op |\n")
	w.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range res.comparisons {
		if len(c.ours.samples) == 0 || len(c.peer.samples) == 0 {
			continue // an incomplete run's
		}
		o, p := c.ours.stats(), c.peer.stats()
		noopWall, noopRatio, _ := against(o, c.noop)
		floorWall, floorRatio, floorRSS := against(o, c.floor)
		fmt.Fprintf(&w, "| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %.0f | %.0f | %s | %s | %s | %s |\n",
			c.ours.scenario, c.peer.tool, secs(o.wall), secs(p.wall), ratio(o.wall.Seconds(), p.wall.Seconds()),
			noopWall, noopRatio, floorWall, floorRatio, o.total, p.total, ratio(o.total, p.total), mib(o.rssKB), mib(p.rssKB), floorRSS)
	}
	return w.String()
}

// against is a floor's median wall, ours over it and its peak RSS; dashes
// when there is no such floor or it was not measured.
func against(ours stats, floor *cell) (wall, ratioTo, rss string) {
	if floor == nil || len(floor.samples) == 0 {
		return "–", "–", "–"
	}
	f := floor.stats()
	return secs(f.wall), "**" + ratio(ours.wall.Seconds(), f.wall.Seconds()) + "**", mib(f.rssKB)
}

// details is the per-cell table of the results file.
func details(res *results) string {
	var w strings.Builder
	w.WriteString("| scenario | tool | wall, median (min–max) | CPU | requests | per binding | most requested | EKS requests | peak RSS |\n")
	w.WriteString("|---|---|--:|--:|--:|--:|---|---|--:|\n")
	for _, c := range res.cells {
		if len(c.samples) == 0 {
			continue // an incomplete run's
		}
		s := c.stats()
		note := ""
		if s.changes {
			note = " (plan not empty)"
		}
		eks := "–"
		if len(s.eks) > 0 {
			eks = fmt.Sprintf("%.0f: %s", s.eks.total(), s.eks.top(len(s.eks)))
		}
		fmt.Fprintf(&w, "| %s | %s%s | %s (%s–%s) | %s | %.0f | %.1f | %s | %s | %s |\n",
			c.scenario, c.tool, note, secs(s.wall), secs(s.minWall), secs(s.maxWall), secs(s.cpu),
			s.total, s.total/float64(c.bindings), s.requests.top(5), eks, mib(s.rssKB))
	}
	return w.String()
}

// requestsOfRoleChanges lists every kind of request of each role change
// (at least 5 of a kind): the top five of the table are the cluster's own
// (the controllers replacing pods), and what the tools ask for themselves
// (LIST, GET and WATCH of pods and workloads) is further down.
func requestsOfRoleChanges(res *results) string {
	var w strings.Builder
	for _, c := range res.cells {
		if len(c.samples) == 0 || !strings.HasPrefix(c.scenario, "role change") {
			continue
		}
		if w.Len() == 0 {
			w.WriteString("\nEvery kind of request of the role changes (median of the runs, at least 5; the cluster's controllers' included):\n\n")
		}
		s := c.stats()
		all := counts{}
		for k, v := range s.requests {
			if v >= 5 {
				all[k] = v
			}
		}
		fmt.Fprintf(&w, "- %s, %s: %s\n", c.scenario, c.tool, all.top(len(all)))
	}
	return w.String()
}

func (b *bench) report(o options, in info, res *results) error {
	title := "Benchmark results, " + in.date
	if o.label != "" {
		title += " (" + o.label + ")"
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "# %s\n\n", title)
	if res.incomplete != "" {
		fmt.Fprintf(&w, "**Incomplete**: the run stopped early, so some cells are missing and some have fewer runs than "+
			"stated below:\n\n```\n%s\n```\n\n", lastLines(res.incomplete, 20))
	}
	fmt.Fprintf(&w, "Rerun with `%s` (about %s here; `go run ./bench/scale -h` lists the flags).\n\n", in.command, in.duration.Round(time.Minute))
	fmt.Fprintf(&w, "- Machine: %s; load average %s at the start, %s at the end (other work on the machine inflates wall times)\n", in.machine, in.loadStart, in.loadEnd)
	fmt.Fprintf(&w, "- Terraform %s, -parallelism=%d; Go %s\n", in.terraform, in.parallelism, in.goVersion)
	fmt.Fprintf(&w, "- terraform-provider-irsa at %s, built from the checkout; `trust_check = \"off\"` (IAM is not measured)\n", in.provider)
	fmt.Fprintf(&w, "- Peers: hashicorp/kubernetes %s (`kubernetes_annotations`, built from the Go module proxy); kubectl %s\n", in.peer, in.kubectl)
	fmt.Fprintf(&w, "- Cluster: Kubernetes %s on a fresh local environment (etcd, kube-apiserver, controller-manager, scheduler, kwok, the pod identity webhook)\n", in.kube)
	fmt.Fprintf(&w, "- Fixture: %s\n", in.fixture)
	fmt.Fprintf(&w, "- Each cell is the median of %d runs (the middle one of an even number: the higher), ours and the peer alternating. Requests: `apiserver_request_total` "+
		"scraped before and after each command, by verb and resource, minus the idle cluster's rate (measured over %s "+
		"before the first command) times the command's length. Peak RSS: the highest VmHWM of the provider plugin "+
		"process, polled every 100 ms; kubectl's is not measured. CPU: user and system time of the command with the "+
		"processes it waited for (terraform's includes its provider plugins'), median.\n", in.runs, in.idle)
	w.WriteString("- Plans: `terraform plan -detailed-exitcode` (and with `-refresh-only`) of states already applied; the " +
		"bindings of a plan of N are all ServiceAccounts of the first N/10 namespaces. Apply-create: each tool creates " +
		"its bindings on bare ServiceAccounts no tool touched before. Role change: " +
		"`terraform apply` of new `role_arn`s (restart defaults: rollout, wait) against `kubectl annotate --overwrite && " +
		"kubectl rollout restart && kubectl rollout status` per ServiceAccount, on sets of the same shape, one per " +
		"namespace (`rc` in a state of its own, `ri` in the state of every plan binding, `kc` for kubectl: a " +
		"ServiceAccount has one binding), the role flipping between two ARNs each run; the cluster settles (old pods " +
		"gone) between commands and every recycled pod is checked to carry the new role.\n")
	fmt.Fprintf(&w, "- Shapes: every plan runs twice, on the same ServiceAccounts: with %q, one resource block per binding "+
		"(generated HCL), and with %q, one resource iterating a map of locals (what a module does), which costs "+
		"Terraform itself more.\n", blockEach, forEach)
	fmt.Fprintf(&w, "- %s: hashicorp/time %s (built from the Go module proxy), a terraform-plugin-framework provider whose "+
		"`time_static` does no I/O, in the same shape with the same three strings per resource: what Terraform and the "+
		"framework leave a provider, the floor for ours (\"ratio to no-op\"). Every plugin's logs are off "+
		"(`TF_LOG_SDK*=OFF` and each provider's `TF_LOG_PROVIDER_*=OFF`, ours and the peer's alike).\n", toolNoop, in.noop)
	fmt.Fprintf(&w, "- %s: `bench/schemafloor`, a plugin with this provider's schemas (the provider's and the binding's, "+
		"taken from the provider) whose resource does nothing: no Read, no ModifyPlan, no ValidateConfig, served the same "+
		"way (rpcscope), over the same configuration as ours, in the plans and in the apply-create (where it touches no cluster). What a "+
		"command costs there is what Terraform and the framework spend on instances of our schema, which grows with its "+
		"size: the floor for ours (\"ratio to it\"); what ours costs above it is our own work.\n", toolFloor)
	fmt.Fprintf(&w, "- Pod Identity: the plans of %q (`mechanism = \"pod_identity\"`, `cluster_name` set, EKS through "+
		"the environment's EKS API emulator) alternate with ours under IRSA and the no-op provider, each a state of as "+
		"many bindings, 10 to a namespace (the IRSA state's namespaces also hold the role changes' pods); in those rows the \"peer\" is ours under IRSA, and \"EKS requests\" are "+
		"the emulator's own counts by operation.\n", toolOursPodIdentity)
	fmt.Fprintf(&w, "- %s: the same plans of `terraform_data` resources, in the same shapes, with no provider "+
		"plugin and no cluster: what Terraform itself spends on that many resource instances.\n\n", toolAlone)
	w.WriteString("## Summary\n\n")
	w.WriteString(summary(res))
	w.WriteString("\nRatios are ours over the peer, and for plans ours over the no-op provider: below 1 means faster (or fewer).\n\n## Every measurement\n\n")
	w.WriteString(details(res))
	w.WriteString(requestsOfRoleChanges(res))
	if slices.ContainsFunc(res.cells, func(c *cell) bool { return c.stats().changes }) {
		w.WriteString("\n\"(plan not empty)\": the plan reported changes (exit code 2) where none were made. For " +
			"`kubernetes_annotations` these are its `template_annotations` attribute going from null to `{}` on every " +
			"resource in a `-refresh-only` plan after its own apply (seen in the runs made while writing the " +
			"benchmark); the logs of every command are in `bench/.work/logs` until the next run.\n")
	}

	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, w.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n%s\n%s\nresults in %s\n", title, summary(res), o.out)
	if o.readme == "" {
		return nil
	}
	return updateReadme(o.readme, o.out, title, in, summary(res))
}

const (
	readmeStart = "<!-- bench:start -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme rewrites the README between its bench markers; a README
// without them gets a Performance section before Development.
func updateReadme(path, resultsPath, title string, in info, table string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	block := fmt.Sprintf("%s\n%s: %s; Terraform %s, -parallelism=%d, median of %d runs; %s. Every measurement, "+
		"and how they were taken: [%s](%s).\n\n%s%s", readmeStart, title, in.machine, in.terraform, in.parallelism,
		in.runs, in.fixture, filepath.Base(resultsPath), filepath.ToSlash(resultsPath), table, readmeEnd)
	start, end := strings.Index(text, readmeStart), strings.Index(text, readmeEnd)
	switch {
	case start >= 0 && end > start:
		text = text[:start] + block + text[end+len(readmeEnd):]
	default:
		section := "## Performance\n\n`make bench` measures the provider at scale against its peers on a fresh local environment " +
			"(not part of `make test`). The last run:\n\n" + block + "\n\n"
		if i := strings.Index(text, "## Development"); i >= 0 {
			text = text[:i] + section + text[i:]
		} else {
			text += "\n" + section
		}
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
