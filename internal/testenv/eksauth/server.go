package eksauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// STS is the part of the STS client EKS Auth uses (*sts.Client).
type STS interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// IAM is the part of the IAM client EKS Auth uses to read trust policies
// (*iam.Client).
type IAM interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

// Session tag keys EKS sets on the role session (the EKS user guide).
const (
	TagClusterARN     = "eks-cluster-arn"
	TagClusterName    = "eks-cluster-name"
	TagNamespace      = "kubernetes-namespace"
	TagServiceAccount = "kubernetes-service-account"
	TagPodName        = "kubernetes-pod-name"
	TagPodUID         = "kubernetes-pod-uid"
)

// AdminPrefix is where the test-only endpoints live, beside the API.
const AdminPrefix = "/_testenv/"

// Server is the EKS Auth API of one cluster.
type Server struct {
	ClusterName  string
	ClusterARN   string
	Account      string
	Associations Associations
	TokenReviews authenticationv1client.TokenReviewInterface
	STS          STS
	IAM          IAM
	// Now is the clock that judges token expiry; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger

	mu       sync.Mutex
	sessions map[string]Session
}

// Session is what the server recorded of one set of credentials it issued,
// for tests: moto accepts session tags but keeps none of them.
type Session struct {
	AccessKeyID    string            `json:"accessKeyId"`
	RoleARN        string            `json:"roleArn"`
	TargetRoleARN  string            `json:"targetRoleArn,omitempty"`
	SessionName    string            `json:"sessionName"`
	Tags           map[string]string `json:"tags"`
	AssociationID  string            `json:"associationId"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"serviceAccount"`
}

// Handler serves the API and the test endpoints (AdminPrefix).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /clusters/{clusterName}/assume-role-for-pod-identity", s.serveAssumeRole)
	mux.HandleFunc("GET "+AdminPrefix+"healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET "+AdminPrefix+"sessions/{accessKeyId}", s.serveSession)
	return mux
}

func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess, ok := s.sessions[r.PathValue("accessKeyId")]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sess)
}

func (s *Server) serveAssumeRole(w http.ResponseWriter, r *http.Request) {
	requestID := newUUID()
	w.Header().Set(requestIDHeader, requestID)
	out, apiErr := s.assumeRole(r)
	log := s.logger().With("requestId", requestID, "cluster", r.PathValue("clusterName"))
	if apiErr != nil {
		log.Info("AssumeRoleForPodIdentity refused", "code", apiErr.Code, "message", apiErr.Message)
		writeError(w, apiErr)
		return
	}
	log.Info("AssumeRoleForPodIdentity", "namespace", out.Subject.Namespace, "serviceAccount", out.Subject.ServiceAccount,
		"association", out.PodIdentityAssociation.AssociationID, "arn", out.AssumedRoleUser.ARN)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) assumeRole(r *http.Request) (*AssumeRoleForPodIdentityOutput, *APIError) {
	ctx := r.Context()
	if err := checkSigned(r); err != nil {
		return nil, err
	}
	if cluster := r.PathValue("clusterName"); cluster != s.ClusterName {
		return nil, apiErrorf(CodeResourceNotFound, "No cluster found for name: %s.", cluster)
	}
	var body assumeRoleRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		return nil, apiErrorf(CodeInvalidRequest, "The request body is not valid JSON: %v", err)
	}
	if body.Token == "" {
		return nil, apiErrorf(CodeInvalidParameter, "token is required")
	}

	subject, err := s.review(ctx, body.Token)
	if err != nil {
		return nil, err
	}
	assoc, found, findErr := s.Associations.Find(ctx, s.ClusterName, subject.namespace, subject.serviceAccount)
	if findErr != nil {
		return nil, apiErrorf(CodeInternalServer, "look up the Pod Identity association: %v", findErr)
	}
	if !found {
		return nil, apiErrorf(CodeResourceNotFound, "No Pod Identity Association found for service account %s in namespace %s of cluster %s.",
			subject.serviceAccount, subject.namespace, s.ClusterName)
	}

	var tags map[string]string
	if !assoc.DisableSessionTags {
		tags = map[string]string{
			TagClusterARN:     s.ClusterARN,
			TagClusterName:    s.ClusterName,
			TagNamespace:      subject.namespace,
			TagServiceAccount: subject.serviceAccount,
			TagPodName:        subject.podName,
			TagPodUID:         subject.podUID,
		}
	}
	sessionName := roleSessionName(s.ClusterName, subject.podName)
	// The session policy limits the credentials the pod gets: those of
	// the target role when there is one (not confirmed), else the role's.
	firstPolicy := assoc.Policy
	if assoc.TargetRoleARN != "" {
		firstPolicy = ""
	}
	creds, user, apiErr := s.assume(ctx, assoc.RoleARN, trustRequest{
		principalType: "Service", principal: ServicePrincipal,
		keys: s.requestKeys(tags, ""),
	}, assumeParams{sessionName: sessionName, tags: tags, policy: firstPolicy})
	if apiErr != nil {
		return nil, apiErr
	}
	if assoc.TargetRoleARN != "" {
		// Role chaining: the association's role assumes the target role
		// (the cross-account form), with the first session's credentials
		// and the association's externalId.
		first := credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
		creds, user, apiErr = s.assume(ctx, assoc.TargetRoleARN, trustRequest{
			principalType: "AWS", principal: assoc.RoleARN, account: accountOf(assoc.RoleARN),
			keys: s.requestKeys(tags, assoc.ExternalID),
		}, assumeParams{sessionName: sessionName, tags: tags, externalID: assoc.ExternalID, policy: assoc.Policy, as: first})
		if apiErr != nil {
			return nil, apiErr
		}
	}

	s.record(Session{
		AccessKeyID: creds.AccessKeyID, RoleARN: assoc.RoleARN, TargetRoleARN: assoc.TargetRoleARN,
		SessionName: sessionName, Tags: tags, AssociationID: assoc.AssociationID,
		Namespace: subject.namespace, ServiceAccount: subject.serviceAccount,
	})
	return &AssumeRoleForPodIdentityOutput{
		Subject:                Subject{Namespace: subject.namespace, ServiceAccount: subject.serviceAccount},
		Audience:               Audience,
		PodIdentityAssociation: PodIdentityAssociation{AssociationARN: assoc.AssociationARN, AssociationID: assoc.AssociationID},
		AssumedRoleUser:        user,
		Credentials:            creds,
	}, nil
}

