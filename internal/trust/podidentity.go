package trust

import (
	"fmt"
	"slices"
	"strings"
)

// EKS Pod Identity: EKS Auth assumes the role for a pod as the service
// pods.eks.amazonaws.com, with sts:AssumeRole and sts:TagSession, passing
// session tags that name the cluster, namespace, ServiceAccount and pod.
// Trust policies narrow it with aws:RequestTag/<tag> conditions.

// PodIdentityService is the principal a Pod Identity role trusts.
const PodIdentityService = "pods.eks.amazonaws.com"

// PodIdentityActions are what EKS Auth calls; the role must allow both.
var PodIdentityActions = []string{"sts:AssumeRole", "sts:TagSession"}

// The session tags EKS sets that a binding decides.
const (
	TagClusterARN     = "eks-cluster-arn"
	TagClusterName    = "eks-cluster-name"
	TagNamespace      = "kubernetes-namespace"
	TagServiceAccount = "kubernetes-service-account"
)

// podTags are session tags whose value depends on the pod, not the binding.
var podTags = []string{"kubernetes-pod-name", "kubernetes-pod-uid"}

// PodIdentityRequest is the call EKS Auth makes for a pod of a binding.
type PodIdentityRequest struct {
	ClusterName, ClusterARN   string
	Namespace, ServiceAccount string
	// NoSessionTags is the association's disable_session_tags: EKS then
	// passes no tags, and aws:RequestTag conditions find none.
	NoSessionTags bool
}

func (r PodIdentityRequest) tags() map[string]string {
	if r.NoSessionTags {
		return nil
	}
	return map[string]string{
		TagClusterARN: r.ClusterARN, TagClusterName: r.ClusterName,
		TagNamespace: r.Namespace, TagServiceAccount: r.ServiceAccount,
	}
}

func podIdentityEvaluator(r PodIdentityRequest, action string) evaluator {
	tags := r.tags()
	return evaluator{
		action:  action,
		trustee: PodIdentityService,
		principal: func(p *Principal) bool {
			return slices.ContainsFunc(p.Service, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), PodIdentityService) })
		},
		context: func(key string) (string, bool, bool) {
			k := strings.ToLower(key)
			if tag, ok := strings.CutPrefix(k, "aws:requesttag/"); ok {
				if slices.Contains(podTags, tag) {
					return "", false, false // the pod's, known only at call time
				}
				v, present := tags[tag]
				return v, present, true
			}
			if strings.HasPrefix(k, "aws:") || strings.HasPrefix(k, "sts:") {
				return "", false, false
			}
			return "", false, true
		},
		what: func(key string) string {
			_, tag, _ := strings.Cut(key, "/")
			return "session tag " + tag
		},
		absentKeyNote: func(op, key string) string {
			if r.NoSessionTags && strings.HasPrefix(strings.ToLower(key), "aws:requesttag/") {
				return fmt.Sprintf("condition %s on %s needs a session tag, but the association disables session tags", op, key)
			}
			return fmt.Sprintf("condition %s on %s: EKS sets no such key", op, key)
		},
	}
}

// CheckPodIdentity decides whether doc lets EKS Auth assume the role for
// pods of r: both actions allowed, no Deny matching, every condition on a
// session tag admitting this binding's values. What depends on the pod or
// the call (kubernetes-pod-name, aws:SourceArn) makes it Undetermined,
// never Allowed.
func CheckPodIdentity(doc Document, r PodIdentityRequest) Verdict {
	out := Verdict{StatementToAdd: RenderPodIdentityStatement(PodIdentityGrant{})}
	undetermined := false
	for _, action := range PodIdentityActions {
		ev := podIdentityEvaluator(r, action)
		v, allowed, und := ev.decide(doc)
		out.Reasons = append(out.Reasons, v.Reasons...)
		switch {
		case v.Outcome == NotAllowed:
			out.Outcome = NotAllowed
			return out
		case !allowed && !und:
			out.Outcome = NotAllowed
			if !ev.anyStatementTrusts(doc) {
				out.Reasons = append([]string{fmt.Sprintf("no Allow statement lets %s call %s", PodIdentityService, action)}, out.Reasons...)
			}
			return out
		case !allowed || und:
			undetermined = true
		}
	}
	if undetermined {
		out.Outcome = Undetermined
		return out
	}
	return Verdict{Outcome: Allowed}
}

// PodIdentityGrant is what a rendered Pod Identity statement allows: EKS
// Pod Identity for every ServiceAccount, or, with fields set, only for
// those session tags (ServiceAccount may use * and ?).
type PodIdentityGrant struct {
	ClusterName, ClusterARN   string
	Namespace, ServiceAccount string
}

// PodIdentityStatement renders the statement that allows g.
func (g PodIdentityGrant) Statement() Statement {
	st := Statement{
		Effect:    "Allow",
		Principal: &Principal{Service: Values{PodIdentityService}},
		Action:    Values(slices.Clone(PodIdentityActions)),
	}
	cond := map[string]map[string]Values{}
	add := func(tag, value string) {
		if value == "" {
			return
		}
		op := "StringEquals"
		if strings.ContainsAny(value, "*?") {
			op = "StringLike"
		}
		if cond[op] == nil {
			cond[op] = map[string]Values{}
		}
		cond[op]["aws:RequestTag/"+tag] = Values{value}
	}
	add(TagClusterName, g.ClusterName)
	add(TagClusterARN, g.ClusterARN)
	add(TagNamespace, g.Namespace)
	add(TagServiceAccount, g.ServiceAccount)
	if len(cond) > 0 {
		st.Condition = cond
	}
	return st
}

// RenderPodIdentityStatement is g's statement as indented JSON, for
// messages.
func RenderPodIdentityStatement(g PodIdentityGrant) string {
	s, err := renderJSON(g.Statement())
	if err != nil {
		return ""
	}
	return s
}

// PodIdentityStatements are the statements that let EKS Pod Identity
// assume a role for each of serviceAccounts (NAMESPACE/NAME, wildcards
// allowed) of cluster: one statement each, narrowed by session tags. With
// no ServiceAccounts, or untagged (associations that disable session
// tags), the one statement AWS documents, unconditioned.
func PodIdentityStatements(cluster string, serviceAccounts []string, untagged bool) []Statement {
	if untagged || len(serviceAccounts) == 0 {
		return []Statement{PodIdentityGrant{}.Statement()}
	}
	out := make([]Statement, 0, len(serviceAccounts))
	for _, sa := range serviceAccounts {
		ns, name, _ := strings.Cut(sa, "/")
		out = append(out, PodIdentityGrant{ClusterName: cluster, Namespace: ns, ServiceAccount: name}.Statement())
	}
	return out
}

// RenderDocument is a trust policy of statements as stable, indented JSON.
func RenderDocument(statements ...Statement) (string, error) {
	return renderJSON(Document{Version: "2012-10-17", Statement: statements})
}
