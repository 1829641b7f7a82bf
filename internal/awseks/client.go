// Package awseks is the provider's EKS client: the cluster's OIDC issuer
// and its EKS Pod Identity associations. Associations are listed once per
// provider instance (one run), 100 to a page, and shared between bindings,
// as the namespace snapshots are; what this process writes replaces its
// entry, so a binding never decides on an association it changed itself.
//
// The SDK's standard retryer (from the provider's aws.Config) retries
// throttling and 5xx; this package adds the one retry EKS needs on top: a
// role IAM has not propagated yet.
package awseks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go"

	"github.com/irsa-dev/terraform-provider-irsa/internal/memo"
)

const (
	// RolePropagationWindow bounds how long a Create or Update is tried
	// again while EKS answers "Role provided in the request does not
	// exist": IAM propagates a new role within seconds, usually.
	RolePropagationWindow = 60 * time.Second
	// DeletionPropagationWindow bounds how long a Create is tried again
	// while EKS still counts an association deleted moments ago.
	DeletionPropagationWindow = 60 * time.Second
	// pageSize is ListPodIdentityAssociations' largest page.
	pageSize = 100
)

// Association is one EKS Pod Identity association, as Describe shows it.
type Association struct {
	ID, ARN                   string
	Namespace, ServiceAccount string
	Settings
	// OwnerARN is set when an EKS add-on owns the association.
	OwnerARN string
}

// Settings are what a binding sets on an association.
type Settings struct {
	RoleARN            string
	TargetRoleARN      string
	DisableSessionTags bool
	// Policy is the session policy; "" for none.
	Policy string
	Tags   map[string]string
}

// Summary is an association as List shows it: no role.
type Summary struct {
	ID, ARN                   string
	Namespace, ServiceAccount string
	OwnerARN                  string
}

// Client is one cluster's associations and identity.
type Client struct {
	api     *eks.Client
	cluster string
	// Calls counts the EKS requests sent, for tests and benchmarks.
	Calls atomic.Int64

	// listing is the run's one listing of the cluster's associations.
	listing memo.Value[map[key]Summary]
	// cluster's identity, from DescribeCluster.
	identity memo.Value[clusterIdentity]

	mu sync.Mutex
	// overrides are (namespace, ServiceAccount) this process created or
	// deleted an association for since the listing (nil: deleted).
	overrides map[key]*Summary
}

type key struct{ namespace, serviceAccount string }

type clusterIdentity struct{ issuer, arn string }

// New is the client of cluster, from the provider's AWS configuration.
// endpoint overrides the EKS endpoint (else AWS_ENDPOINT_URL_EKS, else
// the region's).
func New(cfg aws.Config, endpoint, cluster string) *Client {
	c := &Client{cluster: cluster, overrides: map[key]*Summary{}}
	c.api = eks.NewFromConfig(cfg, func(o *eks.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.APIOptions = append(o.APIOptions, countCalls(&c.Calls))
	})
	return c
}

// Cluster is the cluster's name.
func (c *Client) Cluster() string { return c.cluster }

// ErrNotFound is an association or cluster EKS does not know.
var ErrNotFound = errors.New("not found")

// ExistsError is a Create refused because the ServiceAccount has an
// association already.
type ExistsError struct {
	// ID is the existing association's, as EKS's message names it.
	ID  string
	Err error
}

func (e *ExistsError) Error() string { return "an association exists already: " + e.ID }
func (e *ExistsError) Unwrap() error { return e.Err }

// Issuer is the cluster's OIDC issuer (DescribeCluster), asked once.
func (c *Client) Issuer(ctx context.Context) (string, error) {
	id, err := c.describe(ctx)
	if err != nil {
		return "", err
	}
	return id.issuer, nil
}

// ARN is the cluster's ARN (DescribeCluster), asked once.
func (c *Client) ARN(ctx context.Context) (string, error) {
	id, err := c.describe(ctx)
	if err != nil {
		return "", err
	}
	return id.arn, nil
}

// describe is the cluster's identity, asked once: a cluster EKS does not
// know, or one without an OIDC issuer, is an answer kept for the run, as
// any other failure EKS returned; only one cut short by its caller's
// context is asked again.
func (c *Client) describe(ctx context.Context) (clusterIdentity, error) {
	return c.identity.Get(ctx, memo.Always, func(ctx context.Context) (clusterIdentity, error) {
		out, err := c.api.DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(c.cluster)})
		switch {
		case isNotFound(err):
			return clusterIdentity{}, fmt.Errorf("EKS cluster %s: %w", c.cluster, ErrNotFound)
		case err != nil:
			return clusterIdentity{}, err
		case out.Cluster == nil || out.Cluster.Identity == nil || out.Cluster.Identity.Oidc == nil:
			return clusterIdentity{}, fmt.Errorf("EKS cluster %s reports no OIDC issuer", c.cluster)
		}
		return clusterIdentity{issuer: aws.ToString(out.Cluster.Identity.Oidc.Issuer), arn: aws.ToString(out.Cluster.Arn)}, nil
	})
}

