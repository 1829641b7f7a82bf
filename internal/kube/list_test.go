package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestParseSelector(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		matches labels.Set
		want    bool
		wantErr bool
	}{
		{in: "", matches: labels.Set{"any": "thing"}, want: true},
		{in: "app=api", matches: labels.Set{"app": "api"}, want: true},
		{in: "app=api,tier!=batch", matches: labels.Set{"app": "api", "tier": "batch"}, want: false},
		{in: "app in (api,worker)", matches: labels.Set{"app": "worker"}, want: true},
		{in: "!canary", matches: labels.Set{"canary": "true"}, want: false},
		{in: "app in (api", wantErr: true},
		{in: "-app=api", wantErr: true},
		{in: "app=api=x", wantErr: true},
	} {
		sel, err := ParseSelector(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSelector(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && sel.Matches(tt.matches) != tt.want {
			t.Errorf("ParseSelector(%q).Matches(%v) = %v, want %v", tt.in, tt.matches, !tt.want, tt.want)
		}
	}
}

// The provider validates pod_selector with ParseSelector and sends the
// string as written; the API server parses it with labels.Parse. They
// accept the same strings, and select the same pods as the selector's
// canonical form, which parses back to itself.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{
		"", "app=api", "app==api", "app!=api", "app in (api,worker)", "app notin (a)", "!canary", "canary",
		"app=api,tier!=batch", "example.com/app=x", "app in (", "a=b,", " app = api ", "x>1", "x<1", "app=api,app=worker",
	} {
		f.Add(s, "app=api,tier=web")
	}
	f.Fuzz(func(t *testing.T, selector, podLabels string) {
		sel, err := ParseSelector(selector)
		_, serverErr := labels.Parse(selector)
		if (err == nil) != (serverErr == nil) {
			t.Fatalf("ParseSelector(%q) error = %v; the API server's labels.Parse: %v", selector, err, serverErr)
		}
		if err != nil {
			return
		}
		canonical := sel.String()
		again, err := labels.Parse(canonical)
		if err != nil {
			t.Fatalf("the canonical form %q of %q does not parse: %v", canonical, selector, err)
		}
		if again.String() != canonical {
			t.Fatalf("canonical form of %q is not stable: %q, then %q", selector, canonical, again.String())
		}
		// Pods with the fuzzed labels, and with labels the selector names,
		// so that matches are not only the rare accident.
		sets := []labels.Set{parseLabels(podLabels), {}}
		reqs, _ := sel.Requirements()
		named := labels.Set{}
		for _, r := range reqs {
			named[r.Key()] = ""
			if vals := r.Values().UnsortedList(); len(vals) > 0 {
				named[r.Key()] = vals[0]
			}
		}
		sets = append(sets, named)
		for _, set := range sets {
			if sel.Matches(set) != again.Matches(set) {
				t.Fatalf("%q and its canonical form %q disagree on %v", selector, canonical, set)
			}
		}
	})
}

// parseLabels reads k=v,k=v leniently: fuzzed pod labels need not be valid.
func parseLabels(s string) labels.Set {
	set := labels.Set{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		set[k] = v
	}
	return set
}
