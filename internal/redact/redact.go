// Package redact removes secrets from what the provider shows people:
// diagnostics and its log lines; and it keeps what credential helpers
// (credential_process, exec plugins) print out of both.
//
// Three kinds of secret are removed: values the provider knows are secret
// (a configured token, client key, exec env value, the AWS credentials it
// resolved), registered at configuration; text shaped like a credential
// wherever it comes from (AWS access key IDs, 40-character secret keys,
// session tokens, JWTs and PEM private keys); and anything a credential
// helper printed, whatever its shape: its stderr lines are withheld, and
// where a library quotes its stdout in an error, the quote is replaced by
// words.
package redact

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// MinLength is the shortest registered value that is masked: shorter ones
// ("1", "true", a profile name) would mask ordinary words everywhere.
const MinLength = 8

var known struct {
	sync.RWMutex
	values   map[string]bool
	replacer *strings.Replacer
}

// Register adds secret values, and each line of a multi-line value (a PEM
// key appears line by line in escaped log output).
func Register(values ...string) {
	known.Lock()
	defer known.Unlock()
	if known.values == nil {
		known.values = map[string]bool{}
	}
	added := false
	for _, v := range values {
		for _, s := range append([]string{v}, strings.Split(v, "\n")...) {
			s = strings.TrimSpace(s)
			if len(s) >= MinLength && !strings.HasPrefix(s, "-----") && !known.values[s] {
				known.values[s] = true
				added = true
			}
		}
	}
	if !added {
		return
	}
	// Longest first, so that a value containing another is masked whole.
	sorted := make([]string, 0, len(known.values))
	for v := range known.values {
		sorted = append(sorted, v)
	}
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	pairs := make([]string, 0, 2*len(sorted))
	for _, v := range sorted {
		pairs = append(pairs, v, Mask)
	}
	known.replacer = strings.NewReplacer(pairs...)
}

// Values returns the registered values, for log masking.
func Values() []string {
	known.RLock()
	defer known.RUnlock()
	out := make([]string, 0, len(known.values))
	for v := range known.values {
		out = append(out, v)
	}
	return out
}

// Patterns match credentials by their shape.
var Patterns = []*regexp.Regexp{
	regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----`),
	// AWS access key IDs: long-term (AKIA) and temporary (ASIA).
	regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),
	// JWTs, such as Kubernetes ServiceAccount tokens.
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`),
}

// helperOutput matches where a library quotes what a credential helper
// printed on stdout: client-go's exec plugin ("decoding stdout: " and the
// decoder's error, which quotes a value it could not parse), and the AWS
// SDK's credential_process ("parse failed of process output: " and the
// whole output; awsiam describes those errors itself, this is the net
// under it). The rest of the line goes, whatever its shape.
var helperOutput = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`decoding stdout: [^\n]*`), "decoding stdout: the exec plugin did not print one ExecCredential JSON document " +
		"(what it printed is not shown, as it may hold credentials: run the command yourself to see it)"},
	{regexp.MustCompile(`parse failed of process output: [^\n]*`), "parse failed of process output: not one JSON document " +
		"(what it printed is not shown, as it may hold credentials: run the command yourself to see it)"},
}

// LogPatterns are what log masking removes: Patterns and the quoted
// output of credential helpers.
func LogPatterns() []*regexp.Regexp {
	out := append([]*regexp.Regexp(nil), Patterns...)
	for _, h := range helperOutput {
		out = append(out, h.re)
	}
	return out
}

// base64Run is a run of base64 characters: an AWS secret access key is one
// of 40, a session token one of hundreds.
var base64Run = regexp.MustCompile(`[A-Za-z0-9/+]{40,}={0,2}`)

// String returns s with every secret replaced by Mask.
func String(s string) string {
	known.RLock()
	r := known.replacer
	known.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	for _, h := range helperOutput {
		s = h.re.ReplaceAllLiteralString(s, h.with)
	}
	for _, p := range Patterns {
		s = p.ReplaceAllString(s, Mask)
	}
	return base64Run.ReplaceAllStringFunc(s, func(run string) string {
		if keyLike(strings.TrimRight(run, "=")) {
			return Mask
		}
		return run
	})
}

// keyLike tells a random key from the long runs ordinary text has (a hex
// digest, a lowercase path): exactly 40 characters, or at least 100, that
// mix upper case, lower case and digits.
func keyLike(run string) bool {
	if len(run) != 40 && len(run) < 100 {
		return false
	}
	var upper, lower, digit bool
	for _, c := range run {
		switch {
		case unicode.IsUpper(c):
			upper = true
		case unicode.IsLower(c):
			lower = true
		case unicode.IsDigit(c):
			digit = true
		}
	}
	return upper && lower && digit
}
