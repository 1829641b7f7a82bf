// Package awsiam is the provider's IAM client: one aws.Config per provider
// instance, and lookups of roles and OIDC providers cached for the life of
// that instance, so a plan costs at most one call per distinct role and per
// distinct OIDC provider.
package awsiam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// RequestTimeout bounds each attempt of an IAM or STS call: the SDK's
// default client has none, and an endpoint (a VPC endpoint, a proxy) that
// accepts and never answers would hang the plan. The retryer counts a
// timed-out attempt as retryable, so a hung endpoint fails a plan after
// MaxAttempts of these.
const RequestTimeout = 15 * time.Second

// Settings are the provider's aws block; empty fields fall back to the
// standard AWS environment, config files and credential chain.
type Settings struct {
	Region      string
	Profile     string
	IAMEndpoint string
	STSEndpoint string
	AssumeRole  *AssumeRole
	// MaxAttempts of the standard retryer (throttling and transient errors).
	MaxAttempts int
	// RequestTimeout overrides the default RequestTimeout of each attempt.
	RequestTimeout time.Duration
}

// AssumeRole makes the provider act as another role for its IAM calls.
type AssumeRole struct {
	RoleARN     string
	SessionName string
	ExternalID  string
}

// Client answers the questions the trust check asks of IAM.
type Client struct {
	iam *iam.Client
	sts *sts.Client
	cfg aws.Config

	mu        sync.Mutex
	roles     map[string]*lookup[*types.Role]
	providers map[string]*lookup[*iam.GetOpenIDConnectProviderOutput]
	caller    *lookup[callerIdentity]
	creds     *lookup[struct{}]

	// Calls counts the IAM and STS requests sent, for tests and benchmarks.
	Calls atomic.Int64
}

// lookup is one cached answer; once makes concurrent plans of bindings that
// share a role wait for a single call.
type lookup[T any] struct {
	once sync.Once
	val  T
	err  error
}

// get runs fetch once and returns its answer ever after.
func (l *lookup[T]) get(fetch func() (T, error)) (T, error) {
	l.once.Do(func() { l.val, l.err = fetch() })
	return l.val, l.err
}

// lookupIn returns the lookup for key in m, adding it when missing.
func lookupIn[T any](mu *sync.Mutex, m map[string]*lookup[T], key string) *lookup[T] {
	mu.Lock()
	defer mu.Unlock()
	l, ok := m[key]
	if !ok {
		l = &lookup[T]{}
		m[key] = l
	}
	return l
}

// New builds the client from settings. It does not call AWS.
func New(ctx context.Context, s Settings) (*Client, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	attempts := s.MaxAttempts
	if attempts == 0 {
		attempts = 8
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
	}))
	timeout := s.RequestTimeout
	if timeout == 0 {
		timeout = RequestTimeout
	}
	opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(timeout)))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// IAM is global; the region only picks the endpoint partition.
		cfg.Region = "us-east-1"
	}
	stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if s.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(s.STSEndpoint)
		}
	})
	if s.AssumeRole != nil && s.AssumeRole.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, s.AssumeRole.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			if s.AssumeRole.SessionName != "" {
				o.RoleSessionName = s.AssumeRole.SessionName
			}
			if s.AssumeRole.ExternalID != "" {
				o.ExternalID = aws.String(s.AssumeRole.ExternalID)
			}
		}))
		stsClient = sts.NewFromConfig(cfg, func(o *sts.Options) {
			if s.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(s.STSEndpoint)
			}
		})
	}
	c := &Client{
		cfg: cfg,
		sts: stsClient,
		iam: iam.NewFromConfig(cfg, func(o *iam.Options) {
			if s.IAMEndpoint != "" {
				o.BaseEndpoint = aws.String(s.IAMEndpoint)
			}
		}),
		roles:     map[string]*lookup[*types.Role]{},
		providers: map[string]*lookup[*iam.GetOpenIDConnectProviderOutput]{},
		caller:    &lookup[callerIdentity]{},
		creds:     &lookup[struct{}]{},
	}
	return c, nil
}

// ErrNoCredentials wraps the failure to find any AWS credentials.
var ErrNoCredentials = errors.New("no AWS credentials")

// CheckCredentials reports ErrNoCredentials when no credentials can be
// retrieved, without calling IAM.
func (c *Client) CheckCredentials(ctx context.Context) error {
	c.creds.once.Do(func() {
		if c.cfg.Credentials == nil {
			c.creds.err = ErrNoCredentials
			return
		}
		if _, err := c.cfg.Credentials.Retrieve(ctx); err != nil {
			c.creds.err = fmt.Errorf("%w: %w", ErrNoCredentials, err)
		}
	})
	return c.creds.err
}

// Role returns the role named name, or an error that IsNotFound recognises.
func (c *Client) Role(ctx context.Context, name string) (*types.Role, error) {
	return lookupIn(&c.mu, c.roles, name).get(func() (*types.Role, error) {
		c.Calls.Add(1)
		out, err := c.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		return out.Role, nil
	})
}

// TrustPolicy returns the role's trust policy, URL-decoded.
func TrustPolicy(r *types.Role) (string, error) {
	if r == nil || r.AssumeRolePolicyDocument == nil {
		return "", errors.New("the role has no trust policy")
	}
	return url.QueryUnescape(*r.AssumeRolePolicyDocument)
}

// OIDCProvider returns the OIDC provider with arn.
func (c *Client) OIDCProvider(ctx context.Context, arn string) (*iam.GetOpenIDConnectProviderOutput, error) {
	return lookupIn(&c.mu, c.providers, arn).get(func() (*iam.GetOpenIDConnectProviderOutput, error) {
		c.Calls.Add(1)
		return c.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	})
}

type callerIdentity struct{ account, partition string }

// Caller returns the account and partition of the caller (STS GetCallerIdentity).
func (c *Client) Caller(ctx context.Context) (account, partition string, err error) {
	c.caller.once.Do(func() {
		c.Calls.Add(1)
		out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			c.caller.err = err
			return
		}
		id := callerIdentity{account: aws.ToString(out.Account), partition: "aws"}
		if parts := strings.SplitN(aws.ToString(out.Arn), ":", 3); len(parts) == 3 {
			id.partition = parts[1]
		}
		c.caller.val = id
	})
	return c.caller.val.account, c.caller.val.partition, c.caller.err
}

// IsNotFound reports IAM's NoSuchEntity.
func IsNotFound(err error) bool {
	var nse *types.NoSuchEntityException
	return errors.As(err, &nse)
}

// IsAccessDenied reports that IAM refused the caller.
func IsAccessDenied(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken":
			return true
		}
	}
	return false
}
