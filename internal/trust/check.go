package trust

import (
	"fmt"
	"slices"
	"strings"
)

// Request is the AssumeRoleWithWebIdentity call a pod of a ServiceAccount makes.
type Request struct {
	// ProviderARN is the IAM OIDC provider of the cluster's issuer.
	ProviderARN string
	// Issuer is the cluster's OIDC issuer URL (or host).
	Issuer string
	// Subject is system:serviceaccount:NAMESPACE:NAME.
	Subject string
	// Audience of the projected token; empty means DefaultAudience.
	Audience string
}

// Outcome of a check.
type Outcome int

// Outcomes.
const (
	// Allowed: a statement allows the request and no Deny matches.
	Allowed Outcome = iota
	// NotAllowed: no statement allows it, or a Deny matches.
	NotAllowed
	// Undetermined: the answer depends on something only known at call
	// time (a condition key or operator the check cannot evaluate).
	Undetermined
)

// Verdict is the answer and its explanation.
type Verdict struct {
	Outcome Outcome
	// Reasons explain a verdict other than Allowed, one sentence each.
	Reasons []string
	// AllowedSubjects are the subjects the policy allows through this
	// provider (patterns as written), to show what it says instead.
	AllowedSubjects []string
	// StatementToAdd is the statement that would allow the request.
	StatementToAdd string
}

type tri int

const (
	no tri = iota
	yes
	unknown
)

// Check decides whether doc lets r assume the role, the way IAM evaluates a
// trust policy: an explicit Deny that matches wins; otherwise some Allow
// statement must match action, principal and every condition. What cannot be
// evaluated is reported, never assumed to pass.
func Check(doc Document, r Request) Verdict {
	if r.Audience == "" {
		r.Audience = DefaultAudience
	}
	host := strings.ToLower(IssuerHost(r.Issuer))
	ev := webIdentityEvaluator(r, host)
	v, allowed, undetermined := ev.decide(doc)
	v.StatementToAdd = RenderStatement(Grant{ProviderARN: r.ProviderARN, Issuer: r.Issuer, Audience: r.Audience, Subjects: []string{r.Subject}})
	if v.Outcome == NotAllowed {
		return v // an explicit Deny
	}
	switch {
	case allowed && !undetermined:
		return Verdict{Outcome: Allowed, AllowedSubjects: v.AllowedSubjects}
	case allowed || undetermined:
		v.Outcome = Undetermined
	default:
		v.Outcome = NotAllowed
		if !ev.anyStatementTrusts(doc) {
			v.Reasons = append([]string{ev.wrongProviderReason(doc)}, v.Reasons...)
		}
	}
	return v
}

// decide runs IAM's evaluation of doc for ev's action: an explicit Deny
// that matches ends it (Outcome NotAllowed, allowed and undetermined
// false); otherwise it reports whether some Allow matches for sure, and
// whether some statement cannot be decided, with the reasons.
func (ev evaluator) decide(doc Document) (v Verdict, allowed, undetermined bool) {
	for i, st := range doc.Statement {
		name := statementName(i, st)
		if st.NotPrincipal != nil {
			v.Reasons = append(v.Reasons, name+" uses NotPrincipal, which role trust policies do not support; it was ignored")
			continue
		}
		if !ev.actionMatches(st) || !ev.principalMatches(st) {
			continue
		}
		cond, notes := ev.conditions(st)
		switch strings.ToLower(st.Effect) {
		case "deny":
			switch cond {
			case yes:
				return Verdict{Outcome: NotAllowed, Reasons: append(v.Reasons, name+" explicitly denies it (Effect Deny)")}, false, false
			case unknown:
				undetermined = true
				v.Reasons = append(v.Reasons, name+" may deny it: "+strings.Join(notes, "; "))
			}
		case "allow":
			v.AllowedSubjects = append(v.AllowedSubjects, ev.subjects(st)...)
			switch cond {
			case yes:
				allowed = true
			case unknown:
				undetermined = true
				v.Reasons = append(v.Reasons, name+" cannot be evaluated here: "+strings.Join(notes, "; "))
			default:
				v.Reasons = append(v.Reasons, name+" trusts "+ev.trustee+", but "+strings.Join(notes, "; "))
			}
		default:
			v.Reasons = append(v.Reasons, fmt.Sprintf("%s has Effect %q, which is neither Allow nor Deny", name, st.Effect))
		}
	}
	return v, allowed, undetermined
}