// Find is the association of (namespace, serviceAccount), from the run's
// one listing of the cluster's associations; nil when there is none.
func (c *Client) Find(ctx context.Context, namespace, serviceAccount string) (*Summary, error) {
	k := key{namespace, serviceAccount}
	c.mu.Lock()
	s, ok := c.overrides[k]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	// A failed listing is listed again by the next caller.
	all, err := c.listing.Get(ctx, memo.Successes, c.listAll)
	if err != nil {
		return nil, fmt.Errorf("list the Pod Identity associations of EKS cluster %s: %w", c.cluster, err)
	}
	if s, ok := all[k]; ok {
		return &s, nil
	}
	return nil, nil
}

func (c *Client) listAll(ctx context.Context) (map[key]Summary, error) {
	all := map[key]Summary{}
	p := eks.NewListPodIdentityAssociationsPaginator(c.api, &eks.ListPodIdentityAssociationsInput{
		ClusterName: aws.String(c.cluster), MaxResults: aws.Int32(pageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Associations {
			s := summary(a)
			all[key{s.Namespace, s.ServiceAccount}] = s
		}
	}
	return all, nil
}

// FindFresh asks EKS, bypassing the listing: for an import, and before a
// create, where an answer from earlier in the run is not enough.
func (c *Client) FindFresh(ctx context.Context, namespace, serviceAccount string) (*Summary, error) {
	out, err := c.api.ListPodIdentityAssociations(ctx, &eks.ListPodIdentityAssociationsInput{
		ClusterName: aws.String(c.cluster), Namespace: aws.String(namespace), ServiceAccount: aws.String(serviceAccount),
	})
	if err != nil {
		return nil, err
	}
	for _, a := range out.Associations {
		if s := summary(a); s.Namespace == namespace && s.ServiceAccount == serviceAccount {
			return &s, nil
		}
	}
	return nil, nil
}

// Describe is association id; ErrNotFound when EKS knows none.
func (c *Client) Describe(ctx context.Context, id string) (*Association, error) {
	out, err := c.api.DescribePodIdentityAssociation(ctx, &eks.DescribePodIdentityAssociationInput{
		ClusterName: aws.String(c.cluster), AssociationId: aws.String(id),
	})
	if isNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return association(out.Association), nil
}

// Create makes the association of (namespace, serviceAccount), trying
// again while IAM propagates the role. A ServiceAccount that has one is an
// *ExistsError.
func (c *Client) Create(ctx context.Context, namespace, serviceAccount string, s Settings) (*Association, error) {
	in := &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String(c.cluster), Namespace: aws.String(namespace), ServiceAccount: aws.String(serviceAccount),
		RoleArn: aws.String(s.RoleARN), DisableSessionTags: aws.Bool(s.DisableSessionTags),
		// One token for every attempt: a Create that reached EKS but whose
		// answer was lost is not made twice.
		ClientRequestToken: aws.String(fmt.Sprintf("irsa-%d", time.Now().UnixNano())),
	}
	if s.TargetRoleARN != "" {
		in.TargetRoleArn = aws.String(s.TargetRoleARN)
	}
	if s.Policy != "" {
		in.Policy = aws.String(s.Policy)
	}
	if len(s.Tags) > 0 {
		in.Tags = s.Tags
	}
	var out *eks.CreatePodIdentityAssociationOutput
	deadline := time.Now().Add(DeletionPropagationWindow)
	for {
		err := whileRolePropagates(ctx, func() (err error) {
			out, err = c.api.CreatePodIdentityAssociation(ctx, in)
			return err
		})
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			if err != nil {
				return nil, err
			}
			break
		}
		exists := &ExistsError{ID: existingID(aws.ToString(inUse.Message)), Err: err}
		// EKS answers 409 for an association deleted moments ago, until
		// the deletion propagated: one Describe no longer finds is that,
		// not someone else's.
		if _, derr := c.Describe(ctx, exists.ID); !errors.Is(derr, ErrNotFound) || time.Now().After(deadline) {
			return nil, exists
		}
		select {
		case <-ctx.Done():
			return nil, exists
		case <-time.After(time.Second):
		}
	}
	a := association(out.Association)
	c.remember(namespace, serviceAccount, &Summary{ID: a.ID, ARN: a.ARN, Namespace: namespace, ServiceAccount: serviceAccount})
	return a, nil
}

