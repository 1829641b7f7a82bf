package eksauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// AssumeRoler is what the agent needs of an EKS Auth client (*Client).
type AssumeRoler interface {
	AssumeRoleForPodIdentity(ctx context.Context, clusterName, token string) (*AssumeRoleForPodIdentityOutput, error)
}

// Agent stands in for the EKS Pod Identity Agent of a node: GET
// /v1/credentials with the pod's token in Authorization, answered with
// credentials from EKS Auth in the container-credentials format the SDKs
// read (AccessKeyId, SecretAccessKey, Token, AccountId, Expiration in RFC
// 3339). Like aws/eks-pod-identity-agent it checks the address it was called
// through and that the token parses and is within its lifetime before
// calling EKS Auth, and answers failures in plain text with EKS Auth's HTTP
// status. It does not cache: every request reaches EKS Auth (the real agent
// keeps credentials per pod for hours; see the README).
type Agent struct {
	ClusterName string
	EKSAuth     AssumeRoler
	// TargetHosts are the addresses the agent may be called through
	// (169.254.170.23 and fd00:ec2::23 on EKS; the stand-in's bind address here).
	TargetHosts []string
	// Now is the clock of the claim checks; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// CredentialsPath is where the agent serves credentials.
const CredentialsPath = "/v1/credentials"

// containerCredentials is the agent's answer, the shape of
// credentials/endpointcreds' GetCredentialsOutput.
type containerCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	AccountID       string `json:"AccountId,omitempty"`
	Expiration      string `json:"Expiration"`
}

// Handler serves CredentialsPath.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(CredentialsPath, a.serveCredentials)
	mux.HandleFunc("GET "+AdminPrefix+"healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

func (a *Agent) serveCredentials(w http.ResponseWriter, r *http.Request) {
	creds, refused := a.credentials(r)
	if refused != nil {
		a.logger().Info("credentials refused", "status", refused.status, "reason", refused.message)
		http.Error(w, refused.message, refused.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(creds)
}

// refusal is an answer other than credentials: the HTTP status and the
// plain-text message the real agent words it with.
type refusal struct {
	status  int
	message string
}

func refuse(status int, format string, args ...any) *refusal {
	return &refusal{status: status, message: fmt.Sprintf(format, args...)}
}

func (a *Agent) credentials(r *http.Request) (*containerCredentials, *refusal) {
	if err := a.checkTargetHost(r.Host); err != nil {
		return nil, err
	}
	token := r.Header.Get("Authorization")
	if token == "" {
		return nil, refuse(http.StatusBadRequest, "Service account token cannot be empty")
	}
	if err := a.checkClaims(token); err != nil {
		return nil, err
	}
	out, err := a.EKSAuth.AssumeRoleForPodIdentity(r.Context(), a.ClusterName, token)
	if err != nil {
		return nil, &refusal{status: errorStatus(err), message: describe(err)}
	}
	return &containerCredentials{
		AccessKeyID:     out.Credentials.AccessKeyID,
		SecretAccessKey: out.Credentials.SecretAccessKey,
		Token:           out.Credentials.SessionToken,
		AccountID:       accountOf(out.AssumedRoleUser.ARN),
		Expiration:      out.Credentials.Expiration.UTC().Format(time.RFC3339Nano),
	}, nil
}

// checkTargetHost refuses a request sent to another address than the
// agent's, as the real agent does (the Host header, port dropped).
func (a *Agent) checkTargetHost(host string) *refusal {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if len(a.TargetHosts) == 0 || slices.Contains(a.TargetHosts, host) {
		return nil
	}
	return refuse(http.StatusForbidden, "Access Denied. Called agent through invalid address, please use either %v address not %s", a.TargetHosts, host)
}

// checkClaims is the agent's rough token check: a JWT whose exp, nbf and iat
// say it is usable now. EKS Auth does the real validation.
func (a *Agent) checkClaims(token string) *refusal {
	const unparsable = "Service account token cannot be parsed: token is malformed: %v"
	const invalid = "Service account token failed basic claim validations: token has invalid claims: %s"
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return refuse(http.StatusBadRequest, unparsable, "token contains an invalid number of segments")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return refuse(http.StatusBadRequest, unparsable, err)
	}
	var claims struct {
		Exp, Nbf, Iat *json.Number
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return refuse(http.StatusBadRequest, unparsable, err)
	}
	now := a.now().Unix()
	at := func(n *json.Number) (int64, bool) {
		if n == nil {
			return 0, false
		}
		v, err := n.Int64()
		return v, err == nil
	}
	if exp, ok := at(claims.Exp); ok && now >= exp {
		return refuse(http.StatusBadRequest, invalid, "token is expired")
	}
	if nbf, ok := at(claims.Nbf); ok && now < nbf {
		return refuse(http.StatusBadRequest, invalid, "token is not valid yet")
	}
	if iat, ok := at(claims.Iat); ok && now < iat {
		return refuse(http.StatusBadRequest, invalid, "token used before issued")
	}
	return nil
}

// errorStatus passes EKS Auth's HTTP status on; anything else is a 500.
func errorStatus(err error) int {
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) && withStatus.HTTPStatusCode() != 0 {
		return withStatus.HTTPStatusCode()
	}
	return http.StatusInternalServerError
}

// describe words an EKS Auth failure as the real agent does:
// "[request id]: (Code): message, fault: client".
func describe(err error) string {
	var parts []string
	var withID interface{ ServiceRequestID() string }
	if errors.As(err, &withID) {
		parts = append(parts, "["+withID.ServiceRequestID()+"]")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		parts = append(parts, fmt.Sprintf("(%s): %s, fault: %s", ae.ErrorCode(), ae.ErrorMessage(), ae.ErrorFault()))
	}
	if len(parts) == 0 {
		return err.Error()
	}
	return strings.Join(parts, ": ")
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) logger() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}
