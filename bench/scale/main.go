// Command scale measures the provider at platform scale against its peers, in
// one run on a fresh local environment of its own: `terraform plan` (plain
// and -refresh-only) of 50, 200 and 500 bindings against the same
// ServiceAccounts as hashicorp/kubernetes `kubernetes_annotations`, an apply
// creating 500 bindings against the same 500 annotations, and a role change
// of 50 bindings whose ServiceAccounts back 10-replica Deployments against
// `kubectl annotate` + `rollout restart` + `rollout status` (xargs -P 10 and
// sequential), and a refresh of 500 pod_identity bindings (EKS Pod Identity
// associations, pods credentialed by the agent) next to the same refresh of
// IRSA bindings and the no-op provider. Ours and the peer alternate; each cell is the median of
// -runs. It reports wall time, API requests by verb and resource (from the
// API server's /metrics, net of an idle interval; EKS requests from the EKS
// API emulator's own counts) and the peak RSS of the
// provider plugin, in bench/results/<date>.md and README.md's Performance
// section.
//
//	make bench                                  (the full run, about an hour on 2 cores)
//	go run ./bench/scale -scale 0.1 -runs 1     (a smoke run of a few minutes)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	scale       float64
	runs        int
	scenarios   string
	stateDir    string
	terraform   string
	out         string
	readme      string
	label       string
	idle        time.Duration
	parallelism int
	keep        bool
}

func main() {
	var o options
	flag.Float64Var(&o.scale, "scale", 1, "fraction of the issue's sizes (50 namespaces, 5,000 pods, plans of 50/200/500, apply of 500, recycle of 50); 0.1 for a smoke run")
	flag.IntVar(&o.runs, "runs", 3, "runs of each command; the median is reported")
	flag.StringVar(&o.scenarios, "scenarios", "plan,apply,recycle,podidentity", "comma-separated scenarios to run: plan, apply, recycle, podidentity")
	flag.StringVar(&o.stateDir, "state", ".testenv-bench", "state directory of the benchmark's own environment (created fresh, removed at the end)")
	flag.StringVar(&o.terraform, "terraform", "terraform", "the terraform (or tofu) CLI")
	flag.StringVar(&o.out, "out", "", "results file (default bench/results/<YYYY-MM-DD>.md)")
	flag.StringVar(&o.readme, "readme", "README.md", "README whose Performance section is rewritten between its bench markers; empty to leave it")
	flag.StringVar(&o.label, "label", "", "a label for the results file's title, such as \"before\"")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "length of the idle interval whose request rate is subtracted")
	flag.IntVar(&o.parallelism, "parallelism", 10, "terraform -parallelism, and xargs -P for the kubectl peer")
	flag.BoolVar(&o.keep, "keep", false, "leave the environment and the working directory for inspection")
	flag.Parse()
	if o.out == "" {
		name := time.Now().UTC().Format("2006-01-02")
		if o.label != "" {
			name += "-" + o.label
		}
		o.out = "bench/results/" + name + ".md"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o options) has(scenario string) bool {
	for _, s := range strings.Split(o.scenarios, ",") {
		if strings.TrimSpace(s) == scenario {
			return true
		}
	}
	return false
}