// Update sets s on association id (its tags excepted: Update has none),
// trying again while IAM propagates the role.
func (c *Client) Update(ctx context.Context, id string, s Settings) (*Association, error) {
	in := &eks.UpdatePodIdentityAssociationInput{
		ClusterName: aws.String(c.cluster), AssociationId: aws.String(id),
		RoleArn: aws.String(s.RoleARN), DisableSessionTags: aws.Bool(s.DisableSessionTags),
		// "" removes them.
		TargetRoleArn: aws.String(s.TargetRoleARN), Policy: aws.String(s.Policy),
	}
	var out *eks.UpdatePodIdentityAssociationOutput
	err := whileRolePropagates(ctx, func() (err error) {
		out, err = c.api.UpdatePodIdentityAssociation(ctx, in)
		return err
	})
	if isNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return association(out.Association), nil
}

// Delete deletes association id; one already gone is no error.
func (c *Client) Delete(ctx context.Context, id, namespace, serviceAccount string) error {
	_, err := c.api.DeletePodIdentityAssociation(ctx, &eks.DeletePodIdentityAssociationInput{
		ClusterName: aws.String(c.cluster), AssociationId: aws.String(id),
	})
	if err != nil && !isNotFound(err) {
		return err
	}
	c.remember(namespace, serviceAccount, nil)
	return nil
}

func (c *Client) remember(namespace, serviceAccount string, s *Summary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.overrides[key{namespace, serviceAccount}] = s
}

// whileRolePropagates runs call until EKS stops answering that the role
// does not exist, for at most RolePropagationWindow.
func whileRolePropagates(ctx context.Context, call func() error) error {
	deadline := time.Now().Add(RolePropagationWindow)
	backoff := time.Second
	for {
		err := call()
		if !IsRoleNotPropagated(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 8*time.Second)
	}
}

// IsRoleNotPropagated reports EKS's answer for a role IAM does not show
// it yet (or at all).
func IsRoleNotPropagated(err error) bool {
	var invalid *types.InvalidParameterException
	return errors.As(err, &invalid) && strings.Contains(aws.ToString(invalid.Message), "Role provided in the request does not exist")
}

// IsTrustInvalid reports EKS's refusal of a role whose trust policy does
// not admit pods.eks.amazonaws.com.
func IsTrustInvalid(err error) bool {
	var invalid *types.InvalidParameterException
	return errors.As(err, &invalid) && strings.Contains(aws.ToString(invalid.Message), "Trust policy of the role provided is invalid")
}

// IsAccessDenied reports EKS refusing an action to valid credentials.
func IsAccessDenied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode() == "AccessDeniedException" || apiErr.ErrorCode() == "AccessDenied")
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

var associationID = regexp.MustCompile(`\ba-[a-z0-9]{17}\b`)

// existingID is the association ID in a 409's message, "" if none.
func existingID(message string) string { return associationID.FindString(message) }

func summary(a types.PodIdentityAssociationSummary) Summary {
	return Summary{
		ID: aws.ToString(a.AssociationId), ARN: aws.ToString(a.AssociationArn),
		Namespace: aws.ToString(a.Namespace), ServiceAccount: aws.ToString(a.ServiceAccount), OwnerARN: aws.ToString(a.OwnerArn),
	}
}

func association(a *types.PodIdentityAssociation) *Association {
	if a == nil {
		return &Association{}
	}
	return &Association{
		ID: aws.ToString(a.AssociationId), ARN: aws.ToString(a.AssociationArn),
		Namespace: aws.ToString(a.Namespace), ServiceAccount: aws.ToString(a.ServiceAccount),
		OwnerARN: aws.ToString(a.OwnerArn),
		Settings: Settings{
			RoleARN: aws.ToString(a.RoleArn), TargetRoleARN: aws.ToString(a.TargetRoleArn),
			DisableSessionTags: aws.ToBool(a.DisableSessionTags), Policy: aws.ToString(a.Policy), Tags: a.Tags,
		},
	}
}

// SetTags makes association arn's tags want (TagResource for what is new or
// changed, UntagResource for what is gone): Update has no tags.
func (c *Client) SetTags(ctx context.Context, arn string, have, want map[string]string) error {
	add := map[string]string{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			add[k] = v
		}
	}
	var remove []string
	for k := range have {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	if len(add) > 0 {
		if _, err := c.api.TagResource(ctx, &eks.TagResourceInput{ResourceArn: aws.String(arn), Tags: add}); err != nil {
			return err
		}
	}
	if len(remove) > 0 {
		if _, err := c.api.UntagResource(ctx, &eks.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: remove}); err != nil {
			return err
		}
	}
	return nil
}
