package eksapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"
)

// Error messages. Those marked confirmed appear verbatim in AWS answers
// quoted in public issue trackers; the others are the emulator's wording,
// with the error code and status of the EKS model.
const (
	// Confirmed (the 409 of a second Create for one ServiceAccount).
	msgAlreadyExists = "Association already exists: %s"
	// Confirmed (IAM has not propagated the role yet, or it is gone).
	msgRoleMissing = "Role provided in the request does not exist"
	// Confirmed as the start of the message for a role whose trust policy
	// does not let pods.eks.amazonaws.com AssumeRole and TagSession.
	msgTrustInvalid = "Trust policy of the role provided is invalid. Follow the official documentation to resolve the issue."
	// Confirmed (DescribeCluster of an unknown name).
	msgNoCluster = "No cluster found for name: %s."
	// Confirmed (an association ID of another length).
	msgIDLength = "The parameter associationId should be 19 characters long."
	// Not confirmed: AWS documents the rule (policy needs
	// disableSessionTags = true), not its message.
	msgPolicyNeedsNoTags = "policy can only be set when disableSessionTags is true"
	// Not confirmed.
	msgNoAssociation = "No pod identity association found for id: %s."
)

// maxTags is EKS's documented limit of tags per resource.
const maxTags = 50

// createRequest is CreatePodIdentityAssociationRequest's body.
type createRequest struct {
	Namespace          string            `json:"namespace"`
	ServiceAccount     string            `json:"serviceAccount"`
	RoleArn            string            `json:"roleArn"`
	ClientRequestToken string            `json:"clientRequestToken"`
	Tags               map[string]string `json:"tags"`
	DisableSessionTags *bool             `json:"disableSessionTags"`
	TargetRoleArn      string            `json:"targetRoleArn"`
	Policy             string            `json:"policy"`
}

// updateRequest is UpdatePodIdentityAssociationRequest's body: the model
// has no namespace or serviceAccount member, so neither can change.
type updateRequest struct {
	RoleArn            *string `json:"roleArn"`
	ClientRequestToken string  `json:"clientRequestToken"`
	DisableSessionTags *bool   `json:"disableSessionTags"`
	TargetRoleArn      *string `json:"targetRoleArn"`
	Policy             *string `json:"policy"`
}

type associationResponse struct {
	Association association `json:"association"`
}

func (s *Server) createAssociation(w http.ResponseWriter, r *http.Request) error {
	cluster, err := s.cluster(r)
	if err != nil {
		return err
	}
	var req createRequest
	if err := decodeBody(r, cluster, &req); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{{"namespace", req.Namespace}, {"serviceAccount", req.ServiceAccount}, {"roleArn", req.RoleArn}} {
		if f.value == "" {
			return invalidParameter(cluster, "%s is required", f.name)
		}
	}
	if len(req.Tags) > maxTags {
		return invalidParameter(cluster, "a resource can have at most %d tags", maxTags)
	}
	disableTags := req.DisableSessionTags != nil && *req.DisableSessionTags
	if req.Policy != "" && !disableTags {
		return invalidParameter(cluster, msgPolicyNeedsNoTags)
	}

	s.mu.Lock()
	// The same clientRequestToken is the same request (a retry after a
	// lost answer): it gets the association it made.
	if a := s.store.byCreateToken(req.ClientRequestToken); a != nil {
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, associationResponse{a.association})
		return nil
	}
	// The conflict is judged before the role: which of the two AWS reports
	// first when both apply is not confirmed.
	if err := s.checkConflictLocked(cluster, req.Namespace, req.ServiceAccount); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()

	// IAM is asked without the lock: moto takes milliseconds.
	if err := s.checkRole(r, cluster, req.RoleArn); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked again: another Create may have won while IAM answered.
	if err := s.checkConflictLocked(cluster, req.Namespace, req.ServiceAccount); err != nil {
		return err
	}
	id := newAssociationID()
	t := now()
	a := &storedAssociation{association: association{
		ClusterName: cluster, Namespace: req.Namespace, ServiceAccount: req.ServiceAccount,
		RoleArn: req.RoleArn, AssociationID: id, AssociationArn: s.associationARN(id),
		Tags: tagsOrEmpty(req.Tags), CreatedAt: t, ModifiedAt: t,
		DisableSessionTags: disableTags, TargetRoleArn: req.TargetRoleArn, Policy: req.Policy,
	}, CreateToken: req.ClientRequestToken}
	if a.TargetRoleArn != "" {
		a.ExternalID = newExternalID()
	}
	s.store.add(a)
	if err := s.changedLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, associationResponse{a.association})
	return nil
}