func statementName(i int, st Statement) string {
	if st.Sid != "" {
		return fmt.Sprintf("statement %d (Sid %q)", i+1, st.Sid)
	}
	return fmt.Sprintf("statement %d", i+1)
}

// evaluator evaluates statements for one call: its action, who makes it
// (principal), and the values of the condition keys it carries (context).
type evaluator struct {
	action string
	// trustee names the principal in messages ("the provider").
	trustee   string
	principal func(p *Principal) bool
	// context returns the call's value for a condition key, whether the
	// call carries the key, and whether that can be decided at all.
	context func(key string) (value string, present bool, decidable bool)
	// what names the value a key holds in messages ("subject").
	what func(key string) string
	// absentKeyNote explains a condition on a key the call lacks.
	absentKeyNote func(op, key string) string
	// subjectKey is the key whose allowed values Verdict lists.
	subjectKey string
	// providerARN is the OIDC provider, for IRSA's messages.
	providerARN string
}

// webIdentityEvaluator is AssumeRoleWithWebIdentity by a pod's token.
func webIdentityEvaluator(r Request, host string) evaluator {
	return evaluator{
		action:  Action,
		trustee: "the provider",
		principal: func(p *Principal) bool {
			return slices.ContainsFunc(p.Federated, func(f string) bool { return strings.EqualFold(strings.TrimSpace(f), r.ProviderARN) })
		},
		context: func(key string) (string, bool, bool) {
			k := strings.ToLower(key)
			switch {
			case k == host+":sub":
				return r.Subject, true, true
			case k == host+":aud":
				return r.Audience, true, true
			case strings.HasPrefix(k, "aws:") || strings.HasPrefix(k, "sts:"):
				return "", false, false
			}
			return "", false, true
		},
		what: func(key string) string {
			if strings.HasSuffix(strings.ToLower(key), ":aud") {
				return "audience"
			}
			return "subject"
		},
		absentKeyNote: func(op, key string) string {
			k := strings.ToLower(key)
			if i := strings.LastIndex(k, ":"); i > 0 && (strings.HasSuffix(k, ":sub") || strings.HasSuffix(k, ":aud")) {
				return fmt.Sprintf("condition key %s belongs to issuer %s, not to this cluster's issuer %s", key, key[:i], host)
			}
			return fmt.Sprintf("condition %s on %s: the token carries no such key (this cluster's keys are %s:sub and %s:aud)", op, key, host, host)
		},
		subjectKey:  host + ":sub",
		providerARN: r.ProviderARN,
	}
}

func (ev evaluator) actionMatches(st Statement) bool {
	switch {
	case len(st.Action) > 0:
		return slices.ContainsFunc(st.Action, func(a string) bool { return glob(strings.ToLower(a), strings.ToLower(ev.action)) })
	case len(st.NotAction) > 0:
		return !slices.ContainsFunc(st.NotAction, func(a string) bool { return glob(strings.ToLower(a), strings.ToLower(ev.action)) })
	}
	return false
}

func (ev evaluator) principalMatches(st Statement) bool {
	p := st.Principal
	if p == nil {
		return false
	}
	if p.Wildcard || slices.Contains(p.AWS, "*") {
		return true
	}
	return ev.principal(p)
}

func (ev evaluator) anyStatementTrusts(doc Document) bool {
	for _, st := range doc.Statement {
		if strings.EqualFold(st.Effect, "allow") && ev.actionMatches(st) && ev.principalMatches(st) {
			return true
		}
	}
	return false
}

func (ev evaluator) wrongProviderReason(doc Document) string {
	var trusted []string
	actionOK := false
	for _, st := range doc.Statement {
		if !strings.EqualFold(st.Effect, "allow") {
			continue
		}
		if ev.actionMatches(st) {
			actionOK = true
		}
		if st.Principal != nil {
			trusted = append(trusted, st.Principal.Federated...)
		}
	}
	if !actionOK {
		return "no Allow statement grants " + ev.action
	}
	if len(trusted) == 0 {
		return fmt.Sprintf("no Allow statement trusts the cluster's OIDC provider %s (the policy names no Federated principal)", ev.providerARN)
	}
	return fmt.Sprintf("no Allow statement trusts the cluster's OIDC provider %s; the policy trusts %s", ev.providerARN, strings.Join(trusted, ", "))
}

