package eksapi

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// AdminPrefix is where the emulator's test knobs live; no EKS operation
// has a path under it.
const AdminPrefix = "/_testenv/"

// Faults are errors the emulator answers instead of doing an operation,
// one request at a time, as a busy or failing EKS would.
type Faults struct {
	// Throttle is how many of the next requests get 429
	// ThrottlingException (which the SDK's retryer retries).
	Throttle int `json:"throttle"`
	// ServerErrors is how many of the next requests, after the throttled
	// ones, get 500 ServerException (retried too).
	ServerErrors int `json:"serverErrors"`
	// Operations limits the faults to these operations (e.g.
	// "CreatePodIdentityAssociation"); empty means every operation.
	Operations []string `json:"operations,omitempty"`
}

// Propagation is what the data plane knows now (the identities file's
// list, the associations EKS Auth answers from), and how many changes are
// still on their way to it.
type Propagation struct {
	Listed       []podidentity.Identity  `json:"listed"`
	Associations []PropagatedAssociation `json:"associations"`
	Pending      int                     `json:"pending"`
	Delay        string                  `json:"delay"`
}

// ownerRequest is the body of PUT /_testenv/associations/{id}/owner.
type ownerRequest struct {
	OwnerArn string `json:"ownerArn"`
}

// identitiesRequest is the body of PUT /_testenv/identities: the webhook
// file's own format.
type identitiesRequest struct {
	Identities []podidentity.Identity `json:"identities"`
}

func (s *Server) adminRoutes() {
	s.mux.HandleFunc("GET "+AdminPrefix+"healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET "+AdminPrefix+"faults", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, s.faults)
	})
	s.mux.HandleFunc("PUT "+AdminPrefix+"faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if !decodeAdmin(w, r, &f) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.faults = f
		writeJSON(w, http.StatusOK, s.faults)
	})
	s.mux.HandleFunc("PUT "+AdminPrefix+"propagation-delay", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 100))
		d, err := time.ParseDuration(strings.TrimSpace(string(body)))
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("want a non-negative Go duration, got %q", body), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.delay = d
		_, _ = io.WriteString(w, d.String()+"\n")
	})
	s.mux.HandleFunc("GET "+AdminPrefix+"propagation", func(w http.ResponseWriter, _ *http.Request) {
		listed, associations, pending := s.prop.status()
		s.mu.Lock()
		delay := s.delay
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, Propagation{Listed: listed, Associations: associations, Pending: pending, Delay: delay.String()})
	})
	s.mux.HandleFunc("GET "+AdminPrefix+"requests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.RequestCounts())
	})
	s.mux.HandleFunc("PUT "+AdminPrefix+"associations/{id}/owner", func(w http.ResponseWriter, r *http.Request) {
		var req ownerRequest
		if !decodeAdmin(w, r, &req) {
			return
		}
		a, err := s.setOwner(r.PathValue("id"), req.OwnerArn)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, associationResponse{a})
	})
	s.mux.HandleFunc("PUT "+AdminPrefix+"identities", func(w http.ResponseWriter, r *http.Request) {
		var req identitiesRequest
		if !decodeAdmin(w, r, &req) {
			return
		}
		if err := s.setExtra(req.Identities); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		http.Error(w, "decode the request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// setExtra replaces the identities listed beside the associations, in
// the identities file at once, and keeps them across restarts. They are
// for tests of the webhook alone: no association, so EKS Auth knows none
// for them.
func (s *Server) setExtra(ids []podidentity.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.Extra = ids
	s.prop.setExtra(ids)
	return s.store.save()
}

// setOwner sets the ownerArn of association id, as EKS does for an
// add-on's association. Whether AWS then refuses Update or Delete of it
// outside the add-on is not confirmed; the emulator allows both.
func (s *Server) setOwner(id, ownerARN string) (association, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byID(id)
	if a == nil {
		return association{}, fmt.Errorf("no association %s", id)
	}
	a.OwnerArn = ownerARN
	return a.association, s.store.save()
}

// RequestCounts is how many requests each EKS operation has received,
// faulted ones included.
func (s *Server) RequestCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// countAndFault counts a request of op and returns the fault it is to get,
// if any.
func (s *Server) countAndFault(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[op]++
	f := &s.faults
	if len(f.Operations) > 0 && !slices.Contains(f.Operations, op) {
		return nil
	}
	switch {
	case f.Throttle > 0:
		f.Throttle--
		// The EKS model's ThrottlingException (429); the message is not
		// confirmed.
		return &apiError{status: http.StatusTooManyRequests, code: "ThrottlingException", message: "Rate exceeded"}
	case f.ServerErrors > 0:
		f.ServerErrors--
		return &apiError{status: http.StatusInternalServerError, code: "ServerException", message: "An internal error occurred (injected by the emulator)."}
	}
	return nil
}
