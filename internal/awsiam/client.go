// Package awsiam is the provider's IAM client: one aws.Config per provider
// instance, and lookups of roles and OIDC providers cached for the life of
// that instance, so a plan costs at most one call per distinct role and per
// distinct OIDC provider.
//
// Calls go to the partition of the thing asked about: a GovCloud role is
// looked up at GovCloud's IAM endpoint, signed for a GovCloud region, unless
// an endpoint is configured explicitly.
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
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsa-dev/terraform-provider-irsa/internal/memo"
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
	// EKSEndpoint is for the EKS client built from this one's Config.
	EKSEndpoint string
	AssumeRole  *AssumeRole
	// MaxAttempts of the standard retryer (throttling and transient errors).
	MaxAttempts int
	// NotFoundWindow is how long NoSuchEntity is asked again before it is
	// believed: DefaultNotFoundWindow when zero, no retry when negative.
	NotFoundWindow time.Duration
	// HTTPClient replaces the SDK's HTTP client (tests record requests).
	HTTPClient aws.HTTPClient
	// RequestTimeout overrides the default RequestTimeout of each attempt.
	RequestTimeout time.Duration
}

// AssumeRole makes the provider act as another role for its IAM calls.
type AssumeRole struct {
	RoleARN     string
	SessionName string
	ExternalID  string
}

// Identity is who the provider's credentials are (STS GetCallerIdentity).
type Identity struct {
	Account   string
	Partition string
	ARN       string
}

// Client answers the questions the trust check asks of IAM.
type Client struct {
	cfg      aws.Config
	settings Settings
	window   time.Duration

	mu         sync.Mutex
	partitions map[string]*partitionClient
	creds      memo.Value[struct{}]

	// Calls counts the IAM and STS requests sent, for tests and benchmarks.
	Calls atomic.Int64
}

// partitionClient is the IAM and STS clients of one partition, with their
// caches: an account ID is unique only within a partition.
type partitionClient struct {
	iam       *iam.Client
	sts       *sts.Client
	roles     memo.Map[string, *types.Role]
	providers memo.Map[string, *iam.GetOpenIDConnectProviderOutput]
	caller    memo.Value[Identity]
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
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			// The client-side retry quota would make a throttled plan of
			// many bindings fail fast after ~100 retries; the attempts per
			// call and the backoff already bound the load.
			o.RateLimiter = ratelimit.None
		})
	}))
	timeout := s.RequestTimeout
	if timeout == 0 {
		timeout = RequestTimeout
	}
	if s.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(s.HTTPClient))
	} else {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(timeout)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	cfg.Credentials = withDescribedFailures(cfg.Credentials)
	c := &Client{cfg: cfg, settings: s, window: s.NotFoundWindow, partitions: map[string]*partitionClient{}}
	if c.window == 0 {
		c.window = DefaultNotFoundWindow
	}
	if s.AssumeRole != nil && s.AssumeRole.RoleARN != "" {
		// The role to assume is in the credentials' own partition.
		stsClient := c.newSTS(RegionFor(c.HomePartition(), cfg.Region))
		cfg.Credentials = withDescribedFailures(stscreds.NewAssumeRoleProvider(stsClient, s.AssumeRole.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			if s.AssumeRole.SessionName != "" {
				o.RoleSessionName = s.AssumeRole.SessionName
			}
			if s.AssumeRole.ExternalID != "" {
				o.ExternalID = aws.String(s.AssumeRole.ExternalID)
			}
		}))
		c.cfg = cfg
	}
	return c, nil
}

// HomePartition is the partition of the configured region ("aws" without
// one): where the credentials are expected to be valid.
func (c *Client) HomePartition() string { return PartitionOf(c.cfg.Region) }

func (c *Client) newSTS(region string) *sts.Client {
	return sts.NewFromConfig(c.cfg, func(o *sts.Options) {
		o.Region = region
		if c.settings.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.settings.STSEndpoint)
		}
	})
}

