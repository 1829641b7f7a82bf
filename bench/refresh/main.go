// Command refresh measures what a `terraform plan` (refresh included) of many
// bindings costs the API server, against a baseline of one binding run in
// the same invocation: requests by verb and resource, from the API server's
// own /metrics, and wall time.
//
//	make bench            (starts the local environment, then runs this)
//	go run ./bench/refresh -bindings 60 -namespaces 6 -out bench/results/refresh.json
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv"
)

func main() {
	bindings := flag.Int("bindings", 60, "bindings in the measured configuration")
	namespaces := flag.Int("namespaces", 6, "namespaces they are spread over")
	runs := flag.Int("runs", 3, "plans per configuration; the median is reported")
	out := flag.String("out", "bench/results/refresh.json", "where to write the results")
	flag.Parse()
	if err := run(*bindings, *namespaces, *runs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Result is one configuration's measurement.
type Result struct {
	Bindings   int            `json:"bindings"`
	Namespaces int            `json:"namespaces"`
	WallMillis int64          `json:"plan_wall_ms_median"`
	Requests   map[string]int `json:"requests_per_plan"`
	PerBinding map[string]any `json:"per_binding"`
}

// Report is what the benchmark writes.
type Report struct {
	Date          string  `json:"date"`
	Terraform     string  `json:"terraform"`
	Baseline      Result  `json:"baseline"`
	Measured      Result  `json:"measured"`
	WallTimeRatio float64 `json:"wall_time_ratio_measured_over_baseline"`
	Note          string  `json:"note"`
}

func run(bindings, namespaces, runs int, out string) error {
	ctx := context.Background()
	client, err := testenv.Clientset()
	if err != nil {
		return err
	}
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		tf = "terraform"
	}
	work, err := os.MkdirTemp("", "irsa-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	prefix := "bench-" + rand.String(5)
	var created []string
	defer func() {
		for _, ns := range created {
			_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	}()
	setup := func(name string, n, spread int) (string, error) {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		var cfg strings.Builder
		cfg.WriteString("terraform {\n  required_providers {\n    irsa = {\n      source = \"irsa-dev/irsa\"\n    }\n  }\n}\n\n")
		cfg.WriteString("provider \"irsa\" {\n  trust_check = \"off\"\n}\n")
		for ns := range spread {
			nsName := fmt.Sprintf("%s-%s-%d", prefix, name, ns)
			if err := createNamespace(ctx, client, nsName); err != nil {
				return "", err
			}
			created = append(created, nsName)
			for i := ns; i < n; i += spread {
				sa := fmt.Sprintf("app-%d", i)
				if err := createWorkload(ctx, client, nsName, sa); err != nil {
					return "", err
				}
				fmt.Fprintf(&cfg, "\nresource \"irsa_service_account_binding\" \"b%d\" {\n  namespace       = %q\n  service_account = %q\n  role_arn        = \"arn:aws:iam::123456789012:role/bench-%d\"\n}\n", i, nsName, sa, i)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(cfg.String()), 0o644); err != nil {
			return "", err
		}
		fmt.Printf("applying %d bindings in %d namespaces\n", n, spread)
		return dir, terraform(tf, dir, "apply", "-auto-approve", "-input=false", "-parallelism=10")
	}

	baseDir, err := setup("base", 1, 1)
	if err != nil {
		return err
	}
	measuredDir, err := setup("many", bindings, namespaces)
	if err != nil {
		return err
	}

	report := Report{Date: time.Now().UTC().Format(time.RFC3339), Terraform: tf}
	if report.Baseline, err = measure(ctx, client, tf, baseDir, 1, 1, runs); err != nil {
		return err
	}
	if report.Measured, err = measure(ctx, client, tf, measuredDir, bindings, namespaces, runs); err != nil {
		return err
	}
	report.WallTimeRatio = float64(report.Measured.WallMillis) / float64(max(report.Baseline.WallMillis, 1))
	report.Note = "Requests are counted from the API server's apiserver_request_total, around `terraform plan` " +
		"(refresh included) with every pod credentialed; background traffic of the controllers is included in " +
		"'total' but not in the per-resource counts it does not touch (pods LIST, serviceaccounts GET)."

	data, _ := json.MarshalIndent(report, "", "  ")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n%-10s %8s %10s %14s %12s %8s\n", "config", "bindings", "plan (ms)", "SA GET", "pod LIST", "total")
	for _, r := range []Result{report.Baseline, report.Measured} {
		fmt.Printf("%-10s %8d %10d %14d %12d %8d\n", fmt.Sprintf("%d ns", r.Namespaces), r.Bindings, r.WallMillis,
			r.Requests["GET serviceaccounts"], r.Requests["LIST pods"], r.Requests["total"])
	}
	fmt.Printf("wall-time ratio %.2f for %dx the bindings; results in %s\n", report.WallTimeRatio, bindings, out)
	return nil
}

func measure(ctx context.Context, client kubernetes.Interface, tf, dir string, bindings, namespaces, runs int) (Result, error) {
	var walls []int64
	var reqs map[string]int
	for range runs {
		before, err := requestCounts(ctx, client)
		if err != nil {
			return Result{}, err
		}
		start := time.Now()
		if err := terraform(tf, dir, "plan", "-input=false", "-detailed-exitcode", "-parallelism=10"); err != nil {
			return Result{}, fmt.Errorf("plan of %d bindings is not empty or failed: %w", bindings, err)
		}
		walls = append(walls, time.Since(start).Milliseconds())
		after, err := requestCounts(ctx, client)
		if err != nil {
			return Result{}, err
		}
		reqs = map[string]int{}
		for k, v := range after {
			if d := v - before[k]; d > 0 {
				reqs[k] = d
			}
		}
	}
	slices.Sort(walls)
	median := walls[len(walls)/2]
	return Result{
		Bindings: bindings, Namespaces: namespaces, WallMillis: median, Requests: reqs,
		PerBinding: map[string]any{
			"GET serviceaccounts": float64(reqs["GET serviceaccounts"]) / float64(bindings),
			"LIST pods":           float64(reqs["LIST pods"]) / float64(bindings),
		},
	}, nil
}

var metricLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)

// requestCounts sums apiserver_request_total by "VERB resource", plus "total".
func requestCounts(ctx context.Context, client kubernetes.Interface) (map[string]int, error) {
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		n, _ := strconv.ParseFloat(m[2], 64)
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		counts[key] += int(n)
		counts["total"] += int(n)
	}
	return counts, sc.Err()
}

func terraform(tf, dir string, args ...string) error {
	cmd := exec.Command(tf, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("terraform %s: %w", args[0], err)
	}
	return nil
}

func createNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}

// createWorkload is a ServiceAccount and a Deployment of one pod using it.
func createWorkload(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"app": name}
	_, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			},
		},
	}, metav1.CreateOptions{})
	return err
}