// conditions evaluates every condition of st (all must hold) and explains
// those that do not or cannot.
func (ev evaluator) conditions(st Statement) (tri, []string) {
	result := yes
	var notes []string
	for _, op := range sortedKeys(st.Condition) {
		for _, key := range sortedKeys(st.Condition[op]) {
			values := st.Condition[op][key]
			r, note := ev.condition(op, key, values)
			switch r {
			case no:
				result = no
				notes = append(notes, note)
			case unknown:
				if result == yes {
					result = unknown
				}
				notes = append(notes, note)
			}
		}
	}
	if result == unknown {
		// Something that does hold cannot rescue what cannot be decided,
		// but a definite "no" anywhere decides the statement.
		return unknown, notes
	}
	return result, notes
}

func (ev evaluator) condition(op, key string, values Values) (tri, string) {
	base, setOp, ifExists := splitOperator(op)
	val, present, decidable := ev.context(key)
	if !decidable {
		return unknown, fmt.Sprintf("condition %s on %s depends on the call, not on the ServiceAccount", op, key)
	}
	if !present {
		switch {
		case strings.EqualFold(base, "Null"):
			return boolTri(slices.ContainsFunc(values, func(s string) bool { return strings.EqualFold(s, "true") })), fmt.Sprintf("%s requires %s to be present", op, key)
		case ifExists || setOp == "forallvalues" || isNegated(base):
			return yes, ""
		}
		return no, ev.absentKeyNote(op, key)
	}

	var match func(pattern string) bool
	switch strings.ToLower(base) {
	case "stringequals", "stringnotequals":
		match = func(p string) bool { return p == val }
	case "stringequalsignorecase", "stringnotequalsignorecase":
		match = func(p string) bool { return strings.EqualFold(p, val) }
	case "stringlike", "stringnotlike":
		match = func(p string) bool { return glob(p, val) }
	case "null":
		return boolTri(slices.ContainsFunc(values, func(s string) bool { return strings.EqualFold(s, "false") })), fmt.Sprintf("%s requires %s to be absent", op, key)
	default:
		return unknown, fmt.Sprintf("condition operator %s on %s is not evaluated by this check", op, key)
	}
	hit := slices.ContainsFunc(values, match)
	if isNegated(base) {
		hit = !hit
	}
	if hit {
		return yes, ""
	}
	what := ev.what(key)
	if isNegated(base) {
		return no, fmt.Sprintf("%s on %s excludes the %s %s", op, key, what, val)
	}
	return no, fmt.Sprintf("%s on %s allows %s %s, not %s", op, key, what, strings.Join(values, ", "), val)
}

// subjects lists the subject patterns st allows for this issuer.
func (ev evaluator) subjects(st Statement) []string {
	var out []string
	for op, keys := range st.Condition {
		base, _, _ := splitOperator(op)
		if isNegated(base) || strings.EqualFold(base, "Null") {
			continue
		}
		for key, values := range keys {
			if ev.subjectKey != "" && strings.EqualFold(key, ev.subjectKey) {
				out = append(out, values...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitOperator splits ForAnyValue:StringLikeIfExists into its parts.
func splitOperator(op string) (base, setOp string, ifExists bool) {
	base = op
	if prefix, rest, ok := strings.Cut(op, ":"); ok {
		setOp, base = strings.ToLower(prefix), rest
	}
	if strings.HasSuffix(base, "IfExists") {
		base, ifExists = strings.TrimSuffix(base, "IfExists"), true
	}
	return base, setOp, ifExists
}

func isNegated(base string) bool {
	return strings.Contains(strings.ToLower(base), "not")
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// glob matches IAM's wildcards: * any run of characters, ? one character.
// It backtracks only to the last star, so it is linear-ish, not exponential.
func glob(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
