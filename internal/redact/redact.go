// Package redact removes secrets from what the provider shows people:
// diagnostics, its log lines, and whatever credential helpers it runs
// (credential_process, exec plugins) print on stderr.
//
// Two kinds of secret are removed: values the provider knows are secret
// (a configured token, client key, exec env value, the AWS credentials it
// resolved), registered at configuration, and text shaped like a
// credential wherever it comes from: AWS access key IDs, 40-character
// secret keys, session tokens, JWTs and PEM private keys. A credential
// helper that fails can echo keys it was never given by us.
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
