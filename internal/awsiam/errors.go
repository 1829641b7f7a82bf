package awsiam

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// errorCode returns the AWS error code in err's chain, or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// IsNotFound reports IAM's NoSuchEntity.
func IsNotFound(err error) bool {
	var nse *types.NoSuchEntityException
	return errors.As(err, &nse)
}

// IsAccessDenied reports that IAM or STS refused an action to valid
// credentials: a missing permission, not a credentials problem.
func IsAccessDenied(err error) bool {
	switch errorCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
		return true
	}
	return false
}

// IsExpiredCredentials reports credentials that were valid once: an
// expired session token or signature time, or an SSO session to renew.
func IsExpiredCredentials(err error) bool {
	var sso *ssocreds.InvalidTokenError
	if errors.As(err, &sso) {
		return true
	}
	switch errorCode(err) {
	case "ExpiredToken", "ExpiredTokenException", "RequestExpired":
		return true
	}
	return false
}

// IsInvalidCredentials reports credentials AWS does not recognise: an
// unknown or deleted access key, a wrong secret key, or keys of another
// partition (GovCloud keys sent to a commercial endpoint, for example).
func IsInvalidCredentials(err error) bool {
	switch errorCode(err) {
	case "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "IncompleteSignature", "AuthFailure":
		return true
	}
	return false
}

// definitive reports an answer that does not change within a run, and so is
// cached: found, does not exist (after the retry window), not allowed, or
// credentials rejected. Throttling that outlasted the retryer, network
// errors and cancellation are asked again by the next binding.
func definitive(err error) bool {
	return err == nil || IsNotFound(err) || IsAccessDenied(err) || IsExpiredCredentials(err) || IsInvalidCredentials(err)
}