// checkSigned refuses a request that is not SigV4-signed for eks-auth, as
// the AWS front door does; the signature itself is not verified (the
// environment has no secret keys to check it against).
func checkSigned(r *http.Request) *APIError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return apiErrorf(CodeMissingAuthToken, "Missing Authentication Token")
	}
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !ok {
		return apiErrorf(CodeInvalidSignature, "Authorization header requires a SigV4 Credential parameter.")
	}
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[3] != SigningName {
		return apiErrorf(CodeInvalidSignature, "Credential should be scoped to correct service: '%s'.", SigningName)
	}
	return nil
}

// tokenSubject is who a reviewed token belongs to.
type tokenSubject struct {
	namespace, serviceAccount, podName, podUID string
}

// review validates token with a TokenReview against the cluster's API server
// for the Pod Identity audience. A token the API server rejects is expired
// when its exp claim has passed, otherwise invalid.
func (s *Server) review(ctx context.Context, token string) (tokenSubject, *APIError) {
	tr, err := s.TokenReviews.Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{Audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return tokenSubject{}, apiErrorf(CodeInternalServer, "review the token with the cluster's API server: %v", err)
	}
	if !tr.Status.Authenticated {
		if exp, ok := unverifiedExpiry(token); ok && !exp.After(s.now()) {
			return tokenSubject{}, apiErrorf(CodeExpiredToken, "The service account token expired at %s.", exp.UTC().Format(time.RFC3339))
		}
		return tokenSubject{}, apiErrorf(CodeInvalidToken, "The service account token is not valid for audience %s: %s", Audience, tr.Status.Error)
	}
	if !slices.Contains(tr.Status.Audiences, Audience) {
		return tokenSubject{}, apiErrorf(CodeInvalidToken, "The service account token is not valid for audience %s.", Audience)
	}
	ns, sa, ok := serviceAccountOf(tr.Status.User.Username)
	if !ok {
		return tokenSubject{}, apiErrorf(CodeInvalidToken, "The token does not belong to a service account.")
	}
	podName := first(tr.Status.User.Extra["authentication.kubernetes.io/pod-name"])
	podUID := first(tr.Status.User.Extra["authentication.kubernetes.io/pod-uid"])
	if podName == "" || podUID == "" {
		return tokenSubject{}, apiErrorf(CodeInvalidToken, "The service account token is not bound to a pod.")
	}
	return tokenSubject{namespace: ns, serviceAccount: sa, podName: podName, podUID: podUID}, nil
}

