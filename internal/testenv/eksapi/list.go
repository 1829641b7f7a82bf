package eksapi

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type listResponse struct {
	Associations []summary `json:"associations"`
	NextToken    string    `json:"nextToken,omitempty"`

	lastSeq uint64
}

// List's maxResults bounds, from the EKS model (ListPodIdentityAssociationsMaxResults).
const (
	minListResults     = 1
	maxListResults     = 100
	defaultListResults = 100
)

func (s *Server) listAssociations(w http.ResponseWriter, r *http.Request) error {
	cluster, err := s.cluster(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := maxResults(cluster, q.Get("maxResults"))
	if err != nil {
		return err
	}
	after, err := decodeToken(cluster, q.Get("nextToken"))
	if err != nil {
		return err
	}
	namespace, serviceAccount := q.Get("namespace"), q.Get("serviceAccount")

	s.mu.Lock()
	defer s.mu.Unlock()
	all := slices.Clone(s.store.Associations)
	slices.SortFunc(all, func(a, b *storedAssociation) int { return cmp.Compare(a.Seq, b.Seq) })
	resp := listResponse{Associations: []summary{}}
	for _, a := range all {
		if a.Seq <= after || (namespace != "" && a.Namespace != namespace) || (serviceAccount != "" && a.ServiceAccount != serviceAccount) {
			continue
		}
		if len(resp.Associations) == limit {
			resp.NextToken = encodeToken(resp.lastSeq)
			break
		}
		resp.Associations = append(resp.Associations, a.summary())
		resp.lastSeq = a.Seq
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func maxResults(cluster, v string) (int, error) {
	if v == "" {
		return defaultListResults, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minListResults || n > maxListResults {
		// Not confirmed: AWS's wording for an out-of-range maxResults.
		return 0, invalidParameter(cluster, "maxResults must be between %d and %d", minListResults, maxListResults)
	}
	return n, nil
}

// Paging tokens are opaque to clients, as AWS's are: here the creation
// sequence number of the last association returned.
const tokenPrefix = "eksapi-seq:"

func encodeToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.FormatUint(seq, 10)))
}

func decodeToken(cluster, token string) (uint64, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(raw), tokenPrefix); ok {
			if seq, err := strconv.ParseUint(rest, 10, 64); err == nil {
				return seq, nil
			}
		}
	}
	// Not confirmed: AWS's code and wording for a token it did not issue.
	return 0, invalidParameter(cluster, "The nextToken is not valid.")
}
