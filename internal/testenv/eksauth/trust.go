package eksauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The trust policy check EKS Auth makes before it assumes a role. This is the
// environment's own evaluator, written from the IAM policy grammar, not the
// provider's internal/trust: the emulator is the oracle the provider is tested
// against, so it must not share the provider's reading of a policy.
//
// It implements what a trust policy of a Pod Identity role uses: Allow and
// Deny statements, Principal (Service and AWS, "*"), Action and NotAction
// with wildcards, and Condition with the String*, Arn*, Null and Bool
// operators, their IfExists forms and the ForAnyValue/ForAllValues set
// qualifiers. NotPrincipal and policy variables are not implemented: a
// statement using them is reported as unsupported rather than guessed at.

// trustRequest is one action a principal asks of a role.
type trustRequest struct {
	// principalType is "Service" or "AWS"; principal the service name or the
	// ARN of the role whose session asks; account the caller's account
	// (AWS principals only).
	principalType, principal, account string
	action                            string
	// keys are the request's condition keys, lower-cased.
	keys map[string][]string
}

type policyDocument struct {
	Statement oneOrMany[statement] `json:"Statement"`
}

type statement struct {
	Sid          string                                  `json:"Sid"`
	Effect       string                                  `json:"Effect"`
	Principal    json.RawMessage                         `json:"Principal"`
	NotPrincipal json.RawMessage                         `json:"NotPrincipal"`
	Action       oneOrMany[string]                       `json:"Action"`
	NotAction    oneOrMany[string]                       `json:"NotAction"`
	Condition    map[string]map[string]oneOrMany[string] `json:"Condition"`
}

// oneOrMany is IAM's "a value or a list of values".
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	var many []T
	if err := json.Unmarshal(b, &many); err == nil {
		*o = many
		return nil
	}
	var one T
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*o = []T{one}
	return nil
}

// parsePolicy reads a trust policy as GetRole returns it: URL-encoded on
// AWS (and in moto), plain JSON when written by hand.
func parsePolicy(doc string) (policyDocument, error) {
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		if decoded, err := url.QueryUnescape(doc); err == nil {
			doc = decoded
		}
	}
	var p policyDocument
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return policyDocument{}, fmt.Errorf("the trust policy is not a JSON policy document: %w", err)
	}
	return p, nil
}

// allows reports whether the policy lets req happen: some Allow statement
// matches and no Deny statement does. Unsupported constructs are an error.
func (p policyDocument) allows(req trustRequest) (bool, error) {
	allowed := false
	for _, s := range p.Statement {
		match, err := s.matches(req)
		if err != nil {
			return false, err
		}
		if !match {
			continue
		}
		switch s.Effect {
		case "Deny":
			return false, nil
		case "Allow":
			allowed = true
		}
	}
	return allowed, nil
}

func (s statement) matches(req trustRequest) (bool, error) {
	if len(s.NotPrincipal) > 0 {
		return false, errors.New("NotPrincipal is not supported by the local EKS Auth")
	}
	if !s.principalMatches(req) || !s.actionMatches(req.action) {
		return false, nil
	}
	return conditionsHold(s.Condition, req.keys)
}

func (s statement) principalMatches(req trustRequest) bool {
	var wildcard string
	if json.Unmarshal(s.Principal, &wildcard) == nil {
		return wildcard == "*"
	}
	var byType map[string]oneOrMany[string]
	if json.Unmarshal(s.Principal, &byType) != nil {
		return false
	}
	for typ, values := range byType {
		if typ != req.principalType {
			continue
		}
		for _, v := range values {
			switch {
			case v == "*":
				return true
			case req.principalType == "Service" && strings.EqualFold(v, req.principal):
				return true
			case req.principalType == "AWS" && (v == req.principal || v == req.account || v == rootARN(req.principal, req.account)):
				return true
			}
		}
	}
	return false
}

// rootARN is the account principal of a role ARN's partition.
func rootARN(roleARN, account string) string {
	partition := "aws"
	if parts := strings.SplitN(roleARN, ":", 3); len(parts) == 3 {
		partition = parts[1]
	}
	return "arn:" + partition + ":iam::" + account + ":root"
}

func (s statement) actionMatches(action string) bool {
	if len(s.NotAction) > 0 {
		return !slices.ContainsFunc(s.NotAction, func(p string) bool { return glob(strings.ToLower(p), strings.ToLower(action)) })
	}
	return slices.ContainsFunc(s.Action, func(p string) bool { return glob(strings.ToLower(p), strings.ToLower(action)) })
}

// conditionsHold evaluates a Condition block: every operator, and within
// one every key, must hold.
func conditionsHold(cond map[string]map[string]oneOrMany[string], keys map[string][]string) (bool, error) {
	for op, byKey := range cond {
		for key, want := range byKey {
			ok, err := conditionHolds(op, keys[strings.ToLower(key)], want)
			if err != nil {
				return false, fmt.Errorf("condition %s on %s: %w", op, key, err)
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}

func conditionHolds(op string, have []string, want []string) (bool, error) {
	qualifier := ""
	if q, rest, found := strings.Cut(op, ":"); found {
		qualifier, op = q, rest
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")

	if op == "Null" {
		absent := len(have) == 0
		return slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, "true") == absent }), nil
	}
	match, negated, err := operator(op)
	if err != nil {
		return false, err
	}
	if len(have) == 0 {
		switch {
		case ifExists, qualifier == "ForAllValues":
			return true, nil
		case qualifier == "ForAnyValue":
			return false, nil
		}
		return negated, nil
	}
	anyWant := func(h string) bool { return slices.ContainsFunc(want, func(w string) bool { return match(w, h) }) }
	switch qualifier {
	case "ForAllValues":
		for _, h := range have {
			if anyWant(h) == negated {
				return false, nil
			}
		}
		return true, nil
	case "", "ForAnyValue":
		hit := slices.ContainsFunc(have, anyWant)
		return hit != negated, nil
	default:
		return false, fmt.Errorf("unknown set qualifier %q", qualifier)
	}
}

// operator returns the positive form of a condition operator and whether
// op is its negation.
func operator(op string) (func(want, have string) bool, bool, error) {
	equal := func(w, h string) bool { return w == h }
	fold := strings.EqualFold
	like := func(w, h string) bool { return glob(w, h) }
	boolean := func(w, h string) bool { return strings.EqualFold(w, h) }
	table := map[string]struct {
		match   func(string, string) bool
		negated bool
	}{
		"StringEquals":              {equal, false},
		"StringNotEquals":           {equal, true},
		"StringEqualsIgnoreCase":    {fold, false},
		"StringNotEqualsIgnoreCase": {fold, true},
		"StringLike":                {like, false},
		"StringNotLike":             {like, true},
		"ArnEquals":                 {equal, false},
		"ArnNotEquals":              {equal, true},
		"ArnLike":                   {like, false},
		"ArnNotLike":                {like, true},
		"Bool":                      {boolean, false},
	}
	o, ok := table[op]
	if !ok {
		return nil, false, fmt.Errorf("operator %s is not supported by the local EKS Auth", op)
	}
	return o.match, o.negated, nil
}

// glob matches s against pattern, where * is any run and ? any one character.
func glob(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
