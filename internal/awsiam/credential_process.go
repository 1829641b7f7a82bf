package awsiam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
)

// CredentialProcessError is a credential_process that did not hand out
// credentials, described in words. The SDK's own error quotes the
// process's whole stdout, which is where credentials are, and no pattern
// can tell a secret of unusual shape from the text around it: none of what
// the process printed is kept here, not even in a wrapped error.
type CredentialProcessError struct {
	// Cause says what was wrong, without any of the process's output.
	Cause string
	// timedOut keeps errors.Is(err, context.DeadlineExceeded) working.
	timedOut bool
}

func (e *CredentialProcessError) Error() string {
	return "credential_process " + e.Cause + " (what it printed is not shown, as it may hold credentials: run " +
		"the command yourself to see it)"
}

// Is lets a timed-out process count as a deadline, as the SDK's error did.
func (e *CredentialProcessError) Is(target error) bool {
	return e.timedOut && target == context.DeadlineExceeded
}

// describedCredentials hands out its provider's credentials and replaces a
// failing credential_process's error by its description. It wraps the
// whole chain, so every path to the credentials (the check, each signed
// IAM and STS call, the base credentials of an assumed role) sees only
// the description.
type describedCredentials struct {
	aws.CredentialsProvider
}

func (p describedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, describeCredentialProcess(err)
	}
	return creds, nil
}

// withDescribedFailures wraps credentials, keeping them cached: the SDK's
// clients add a cache only around a provider that is not one.
func withDescribedFailures(creds aws.CredentialsProvider) aws.CredentialsProvider {
	if creds == nil {
		return nil
	}
	return aws.NewCredentialsCache(describedCredentials{creds})
}

// The messages of processcreds.ProviderError (aws-sdk-go-v2/credentials),
// recognised by their fixed start. TestCredentialProcess_describesEachFailure
// runs the SDK's provider against scripts for each, so a change of wording
// in the SDK fails a test instead of falling back silently.
const (
	sdkParseFailed   = "parse failed of process output: "
	sdkTimedOut      = "credential process timed out"
	sdkRunFailed     = "error in credential_process"
	sdkWrongVersion  = "wrong version in process output"
	sdkNoAccessKey   = "missing AccessKeyId in process output"
	sdkNoSecretKey   = "missing SecretAccessKey in process output"
	sdkEmptyCommand  = "failed to prepare command"
	processOutputFmt = "one JSON document with Version 1, AccessKeyId and SecretAccessKey expected"
)

// describeCredentialProcess returns err, or, when a credential_process
// failed, a CredentialProcessError in its place.
func describeCredentialProcess(err error) error {
	var pe *processcreds.ProviderError
	if !errors.As(err, &pe) || pe.Err == nil {
		return err
	}
	msg := pe.Err.Error()
	switch {
	case strings.HasPrefix(msg, sdkParseFailed):
		return &CredentialProcessError{Cause: describeOutput(pe.Err)}
	case strings.HasPrefix(msg, sdkTimedOut):
		return &CredentialProcessError{Cause: "did not finish within its timeout and was stopped", timedOut: true}
	case strings.HasPrefix(msg, sdkRunFailed):
		var exit *exec.ExitError
		if errors.As(pe.Err, &exit) {
			return &CredentialProcessError{Cause: fmt.Sprintf("exited with status %d", exit.ExitCode())}
		}
		return &CredentialProcessError{Cause: "could not be run"}
	case strings.HasPrefix(msg, sdkWrongVersion):
		return &CredentialProcessError{Cause: "printed JSON whose Version is not 1"}
	case strings.HasPrefix(msg, sdkNoAccessKey):
		return &CredentialProcessError{Cause: "printed JSON without an AccessKeyId"}
	case strings.HasPrefix(msg, sdkNoSecretKey):
		return &CredentialProcessError{Cause: "printed JSON without a SecretAccessKey"}
	case strings.HasPrefix(msg, sdkEmptyCommand):
		return &CredentialProcessError{Cause: "is set to an empty command"}
	}
	return &CredentialProcessError{Cause: "failed in a way the provider does not recognise"}
}

// describeOutput says what is wrong with output the SDK could not parse.
// The output is known only from the SDK's message ("parse failed of
// process output: OUTPUT, error: JSONERROR"); it is measured, never quoted.
func describeOutput(parseErr error) string {
	jsonErr := errors.Unwrap(parseErr)
	out := strings.TrimPrefix(parseErr.Error(), sdkParseFailed)
	if jsonErr == nil || !strings.HasSuffix(out, ", error: "+jsonErr.Error()) {
		return "printed output that is not " + processOutputFmt
	}
	out = strings.TrimSuffix(out, ", error: "+jsonErr.Error())
	if strings.TrimSpace(out) == "" {
		return "printed nothing on stdout; " + processOutputFmt
	}
	lines := strings.Count(strings.TrimRight(out, "\n"), "\n") + 1
	printed, are := fmt.Sprintf("printed %d lines", lines), "are"
	if lines == 1 {
		printed, are = "printed 1 line", "is"
	}
	var typeErr *json.UnmarshalTypeError
	var timeErr *time.ParseError
	switch {
	case errors.As(jsonErr, &timeErr):
		return printed + " whose Expiration is not an RFC 3339 time; " + processOutputFmt
	case errors.As(jsonErr, &typeErr):
		// Value is the JSON kind ("string", "number 12"): the kind only.
		kind, _, _ := strings.Cut(typeErr.Value, " ")
		return fmt.Sprintf("%s in which %s is a JSON %s, not a %s; %s", printed, typeErr.Field, kind, typeErr.Type, processOutputFmt)
	}
	docs, rest := jsonDocuments(out)
	switch {
	case docs == 0:
		return printed + " that " + are + " not JSON; " + processOutputFmt
	case rest:
		return fmt.Sprintf("%s: %s followed by text that is not JSON; %s", printed, plural(docs, "JSON document"), processOutputFmt)
	default:
		return fmt.Sprintf("%s holding %s; %s", printed, plural(docs, "JSON document"), processOutputFmt)
	}
}

// jsonDocuments counts the JSON values at the start of out, and tells
// whether anything that is not JSON follows them.
func jsonDocuments(out string) (int, bool) {
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		switch {
		case errors.Is(err, io.EOF):
			return n, false
		case err != nil:
			return n, true
		}
		n++
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "one " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