// assumeParams are the AssumeRole parameters beside the role: the session
// name, its tags, the external ID and session policy (when set), and the
// credentials to call with (nil: EKS Auth's own).
type assumeParams struct {
	sessionName string
	tags        map[string]string
	externalID  string
	policy      string
	as          aws.CredentialsProvider
}

// assume checks that role's trust policy admits req for sts:AssumeRole (and
// sts:TagSession when there are tags), then assumes it.
func (s *Server) assume(ctx context.Context, roleARN string, req trustRequest, p assumeParams) (Credentials, AssumedRoleUser, *APIError) {
	tags := p.tags
	denied := func(format string, args ...any) (Credentials, AssumedRoleUser, *APIError) {
		return Credentials{}, AssumedRoleUser{}, apiErrorf(CodeAccessDenied, format, args...)
	}
	name, ok := roleName(roleARN)
	if !ok {
		return denied("%s is not an IAM role ARN.", roleARN)
	}
	role, err := s.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nse *iamtypes.NoSuchEntityException
	if errors.As(err, &nse) {
		return denied("Unable to assume role %s: the role does not exist.", roleARN)
	}
	if err != nil {
		return Credentials{}, AssumedRoleUser{}, apiErrorf(CodeInternalServer, "read role %s: %v", roleARN, err)
	}
	policy, err := parsePolicy(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		return denied("Unable to assume role %s: %v", roleARN, err)
	}
	actions := []string{"sts:AssumeRole"}
	if len(tags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	for _, action := range actions {
		req.action = action
		allowed, err := policy.allows(req)
		if err != nil {
			return denied("Unable to evaluate the trust policy of %s: %v", roleARN, err)
		}
		if !allowed {
			return denied("The trust policy of role %s does not allow %s %s to perform %s.", roleARN, req.principalType, req.principal, action)
		}
	}

	in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(p.sessionName)}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, ststypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if p.externalID != "" {
		in.ExternalId = aws.String(p.externalID)
	}
	if p.policy != "" {
		in.Policy = aws.String(p.policy)
	}
	var optFns []func(*sts.Options)
	if p.as != nil {
		optFns = append(optFns, func(o *sts.Options) { o.Credentials = p.as })
	}
	out, err := s.STS.AssumeRole(ctx, in, optFns...)
	if err != nil {
		return Credentials{}, AssumedRoleUser{}, apiErrorf(CodeInternalServer, "sts:AssumeRole %s: %v", roleARN, err)
	}
	return Credentials{
			AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
			SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
			SessionToken:    aws.ToString(out.Credentials.SessionToken),
			Expiration:      EpochTime{aws.ToTime(out.Credentials.Expiration)},
		}, AssumedRoleUser{
			ARN:          aws.ToString(out.AssumedRoleUser.Arn),
			AssumeRoleID: aws.ToString(out.AssumedRoleUser.AssumedRoleId),
		}, nil
}

// requestKeys are the condition keys of the AssumeRole request EKS Auth
// makes: the session tags, the cluster as source (confused-deputy
// conditions) and the external ID, if any.
func (s *Server) requestKeys(tags map[string]string, externalID string) map[string][]string {
	keys := map[string][]string{
		"aws:sourceaccount": {s.Account},
		"aws:sourcearn":     {s.ClusterARN},
	}
	if externalID != "" {
		keys["sts:externalid"] = []string{externalID}
	}
	for k, v := range tags {
		keys["aws:requesttag/"+strings.ToLower(k)] = []string{v}
		keys["aws:tagkeys"] = append(keys["aws:tagkeys"], k)
	}
	return keys
}

func (s *Server) record(sess Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[string]Session{}
	}
	s.sessions[sess.AccessKeyID] = sess
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// roleSessionName follows the documented eks-CLUSTER-POD-UUID form, cut to
// STS's 64 characters.
func roleSessionName(cluster, pod string) string {
	name := fmt.Sprintf("eks-%s-%s-%s", cluster, pod, newUUID())
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// unverifiedExpiry reads a JWT's exp claim without checking the signature:
// only used to word the refusal of a token the API server rejected.
func unverifiedExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	sec, err := claims.Exp.Int64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

func serviceAccountOf(username string) (string, string, bool) {
	rest, ok := strings.CutPrefix(username, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok := strings.Cut(rest, ":")
	return ns, name, ok && ns != "" && name != ""
}

// roleName is the last path segment of a role ARN.
func roleName(arn string) (string, bool) {
	_, resource, ok := strings.Cut(arn, ":role/")
	if !ok || !strings.HasPrefix(arn, "arn:") {
		return "", false
	}
	name := resource[strings.LastIndexByte(resource, '/')+1:]
	return name, name != ""
}

func accountOf(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