// checkConflictLocked refuses a second association for one ServiceAccount,
// naming the existing one, as AWS does. A deletion counts until it has
// propagated: AWS answers 409 to a Create right after a Delete too.
func (s *Server) checkConflictLocked(cluster, namespace, serviceAccount string) error {
	if a := s.store.byServiceAccount(namespace, serviceAccount); a != nil {
		return inUse(cluster, msgAlreadyExists, a.AssociationID)
	}
	if id, ok := s.deleting[[2]string{namespace, serviceAccount}]; ok {
		return inUse(cluster, msgAlreadyExists, id)
	}
	return nil
}

func (s *Server) describeAssociation(w http.ResponseWriter, r *http.Request) error {
	cluster, id, err := s.clusterAndID(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byID(id)
	if a == nil {
		return notFound(cluster, msgNoAssociation, id)
	}
	writeJSON(w, http.StatusOK, associationResponse{a.association})
	return nil
}

func (s *Server) updateAssociation(w http.ResponseWriter, r *http.Request) error {
	cluster, id, err := s.clusterAndID(r)
	if err != nil {
		return err
	}
	var req updateRequest
	if err := decodeBody(r, cluster, &req); err != nil {
		return err
	}
	s.mu.Lock()
	if s.store.byID(id) == nil {
		s.mu.Unlock()
		return notFound(cluster, msgNoAssociation, id)
	}
	s.mu.Unlock()
	if req.RoleArn != nil {
		if *req.RoleArn == "" {
			return invalidParameter(cluster, "roleArn must not be empty")
		}
		if err := s.checkRole(r, cluster, *req.RoleArn); err != nil {
			return err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byID(id)
	if a == nil { // deleted while IAM answered
		return notFound(cluster, msgNoAssociation, id)
	}
	next := a.association
	if req.RoleArn != nil {
		next.RoleArn = *req.RoleArn
	}
	if req.DisableSessionTags != nil {
		next.DisableSessionTags = *req.DisableSessionTags
	}
	if req.Policy != nil {
		next.Policy = *req.Policy // "" removes it
	}
	if req.TargetRoleArn != nil {
		// "" removes the target role and its external ID. Whether AWS
		// keeps the external ID across target role changes is not
		// confirmed; it is kept while a target role is set.
		next.TargetRoleArn = *req.TargetRoleArn
		switch {
		case next.TargetRoleArn == "":
			next.ExternalID = ""
		case next.ExternalID == "":
			next.ExternalID = newExternalID()
		}
	}
	// The rule holds for the association as it would be after the call.
	if next.Policy != "" && !next.DisableSessionTags {
		return invalidParameter(cluster, msgPolicyNeedsNoTags)
	}
	next.ModifiedAt = now()
	a.association = next
	if err := s.changedLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, associationResponse{a.association})
	return nil
}

func (s *Server) deleteAssociation(w http.ResponseWriter, r *http.Request) error {
	cluster, id, err := s.clusterAndID(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byID(id)
	if a == nil {
		return notFound(cluster, msgNoAssociation, id)
	}
	s.store.remove(id)
	if s.delay > 0 {
		key := [2]string{a.Namespace, a.ServiceAccount}
		s.deleting[key] = id
		time.AfterFunc(s.delay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.deleting[key] == id {
				delete(s.deleting, key)
			}
		})
	}
	if err := s.changedLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, associationResponse{a.association})
	return nil
}

// cluster returns the path's cluster name when it is the local cluster.
func (s *Server) cluster(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if name != s.cfg.ClusterName {
		return "", notFound(name, msgNoCluster, name)
	}
	return name, nil
}

func (s *Server) clusterAndID(r *http.Request) (string, string, error) {
	cluster, err := s.cluster(r)
	if err != nil {
		return "", "", err
	}
	id := r.PathValue("id")
	if len(id) != idLength {
		return "", "", invalidParameter(cluster, msgIDLength)
	}
	return cluster, id, nil
}

func (s *Server) associationARN(id string) string {
	return fmt.Sprintf("arn:aws:eks:%s:%s:podidentityassociation/%s/%s", s.cfg.Region, s.cfg.AccountID, s.cfg.ClusterName, id)
}

// changedLocked persists the store and schedules the data plane (the
// identities and propagated associations files) to show the change after
// the propagation delay.
func (s *Server) changedLocked() error {
	s.prop.schedule(s.store.propagated(), s.delay)
	return s.store.save()
}

func decodeBody(r *http.Request, cluster string, v any) error {
	err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(v)
	if errors.Is(err, io.EOF) {
		return nil // no body: no members set
	}
	if err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syntax) || errors.As(err, &typ) {
			return invalidRequest(cluster, "the request body is not valid JSON for this operation: %v", err)
		}
		return invalidRequest(cluster, "read the request body: %v", err)
	}
	return nil
}

func tagsOrEmpty(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return maps.Clone(tags)
}
