package eksapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// TagResource and UntagResource, for associations: the only way to change
// an association's tags (UpdatePodIdentityAssociation has none). The ARN is
// the path's remainder: the SDK escapes its slashes, the mux unescapes
// them.

// resourceNotFound is the tagging operations' 404, with their own error
// code (the association operations use ResourceNotFoundException).
func resourceNotFound(arn string) error {
	return &apiError{status: http.StatusNotFound, code: "NotFoundException", message: "Resource not found: " + arn}
}

func (s *Server) tagResource(w http.ResponseWriter, r *http.Request) error {
	arn := r.PathValue("arn")
	var req struct {
		Tags map[string]string `json:"tags"`
	}
	data, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		return &apiError{status: http.StatusBadRequest, code: "BadRequestException", message: "could not read the request body: " + err.Error()}
	}
	if len(req.Tags) == 0 {
		return &apiError{status: http.StatusBadRequest, code: "BadRequestException", message: "tags is required"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byARN(arn)
	if a == nil {
		return resourceNotFound(arn)
	}
	next := tagsOrEmpty(nil)
	for k, v := range a.Tags {
		next[k] = v
	}
	for k, v := range req.Tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return &apiError{status: http.StatusBadRequest, code: "BadRequestException", message: "tag keys starting with aws: are reserved"}
		}
		next[k] = v
	}
	if len(next) > maxTags {
		return &apiError{status: http.StatusBadRequest, code: "BadRequestException", message: "a resource can have at most 50 tags"}
	}
	a.Tags = next
	if err := s.changedLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) untagResource(w http.ResponseWriter, r *http.Request) error {
	arn := r.PathValue("arn")
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return &apiError{status: http.StatusBadRequest, code: "BadRequestException", message: "tagKeys is required"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.store.byARN(arn)
	if a == nil {
		return resourceNotFound(arn)
	}
	for _, k := range keys {
		delete(a.Tags, k)
	}
	if err := s.changedLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *store) byARN(arn string) *storedAssociation {
	for _, a := range s.Associations {
		if a.AssociationArn == arn {
			return a
		}
	}
	return nil
}
