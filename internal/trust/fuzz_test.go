package trust

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Whatever Parse accepts has one canonical rendering, which parses back to
// itself; the URL-encoded form GetRole returns parses to the same document;
// and Check answers it the same way twice without panicking.
func FuzzParse(f *testing.F) {
	f.Add(expand(doc(stmt(condOK))))
	f.Add(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}`)
	f.Add(`{"Statement":[{"Condition":{"ForAnyValue:StringLikeIfExists":{"a:sub":[1,"*?"]}}}]}`)
	f.Add("%7B%22Statement%22%3A%5B%5D%7D")
	f.Add(`{"Statement":[{"Effect":"Deny","Principal":{"Federated":[]},"Action":null}]}`)
	f.Add(`{"statement":[{"effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root","Custom":["a",true,1e3]}}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if trimmed := strings.TrimSpace(s); strings.HasPrefix(trimmed, "{") {
			encoded, encErr := Parse(url.QueryEscape(trimmed))
			if (err == nil) != (encErr == nil) || !reflect.DeepEqual(d, encoded) {
				t.Fatalf("URL-encoded %q parses to %+v, %v; plain to %+v, %v", s, encoded, encErr, d, err)
			}
		}
		if err != nil {
			return
		}
		canonical, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(Parse(%q)): %v", s, err)
		}
		again, err := Parse(string(canonical))
		if err != nil {
			t.Fatalf("the rendering %s of %q does not parse: %v", canonical, s, err)
		}
		if twice, _ := json.Marshal(again); string(twice) != string(canonical) {
			t.Fatalf("rendering is not stable for %q:\n%s\n%s", s, canonical, twice)
		}
		r := Request{ProviderARN: testARN, Issuer: testIssuer, Subject: testSub}
		if a, b := Check(d, r), Check(again, r); a.Outcome != b.Outcome {
			t.Fatalf("Check of %q is %v, of its rendering %v", s, a.Outcome, b.Outcome)
		}
	})
}

// A rendered policy allows the ServiceAccount it names, with the audience
// it names, whatever the names hold, and no other namespace.
func FuzzRender(f *testing.F) {
	f.Add("payments", "api", "")
	f.Add("payments", "worker-*", "sts.amazonaws.com")
	f.Add("a", "b?", "custom")
	f.Add(`q"uote`, `back\slash`, "<&>")
	f.Add("x:y", "z", " ")
	f.Fuzz(func(t *testing.T, ns, name, audience string) {
		// Terraform strings are UTF-8: JSON would replace the rest. Each
		// on its own: two invalid halves can join into a valid character.
		if !utf8.ValidString(ns) || !utf8.ValidString(name) || !utf8.ValidString(audience) {
			return
		}
		sub := Subject(ns, name)
		policy, err := Render(Grant{ProviderARN: testARN, Issuer: testIssuer, Audience: audience, Subjects: []string{sub}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(policy)
		if err != nil {
			t.Fatalf("rendered policy does not parse: %v\n%s", err, policy)
		}
		if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: sub, Audience: audience}); v.Outcome != Allowed {
			t.Fatalf("rendered policy does not allow %q (audience %q): %v\n%s", sub, audience, v.Reasons, policy)
		}
		if strings.ContainsAny(ns+name, "*?") {
			return // a pattern may allow other namespaces too
		}
		other := Subject(ns+"-other", name)
		if v := Check(d, Request{ProviderARN: testARN, Issuer: testIssuer, Subject: other, Audience: audience}); v.Outcome != NotAllowed {
			t.Fatalf("rendered policy for %q does not refuse %q: %v\n%s", sub, other, v.Outcome, policy)
		}
	})
}
