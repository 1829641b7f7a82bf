package kube

import (
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
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
// string as written; the API server parses it with labels.Parse. What it
// accepts must select exactly the pods its requirements, read by the
// operators' definitions stated here, select; and its canonical form must
// parse back to itself and select the same pods.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{
		"", "app=api", "app==api", "app!=api", "app in (api,worker)", "app notin (a)", "!canary", "canary",
		"app=api,tier!=batch", "example.com/app=x", "app in (", "a=b,", " app = api ", "x>1", "x<1", "app=api,app=worker",
	} {
		f.Add(s, "app=api,tier=web")
	}
	f.Fuzz(func(t *testing.T, selector, podLabels string) {
		sel, err := ParseSelector(selector)
		if err != nil {
			return
		}
		reqs, selectable := sel.Requirements()
		if strings.TrimSpace(selector) == "" && (!selectable || len(reqs) != 0) {
			t.Fatalf("ParseSelector(%q) = %v, want a selector of every pod", selector, sel)
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
		named := labels.Set{}
		for _, r := range reqs {
			named[r.Key()] = ""
			if vals := r.Values().UnsortedList(); len(vals) > 0 {
				named[r.Key()] = vals[0]
			}
		}
		sets = append(sets, named)
		for _, set := range sets {
			want := matchesByDefinition(t, reqs, set)
			if got := sel.Matches(set); got != want {
				t.Fatalf("%q selects %v: %v, but its requirements %v say %v", selector, set, got, reqs, want)
			}
			if again.Matches(set) != want {
				t.Fatalf("%q and its canonical form %q disagree on %v", selector, canonical, set)
			}
		}
	})
}

// matchesByDefinition applies the label selector operators as Kubernetes
// documents them, every requirement to hold, without labels.Selector.Matches.
func matchesByDefinition(t *testing.T, reqs labels.Requirements, set labels.Set) bool {
	t.Helper()
	for _, r := range reqs {
		v, has := set[r.Key()]
		vals := r.Values()
		var ok bool
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			ok = has && vals.Has(v)
		case selection.NotEquals, selection.NotIn:
			ok = !has || !vals.Has(v)
		case selection.Exists:
			ok = has
		case selection.DoesNotExist:
			ok = !has
		case selection.GreaterThan, selection.LessThan:
			if !has || vals.Len() != 1 {
				break
			}
			n, err := strconv.ParseInt(v, 10, 64)
			bound, berr := strconv.ParseInt(vals.UnsortedList()[0], 10, 64)
			if err != nil || berr != nil {
				break
			}
			ok = (r.Operator() == selection.GreaterThan && n > bound) || (r.Operator() == selection.LessThan && n < bound)
		default:
			t.Fatalf("operator %q has no definition here", r.Operator())
		}
		if !ok {
			return false
		}
	}
	return true
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
