package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// sample is one measured command.
type sample struct {
	wall     time.Duration
	requests counts // net of the idle rate
	eks      counts // EKS API requests by operation, from the emulator's counts
	rssKB    int64  // peak VmHWM of the provider plugin; 0 for kubectl
	changes  bool   // a plan that was not empty (exit code 2 of -detailed-exitcode)
	// cpu is the command's user+system CPU time with its reaped children:
	// for terraform, the CLI's and the provider plugins'.
	cpu time.Duration
}

// command is something to run and measure.
type command struct {
	label string   // for logs and errors
	argv  []string // the program and its arguments
	// plan marks a `plan -detailed-exitcode`: exit code 2 (changes) is a result, not a failure.
	plan bool
}

// terraform is a terraform command in dir.
func (b *bench) terraform(label, dir string, args ...string) command {
	return command{label: label, argv: append([]string{b.terraformPath, "-chdir=" + dir}, args...)}
}

// execute runs c with its output in a log file under the working directory,
// returning the exit code. An exit code other than 0 (or 2 of a plan) is an
// error quoting the log's tail.
func (b *bench) execute(ctx context.Context, c command, started func(pid int)) (int, time.Duration, error) {
	b.seq++
	logPath := filepath.Join(b.work, "logs", fmt.Sprintf("%03d-%s.log", b.seq, strings.ReplaceAll(c.label, " ", "_")))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, 0, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return 0, 0, err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = b.environ()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", c.label, err)
	}
	if started != nil {
		started(cmd.Process.Pid)
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	// wait4 reports the process's usage with that of the children it
	// waited for (the plugins terraform started and stopped).
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && c.plan && code == 2:
	default:
		data, _ := os.ReadFile(logPath)
		return code, cpu, fmt.Errorf("%s failed (%w); the end of %s:\n%s", c.label, err, logPath, lastLines(string(data), 30))
	}
	return code, cpu, nil
}

// run executes c unmeasured (setup and teardown).
func (b *bench) run(ctx context.Context, c command) error {
	fmt.Fprintf(os.Stderr, "  %s\n", c.label)
	_, _, err := b.execute(ctx, c, nil)
	return err
}

// measure executes c and measures it: wall time, API requests net of the
// idle rate, and the provider plugin's peak RSS.
func (b *bench) measure(ctx context.Context, c command) (sample, error) {
	before, err := scrape(ctx, b.client)
	if err != nil {
		return sample{}, err
	}
	eksBefore, err := b.env.EKSRequestCounts(ctx)
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	var w *rssWatch
	code, cpu, err := b.execute(ctx, c, func(pid int) { w = watchRSS(pid) })
	wall := time.Since(start)
	var rss int64
	if w != nil {
		rss = w.Stop()
	}
	if err != nil {
		return sample{}, err
	}
	after, err := scrape(ctx, b.client)
	if err != nil {
		return sample{}, err
	}
	interval := time.Since(start)
	eksAfter, err := b.env.EKSRequestCounts(ctx)
	if err != nil {
		return sample{}, err
	}
	s := sample{wall: wall, requests: net(diff(before, after), b.idle, interval), eks: eksDiff(eksBefore, eksAfter), rssKB: rss, changes: c.plan && code == 2, cpu: cpu}
	fmt.Fprintf(os.Stderr, "  %-44s %7.1fs %6.1fs CPU %6.0f requests %6.0f MiB%s\n", c.label, wall.Seconds(), cpu.Seconds(), s.requests.total(), float64(rss)/1024, map[bool]string{true: "  (plan not empty)"}[s.changes])
	return s, nil
}

// eksDiff is the EKS requests between two of the emulator's counts, by
// operation. Nothing else calls the emulator while a command runs, so
// there is no idle rate to subtract.
func eksDiff(before, after map[string]int) counts {
	d := counts{}
	for op, n := range after {
		if n > before[op] {
			d[op] = float64(n - before[op])
		}
	}
	return d
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
