// Package eksauth is the local environment's stand-in for the EKS Auth API
// (AssumeRoleForPodIdentity) and for the EKS Pod Identity Agent that calls
// it from every node, so that a pod given container credentials by the
// webhook gets working AWS credentials through the real SDK chain.
//
// The wire format is the one github.com/aws/aws-sdk-go-v2/service/eksauth
// sends and expects (REST-JSON, signing name eks-auth; read from its
// serializers.go, deserializers.go and types/errors.go), and the agent's is
// what credentials/endpointcreds of the same SDK reads, with the plain-text
// errors aws/eks-pod-identity-agent answers. That module is not served by the
// Go module proxy, so Client speaks it with the SDK's own public pieces
// (SigV4 signer, REST-JSON error decoding) instead of the generated client.
//
// The handlers take small interfaces (Associations, a TokenReview client, STS
// and IAM). In the environment the associations are the EKS API emulator's
// as they have propagated (PropagatedAssociations), so EKS Auth learns of
// an association when the webhook does.
package eksauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/smithy-go"
)

// Audience is the token audience EKS Pod Identity uses, and the value of
// the response's audience field ("always pods.eks.amazonaws.com").
const Audience = "pods.eks.amazonaws.com"

// ServicePrincipal is the principal a Pod Identity role's trust policy admits.
const ServicePrincipal = "pods.eks.amazonaws.com"

// SigningName is the SigV4 service name of the EKS Auth API.
const SigningName = "eks-auth"

// Error codes of AssumeRoleForPodIdentity (the SDK's types/errors.go), and
// the two the AWS front door answers for a request that is not signed for
// this service.
const (
	CodeAccessDenied        = "AccessDeniedException"
	CodeExpiredToken        = "ExpiredTokenException"
	CodeInternalServer      = "InternalServerException"
	CodeInvalidParameter    = "InvalidParameterException"
	CodeInvalidRequest      = "InvalidRequestException"
	CodeInvalidToken        = "InvalidTokenException"
	CodeResourceNotFound    = "ResourceNotFoundException"
	CodeServiceUnavailable  = "ServiceUnavailableException"
	CodeThrottling          = "ThrottlingException"
	CodeMissingAuthToken    = "MissingAuthenticationTokenException"
	CodeInvalidSignature    = "InvalidSignatureException"
	errorTypeHeader         = "X-Amzn-ErrorType"
	requestIDHeader         = "X-Amzn-RequestId"
	assumeRoleForPodPathFmt = "/clusters/%s/assume-role-for-pod-identity"
)

// assumeRoleRequest is the operation's JSON body. The newer SDKs also send
// eksNodeName, instanceId and zone; they are accepted and not used.
type assumeRoleRequest struct {
	Token string `json:"token"`
}

// AssumeRoleForPodIdentityOutput is the operation's JSON response: every
// member the SDK marks required.
type AssumeRoleForPodIdentityOutput struct {
	Subject                Subject                `json:"subject"`
	Audience               string                 `json:"audience"`
	PodIdentityAssociation PodIdentityAssociation `json:"podIdentityAssociation"`
	AssumedRoleUser        AssumedRoleUser        `json:"assumedRoleUser"`
	Credentials            Credentials            `json:"credentials"`
}

// Subject is the ServiceAccount the credentials are for.
type Subject struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
}

// PodIdentityAssociation names the association that granted the role.
type PodIdentityAssociation struct {
	AssociationARN string `json:"associationArn"`
	AssociationID  string `json:"associationId"`
}

// AssumedRoleUser is STS's assumed-role identity.
type AssumedRoleUser struct {
	ARN          string `json:"arn"`
	AssumeRoleID string `json:"assumeRoleId"`
}

// Credentials are temporary SigV4 credentials; Expiration goes on the wire
// as epoch seconds, the REST-JSON default the SDK decodes.
type Credentials struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	Expiration      EpochTime `json:"expiration"`
}

// EpochTime is a timestamp written and read as a JSON number of seconds.
type EpochTime struct{ time.Time }

// MarshalJSON writes whole epoch seconds.
func (t EpochTime) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(t.Unix(), 10)), nil
}

// UnmarshalJSON reads a JSON number, as the SDK does (a string is an error).
func (t *EpochTime) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected Timestamp to be a JSON Number: %w", err)
	}
	f, err := n.Float64()
	if err != nil {
		return err
	}
	sec := int64(f)
	t.Time = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	return nil
}

// APIError is an error answer of the EKS Auth API: the code the SDK maps to
// one of its types (types.InvalidTokenException, ...), the message, and the
// HTTP status. It implements smithy.APIError like the SDK's error types.
type APIError struct {
	Code       string
	Message    string
	StatusCode int
	RequestID  string
}

var _ smithy.APIError = (*APIError)(nil)

func (e *APIError) Error() string            { return e.Code + ": " + e.Message }
func (e *APIError) ErrorCode() string        { return e.Code }
func (e *APIError) ErrorMessage() string     { return e.Message }
func (e *APIError) HTTPStatusCode() int      { return e.StatusCode }
func (e *APIError) ServiceRequestID() string { return e.RequestID }

// ErrorFault is the fault class the SDK gives each code.
func (e *APIError) ErrorFault() smithy.ErrorFault {
	switch e.Code {
	case CodeInternalServer, CodeServiceUnavailable:
		return smithy.FaultServer
	}
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// statusFor is the HTTP status EKS Auth answers each error with (the API
// reference lists 400 for the token, parameter, request and access errors).
func statusFor(code string) int {
	switch code {
	case CodeResourceNotFound:
		return http.StatusNotFound
	case CodeThrottling:
		return http.StatusTooManyRequests
	case CodeInternalServer:
		return http.StatusInternalServerError
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case CodeMissingAuthToken, CodeInvalidSignature:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

func apiErrorf(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), StatusCode: statusFor(code)}
}

// writeError answers err the way REST-JSON services do: the code in
// X-Amzn-ErrorType and in the body's __type, the message in message.
func writeError(w http.ResponseWriter, err *APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(errorTypeHeader, err.Code)
	w.WriteHeader(err.StatusCode)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": err.Code, "message": err.Message})
}
