// Package eksapi is the local environment's emulator of the Amazon EKS
// control-plane API: the one local cluster (ListClusters, DescribeCluster)
// and its EKS Pod Identity associations (Create, Describe, List, Update,
// Delete), spoken in the REST-JSON wire format of aws-sdk-go-v2/service/eks,
// with AWS's rules and modelled errors.
//
// An association takes effect the way it does on EKS: eventually. A
// propagation delay after each change, the emulator rewrites what EKS's
// data plane knows, from one snapshot: the pod identity webhook's
// identities file (--watch-container-credentials-config) and the
// propagated associations EKS Auth (package eksauth) answers
// AssumeRoleForPodIdentity from (PropagatedAssociation). So "the call
// returned" and "new pods get container credentials that work" are apart
// in time, as they are on AWS.
//
// Tests reach the emulator's knobs (faults, propagation delay, an add-on's
// ownerArn, identities set directly) under /_testenv/, a path no EKS
// operation uses; package testenv wraps them.
package eksapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Config is what the emulator serves and where it checks and writes.
type Config struct {
	// ClusterName, Region and AccountID name the one cluster and build ARNs.
	ClusterName string
	Region      string
	AccountID   string
	// Issuer is the cluster's OIDC issuer (the API server's
	// --service-account-issuer); Endpoint the API server URL; CAData the
	// cluster CA certificate (PEM), served base64-encoded as EKS does.
	Issuer            string
	Endpoint          string
	CAData            []byte
	KubernetesVersion string
	// CreatedAt is the cluster's creation time.
	CreatedAt time.Time
	// Roles answers whether an IAM role exists and what it trusts. Nil
	// accepts every role (unit tests that are not about roles).
	Roles RoleChecker
	// IdentitiesFile is the webhook's identities file; empty writes none.
	IdentitiesFile string
	// AssociationsFile is where the propagated associations are written
	// for EKS Auth (ReadPropagatedAssociations); empty writes none.
	AssociationsFile string
	// StateFile keeps the associations across restarts; empty keeps them
	// in memory only.
	StateFile string
	// PropagationDelay is how long after a change the data plane (both
	// files) shows it.
	PropagationDelay time.Duration
	// Log receives one line per request and every failed write.
	Log *slog.Logger
}

// Server is the emulator: an http.Handler over the association store.
type Server struct {
	cfg  Config
	mux  *http.ServeMux
	log  *slog.Logger
	prop *propagator

	mu     sync.Mutex
	store  *store
	faults Faults
	delay  time.Duration
	counts map[string]int
	// deleting maps a (namespace, ServiceAccount) whose association was
	// deleted less than a propagation delay ago to the deleted ID.
	deleting map[[2]string]string
}

// New loads the state file, if any, writes the identities and propagated
// associations files for what it holds, and returns the emulator.
func New(cfg Config) (*Server, error) {
	if cfg.ClusterName == "" || cfg.Region == "" || cfg.AccountID == "" {
		return nil, errors.New("eksapi: ClusterName, Region and AccountID are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.CreatedAt.IsZero() {
		cfg.CreatedAt = time.Now()
	}
	st, err := loadStore(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, store: st, counts: map[string]int{}, deleting: map[[2]string]string{}}
	s.delay = cfg.PropagationDelay
	s.prop = newPropagator(cfg.IdentitiesFile, cfg.AssociationsFile, cfg.Log)
	// What was stored had propagated before the restart (or will have by
	// the time anyone looks): it is in effect at once.
	s.prop.publishNow(st.propagated(), st.Extra)
	s.routes()
	return s, nil
}

// Close stops pending propagations; the files stay as they are.
func (s *Server) Close() { s.prop.stop() }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	api := func(pattern, op string, h func(http.ResponseWriter, *http.Request) error) {
		s.mux.Handle(pattern, s.operation(op, h))
	}
	api("GET /clusters", "ListClusters", s.listClusters)
	api("GET /clusters/{name}", "DescribeCluster", s.describeCluster)
	api("POST /clusters/{name}/pod-identity-associations", "CreatePodIdentityAssociation", s.createAssociation)
	api("GET /clusters/{name}/pod-identity-associations", "ListPodIdentityAssociations", s.listAssociations)
	api("GET /clusters/{name}/pod-identity-associations/{id}", "DescribePodIdentityAssociation", s.describeAssociation)
	api("POST /clusters/{name}/pod-identity-associations/{id}", "UpdatePodIdentityAssociation", s.updateAssociation)
	api("DELETE /clusters/{name}/pod-identity-associations/{id}", "DeletePodIdentityAssociation", s.deleteAssociation)
	api("POST /tags/{arn...}", "TagResource", s.tagResource)
	api("DELETE /tags/{arn...}", "UntagResource", s.untagResource)
	s.adminRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: "UnknownOperationException",
			message: fmt.Sprintf("The emulator implements no operation at %s %s.", r.Method, r.URL.Path)})
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// operation wraps an EKS operation: it counts the request, answers with an
// injected fault when one is armed, and writes a returned error as AWS
// does.
func (s *Server) operation(op string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Requestid", requestID())
		fault := s.countAndFault(op)
		var err error
		if fault != nil {
			err = fault
		} else {
			err = h(w, r)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				s.log.Error("internal error", "operation", op, "err", err)
				ae = &apiError{status: http.StatusInternalServerError, code: "ServerException", message: err.Error()}
			}
			writeError(w, ae)
			s.log.Info("request", "operation", op, "status", ae.status, "error", ae.code, "message", ae.message)
			return
		}
		s.log.Info("request", "operation", op, "status", http.StatusOK)
	})
}

// apiError is a modelled EKS error: its HTTP status, its shape name (sent
// in X-Amzn-ErrorType, which the SDK maps to the typed error) and message.
type apiError struct {
	status      int
	code        string
	message     string
	clusterName string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-Errortype", e.code)
	body := map[string]string{"message": e.message}
	if e.clusterName != "" {
		body["clusterName"] = e.clusterName
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Modelled errors, HTTP statuses as in the EKS API model.
func invalidParameter(cluster, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameterException", message: fmt.Sprintf(format, args...), clusterName: cluster}
}

func invalidRequest(cluster, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: "InvalidRequestException", message: fmt.Sprintf(format, args...), clusterName: cluster}
}

func notFound(cluster, format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, code: "ResourceNotFoundException", message: fmt.Sprintf(format, args...), clusterName: cluster}
}

func inUse(cluster, format string, args ...any) error {
	return &apiError{status: http.StatusConflict, code: "ResourceInUseException", message: fmt.Sprintf(format, args...), clusterName: cluster}
}

// epochSeconds is a timestamp as the EKS REST-JSON protocol sends it: a
// JSON number of seconds since the epoch, with a fraction.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

func (t *epochSeconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*t = epochSeconds(time.UnixMilli(int64(f * 1000)))
	return nil
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
