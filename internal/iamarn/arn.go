// Package iamarn parses and validates IAM role ARNs, the one piece of input
// every binding depends on. It is pure: no AWS calls.
package iamarn

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Partitions are the AWS partitions a role can live in.
var Partitions = []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

// Shape is the expected form, for error messages.
const Shape = "arn:PARTITION:iam::ACCOUNT_ID:role/[PATH/]NAME (for example arn:aws:iam::123456789012:role/payments-api)"

// Role is a parsed role ARN.
type Role struct {
	Partition string
	AccountID string
	// Path is the role path, "/" when the ARN has none, else "/a/b/".
	Path string
	// Name is the role name: the last segment of the resource.
	Name string
}

// String renders the ARN.
func (r Role) String() string {
	return fmt.Sprintf("arn:%s:iam::%s:role%s%s", r.Partition, r.AccountID, r.Path, r.Name)
}

var (
	accountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	roleNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	pathPartRE = regexp.MustCompile(`^[\x21-\x7e]+$`)
)

// ParseRole parses an IAM role ARN. Its errors say what is wrong and show the
// expected shape; they are written to be shown to the user as they are.
func ParseRole(s string) (Role, error) {
	if strings.TrimSpace(s) != s {
		return Role{}, fmt.Errorf("%q has leading or trailing whitespace; expected %s", s, Shape)
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return Role{}, fmt.Errorf("%q is not an ARN; expected %s", s, Shape)
	}
	partition, service, region, account, resource := parts[1], parts[2], parts[3], parts[4], parts[5]
	if !slices.Contains(Partitions, partition) {
		return Role{}, fmt.Errorf("%q has unknown partition %q (known: %s); expected %s", s, partition, strings.Join(Partitions, ", "), Shape)
	}
	if service == "sts" && strings.HasPrefix(resource, "assumed-role/") {
		return Role{}, fmt.Errorf("%q is an STS assumed-role session ARN, not a role ARN; use the role's own ARN, %s", s, Shape)
	}
	if service != "iam" {
		return Role{}, fmt.Errorf("%q is an ARN of service %q, not an IAM role; expected %s", s, service, Shape)
	}
	if region != "" {
		return Role{}, fmt.Errorf("%q has region %q, but IAM ARNs have an empty region field; expected %s", s, region, Shape)
	}
	if !accountRE.MatchString(account) {
		return Role{}, fmt.Errorf("%q has account ID %q, which is not 12 digits; expected %s", s, account, Shape)
	}
	kind, rest, ok := strings.Cut(resource, "/")
	if !ok || kind != "role" {
		got := kind
		if got == "" {
			got = resource
		}
		return Role{}, fmt.Errorf("%q names an IAM %q, not a role; expected %s", s, got, Shape)
	}
	segments := strings.Split(rest, "/")
	name := segments[len(segments)-1]
	if !roleNameRE.MatchString(name) {
		return Role{}, fmt.Errorf("%q has role name %q; a role name is 1 to 64 characters of letters, digits and +=,.@_- ; expected %s", s, name, Shape)
	}
	path := "/"
	if len(segments) > 1 {
		for _, seg := range segments[:len(segments)-1] {
			if !pathPartRE.MatchString(seg) {
				return Role{}, fmt.Errorf("%q has an invalid role path %q (empty segment or non-printable character); expected %s", s, "/"+rest, Shape)
			}
		}
		path = "/" + strings.Join(segments[:len(segments)-1], "/") + "/"
		if len(path) > 512 {
			return Role{}, fmt.Errorf("%q has a role path longer than 512 characters", s)
		}
	}
	return Role{Partition: partition, AccountID: account, Path: path, Name: name}, nil
}
