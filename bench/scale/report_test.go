package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewLayout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scale      float64
		namespaces int
		sizes      []int
	}{
		{1, 50, []int{50, 200, 500}},
		{0.1, 5, []int{5, 20, 50}},
		{0.01, 1, []int{1, 2, 5}},
	}
	for _, tt := range tests {
		l := newLayout(tt.scale)
		if l.namespaces != tt.namespaces || !slices.Equal(l.planSizes, tt.sizes) || l.recycle != tt.namespaces {
			t.Errorf("newLayout(%v) = %d namespaces, plans of %v, recycle %d; want %d, %v, %d",
				tt.scale, l.namespaces, l.planSizes, l.recycle, tt.namespaces, tt.sizes, tt.namespaces)
		}
		if got := len(l.apps(l.total())); got != l.total() {
			t.Errorf("newLayout(%v).apps(total) has %d, want %d", tt.scale, got, l.total())
		}
	}
}

func TestUpdateReadme(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, readme string
		want         []string // in this order
	}{
		{
			name:   "a README without markers gets the section before Development",
			readme: "# p\n\n## Usage\n\ntext\n\n## Development\n\nmore\n",
			want:   []string{"## Usage", "## Performance", readmeStart, "| new |", readmeEnd, "## Development"},
		},
		{
			name:   "a rerun replaces what is between the markers only",
			readme: "# p\n\n## Performance\n\nintro\n\n" + readmeStart + "\n| old |\n" + readmeEnd + "\n\nafter\n",
			want:   []string{"intro", readmeStart, "| new |", readmeEnd, "after"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "README.md")
			if err := os.WriteFile(path, []byte(tt.readme), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := updateReadme(path, "bench/results/x.md", "Results", info{}, "| new |\n"); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			got := string(data)
			at := 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Fatalf("%q missing after offset %d in:\n%s", w, at, got)
				}
				at += i + len(w)
			}
			if strings.Contains(got, "| old |") || strings.Count(got, readmeStart) != 1 || strings.Count(got, "## Performance") != 1 {
				t.Errorf("README not rewritten in place:\n%s", got)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	res := &results{}
	ours := res.add("plan, 50 bindings", toolOurs, 50)
	peer := res.add(ours.scenario, toolAnnotations, 50)
	noop := res.add(ours.scenario, toolNoop, 50)
	floor := res.add(ours.scenario, toolFloor, 50)
	res.compareWithFloor(ours, peer, noop, floor)
	unmeasured := res.add("apply, create 500", toolOurs, 500)
	res.compare(unmeasured, res.add(unmeasured.scenario, toolAnnotations, 500))
	for _, w := range []time.Duration{3 * time.Second, 1 * time.Second, 2 * time.Second} {
		ours.samples = append(ours.samples, sample{wall: w, requests: counts{"GET serviceaccounts": 50}, rssKB: 64 << 10})
		peer.samples = append(peer.samples, sample{wall: 2 * w, requests: counts{"GET serviceaccounts": 100}, rssKB: 80 << 10})
		noop.samples = append(noop.samples, sample{wall: w / 2, rssKB: 20 << 10})
		floor.samples = append(floor.samples, sample{wall: w * 4 / 5, rssKB: 40 << 10})
	}
	got := summary(res)
	want := "| plan, 50 bindings | kubernetes_annotations | 2.0 s | 4.0 s | **0.50×** | 1.0 s | **2.00×** | 1.6 s | **1.25×** | 50 | 100 | 0.50× | 64 MiB | 80 MiB | 40 MiB |"
	if !strings.Contains(got, want) {
		t.Errorf("summary lacks the medians and ratios %q:\n%s", want, got)
	}
	if strings.Contains(got, "apply") {
		t.Errorf("summary shows a comparison that was never measured:\n%s", got)
	}
	if d := details(res); strings.Contains(d, "apply") || !strings.Contains(d, "2.0 s (1.0 s–3.0 s)") {
		t.Errorf("details = %s", d)
	}
}

func TestMainTF(t *testing.T) {
	t.Parallel()
	bindings := []binding{{sa{namespace: "n1", name: "a"}, "arn:aws:iam::1:role/x"}, {sa{namespace: "n2", name: "b"}, "arn:aws:iam::1:role/x"}}
	for _, tl := range planTools {
		t.Run(tl.prefix, func(t *testing.T) {
			t.Parallel()
			blocks := tl.mainTF(blockEach, bindings)
			if got := strings.Count(blocks, "resource "+strconv.Quote(tl.resource)); got != len(bindings) {
				t.Errorf("one block each: %d resource blocks, want %d:\n%s", got, len(bindings), blocks)
			}
			if strings.Contains(blocks, "each.") || !strings.Contains(blocks, `"b_1"`) || !strings.Contains(blocks, `"n2"`) {
				t.Errorf("one block each does not spell the second binding literally:\n%s", blocks)
			}
			iter := tl.mainTF(forEach, bindings)
			if strings.Count(iter, "resource ") != 1 || !strings.Contains(iter, "for_each = local.bindings") || strings.Contains(iter, `"n1"`) {
				t.Errorf("for_each is not one resource over the map:\n%s", iter)
			}
		})
	}
}

func TestRequestsOfRoleChanges(t *testing.T) {
	t.Parallel()
	res := &results{}
	plan := res.add("plan, 50 bindings", toolOurs, 50)
	rc := res.add("role change, 50 bindings x 10 pods", toolOurs, 50)
	for range 3 {
		plan.samples = append(plan.samples, sample{requests: counts{"LIST pods": 5}})
		rc.samples = append(rc.samples, sample{requests: counts{"DELETE pods": 500, "WATCH pods": 50, "LIST pods": 100, "GET leases": 2}})
	}
	got := requestsOfRoleChanges(res)
	if want := "- role change, 50 bindings x 10 pods, irsa: DELETE pods 500, LIST pods 100, WATCH pods 50\n"; !strings.Contains(got, want) {
		t.Errorf("requestsOfRoleChanges lacks %q:\n%s", want, got)
	}
	if strings.Contains(got, "plan") || strings.Contains(got, "leases") {
		t.Errorf("requestsOfRoleChanges shows a plan or a kind under 5:\n%s", got)
	}
}