// partition returns the clients for partition, built on first use.
func (c *Client) partition(partition string) *partitionClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.partitions[partition]; ok {
		return p
	}
	region := RegionFor(partition, c.cfg.Region)
	p := &partitionClient{
		sts: c.newSTS(region),
		iam: iam.NewFromConfig(c.cfg, func(o *iam.Options) {
			o.Region = region
			if c.settings.IAMEndpoint != "" {
				o.BaseEndpoint = aws.String(c.settings.IAMEndpoint)
			}
		}),
	}
	c.partitions[partition] = p
	return p
}

// ErrNoCredentials wraps the failure to find any AWS credentials.
var ErrNoCredentials = errors.New("no AWS credentials")

// CheckCredentials reports ErrNoCredentials when no credentials can be
// retrieved, without calling IAM. A failure is kept for the run (a failing
// credential_process is not run again for every binding), unless the
// context ended it.
func (c *Client) CheckCredentials(ctx context.Context) error {
	_, err := c.creds.Get(ctx, memo.Always, func(ctx context.Context) (struct{}, error) {
		if c.cfg.Credentials == nil {
			return struct{}{}, ErrNoCredentials
		}
		if _, err := c.cfg.Credentials.Retrieve(ctx); err != nil {
			return struct{}{}, fmt.Errorf("%w: %w", ErrNoCredentials, err)
		}
		return struct{}{}, nil
	})
	return err
}

// Credentials returns the provider's resolved credentials, for redaction.
func (c *Client) Credentials(ctx context.Context) (aws.Credentials, error) {
	if c.cfg.Credentials == nil {
		return aws.Credentials{}, ErrNoCredentials
	}
	return c.cfg.Credentials.Retrieve(ctx)
}

// Role returns the role named name in partition, or an error that
// IsNotFound recognises once NoSuchEntity has lasted the retry window.
func (c *Client) Role(ctx context.Context, partition, name string) (*types.Role, error) {
	p := c.partition(partition)
	return p.roles.Get(ctx, name, definitive, func(ctx context.Context) (*types.Role, error) {
		return retryNotFound(ctx, c.window, func() (*types.Role, error) {
			c.Calls.Add(1)
			out, err := p.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
			if err != nil {
				return nil, err
			}
			return out.Role, nil
		})
	})
}

// TrustPolicy returns the role's trust policy, URL-decoded.
func TrustPolicy(r *types.Role) (string, error) {
	if r == nil || r.AssumeRolePolicyDocument == nil {
		return "", errors.New("the role has no trust policy")
	}
	return url.QueryUnescape(*r.AssumeRolePolicyDocument)
}

// OIDCProvider returns the OIDC provider with arn, asked in the ARN's
// partition.
func (c *Client) OIDCProvider(ctx context.Context, arn string) (*iam.GetOpenIDConnectProviderOutput, error) {
	partition := "aws"
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 {
		partition = parts[1]
	}
	p := c.partition(partition)
	return p.providers.Get(ctx, arn, definitive, func(ctx context.Context) (*iam.GetOpenIDConnectProviderOutput, error) {
		return retryNotFound(ctx, c.window, func() (*iam.GetOpenIDConnectProviderOutput, error) {
			c.Calls.Add(1)
			return p.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
		})
	})
}

// Caller returns who the credentials are, asking STS in partition. Keys
// of another partition get InvalidClientTokenId there.
func (c *Client) Caller(ctx context.Context, partition string) (Identity, error) {
	p := c.partition(partition)
	return p.caller.Get(ctx, definitive, func(ctx context.Context) (Identity, error) {
		c.Calls.Add(1)
		out, err := p.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return Identity{}, err
		}
		id := Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), Partition: partition}
		if parts := strings.SplitN(id.ARN, ":", 3); len(parts) == 3 {
			id.Partition = parts[1]
		}
		return id, nil
	})
}

// Config is the client's AWS configuration (region, credentials, retryer,
// HTTP client): what the provider's other AWS clients are built from, so
// that every call follows the same aws block.
func (c *Client) Config() aws.Config { return c.cfg }
