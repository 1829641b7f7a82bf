package eksapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// ErrNoSuchRole is what a RoleChecker returns for a role IAM does not have.
var ErrNoSuchRole = errors.New("no such role")

// RoleChecker looks a role up in IAM.
type RoleChecker interface {
	// AssumeRolePolicy returns the trust policy (JSON) of the role whose
	// ARN is exactly roleARN, or ErrNoSuchRole.
	AssumeRolePolicy(ctx context.Context, roleARN string) (string, error)
}

// IAMRoles is a RoleChecker that asks an IAM API (moto_server in the
// environment) with GetRole.
type IAMRoles struct{ Client *iam.Client }

// AssumeRolePolicy implements RoleChecker.
func (c IAMRoles) AssumeRolePolicy(ctx context.Context, roleARN string) (string, error) {
	name, ok := roleName(roleARN)
	if !ok {
		return "", ErrNoSuchRole
	}
	out, err := c.Client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nse *iamtypes.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", ErrNoSuchRole
	}
	if err != nil {
		return "", fmt.Errorf("IAM GetRole %s: %w", name, err)
	}
	// A role of that name with another path or in another account is not
	// the role the request names.
	if aws.ToString(out.Role.Arn) != roleARN {
		return "", ErrNoSuchRole
	}
	// GetRole returns the document URL-encoded.
	doc, err := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
	if err != nil {
		return "", fmt.Errorf("decode the trust policy of %s: %w", roleARN, err)
	}
	return doc, nil
}

// roleName is the last segment of a role ARN
// (arn:PARTITION:iam::ACCOUNT:role/PATH/NAME).
func roleName(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", false
	}
	name := path.Base(parts[5])
	return name, name != "" && name != "role"
}

// checkRole refuses a role IAM does not have and one whose trust policy
// does not admit EKS Pod Identity, with AWS's InvalidParameterException.
func (s *Server) checkRole(r *http.Request, cluster, roleARN string) error {
	if s.cfg.Roles == nil {
		return nil
	}
	doc, err := s.cfg.Roles.AssumeRolePolicy(r.Context(), roleARN)
	if errors.Is(err, ErrNoSuchRole) {
		return invalidParameter(cluster, msgRoleMissing)
	}
	if err != nil {
		return err // a ServerException: IAM did not answer
	}
	if !trustsPodIdentity(doc) {
		return invalidParameter(cluster, msgTrustInvalid)
	}
	return nil
}

// PodIdentityPrincipal is the service principal a Pod Identity role trusts.
const PodIdentityPrincipal = "pods.eks.amazonaws.com"

// trustsPodIdentity reports whether a trust policy allows
// pods.eks.amazonaws.com both sts:AssumeRole and sts:TagSession, the two
// actions EKS Pod Identity needs; AWS refuses other roles at Create
// (public reports: a web-identity-only role, and a service-principal role
// without sts:TagSession, were both refused). The actions may come from
// separate statements. Conditions are not evaluated (they narrow who may
// assume, which EKS judges at AssumeRole time), nor Deny statements:
// whether AWS weighs either at Create is not confirmed.
func trustsPodIdentity(doc string) bool {
	var policy struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &policy) != nil {
		return false
	}
	var statements []statement
	if json.Unmarshal(policy.Statement, &statements) != nil {
		var one statement
		if json.Unmarshal(policy.Statement, &one) != nil {
			return false
		}
		statements = []statement{one}
	}
	var assume, tag bool
	for _, st := range statements {
		if st.Effect != "Allow" || !st.Principal.hasService(PodIdentityPrincipal) {
			continue
		}
		assume = assume || st.Action.allows("sts:AssumeRole")
		tag = tag || st.Action.allows("sts:TagSession")
	}
	return assume && tag
}

type statement struct {
	Effect    string
	Principal principal
	Action    stringList
}

// principal is a policy principal: "*" or {"Service": "x" | ["x", ...], ...}.
type principal struct {
	any      bool
	services stringList
}

func (p *principal) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		p.any = s == "*"
		return nil
	}
	var m struct{ Service stringList }
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	p.services = m.Service
	return nil
}

func (p principal) hasService(name string) bool {
	return p.any || slices.Contains(p.services, name)
}

// stringList is a policy value that is one string or a list of them.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = []string{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*l = list
	return nil
}

// allows reports whether one of the action patterns (IAM wildcards * and
// ?, case-insensitive) matches action.
func (l stringList) allows(action string) bool {
	for _, pattern := range l {
		if ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(action)); ok {
			return true
		}
	}
	return false
}
