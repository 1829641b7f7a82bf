// Command caller-identity plays the application in a pod: it loads the
// aws-sdk-go-v2 default configuration from its environment alone (no shared
// config or credentials files, as a container has none), calls
// sts:GetCallerIdentity, and prints one JSON object: the identity, or the
// SDK's error. testenv's CallerIdentity runs it with a pod's AWS_*
// environment and nothing else, since the SDK reads the process environment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Result is what the command prints; testenv decodes the same shape.
type Result struct {
	ARN         string `json:"arn,omitempty"`
	Account     string `json:"account,omitempty"`
	UserID      string `json:"userId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// Source is the credential provider that answered (aws.Credentials.Source).
	Source string `json:"source,omitempty"`

	Error      string `json:"error,omitempty"`
	ErrorCode  string `json:"errorCode,omitempty"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := callerIdentity(ctx)
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func callerIdentity(ctx context.Context) Result {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		return failure(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return failure(err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return failure(err)
	}
	return Result{
		ARN: deref(out.Arn), Account: deref(out.Account), UserID: deref(out.UserId),
		AccessKeyID: creds.AccessKeyID, Source: creds.Source,
	}
}

func failure(err error) Result {
	res := Result{Error: err.Error()}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		res.ErrorCode = ae.ErrorCode()
	}
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) {
		res.HTTPStatus = withStatus.HTTPStatusCode()
	}
	return res
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
