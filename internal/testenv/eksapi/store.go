package eksapi

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// association is one EKS Pod Identity association as stored, and as the
// API returns it (the JSON names are the EKS model's).
type association struct {
	ClusterName        string            `json:"clusterName"`
	Namespace          string            `json:"namespace"`
	ServiceAccount     string            `json:"serviceAccount"`
	RoleArn            string            `json:"roleArn"`
	AssociationArn     string            `json:"associationArn"`
	AssociationID      string            `json:"associationId"`
	Tags               map[string]string `json:"tags"`
	CreatedAt          epochSeconds      `json:"createdAt"`
	ModifiedAt         epochSeconds      `json:"modifiedAt"`
	OwnerArn           string            `json:"ownerArn,omitempty"`
	DisableSessionTags bool              `json:"disableSessionTags"`
	TargetRoleArn      string            `json:"targetRoleArn,omitempty"`
	ExternalID         string            `json:"externalId,omitempty"`
	Policy             string            `json:"policy,omitempty"`
}

// storedAssociation adds what the emulator keeps but never returns.
type storedAssociation struct {
	association
	// Seq orders associations for listing and paging (creation order).
	Seq uint64 `json:"seq"`
	// CreateToken is the clientRequestToken of the Create that made it.
	CreateToken string `json:"createToken,omitempty"`
}

// summary is the List operation's shape (PodIdentityAssociationSummary).
type summary struct {
	ClusterName    string `json:"clusterName"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	AssociationArn string `json:"associationArn"`
	AssociationID  string `json:"associationId"`
	OwnerArn       string `json:"ownerArn,omitempty"`
}

func (a *association) summary() summary {
	return summary{
		ClusterName: a.ClusterName, Namespace: a.Namespace, ServiceAccount: a.ServiceAccount,
		AssociationArn: a.AssociationArn, AssociationID: a.AssociationID, OwnerArn: a.OwnerArn,
	}
}

// store is every association of the cluster, plus the identities a test
// set directly (SetPodIdentityAssociations), persisted as one JSON file.
type store struct {
	path         string
	Seq          uint64                 `json:"seq"`
	Associations []*storedAssociation   `json:"associations"`
	Extra        []podidentity.Identity `json:"extraIdentities"`
}

func loadStore(path string) (*store, error) {
	s := &store{path: path}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("eksapi: corrupt state file %s: %w", path, err)
	}
	return s, nil
}

// save writes the store atomically (temporary file, rename).
func (s *store) save() error {
	if s.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomically(s.path, data)
}

func (s *store) byID(id string) *storedAssociation {
	for _, a := range s.Associations {
		if a.AssociationID == id {
			return a
		}
	}
	return nil
}

func (s *store) byServiceAccount(namespace, serviceAccount string) *storedAssociation {
	for _, a := range s.Associations {
		if a.Namespace == namespace && a.ServiceAccount == serviceAccount {
			return a
		}
	}
	return nil
}

func (s *store) byCreateToken(token string) *storedAssociation {
	if token == "" {
		return nil
	}
	for _, a := range s.Associations {
		if a.CreateToken == token {
			return a
		}
	}
	return nil
}

func (s *store) add(a *storedAssociation) {
	s.Seq++
	a.Seq = s.Seq
	s.Associations = append(s.Associations, a)
}

func (s *store) remove(id string) {
	s.Associations = slices.DeleteFunc(s.Associations, func(a *storedAssociation) bool { return a.AssociationID == id })
}

// propagated is every association as the data plane will hold it once
// all changes have propagated.
func (s *store) propagated() []PropagatedAssociation {
	out := make([]PropagatedAssociation, 0, len(s.Associations))
	for _, a := range s.Associations {
		out = append(out, a.propagated())
	}
	return out
}

// idAlphabet is what association IDs are made of: "a-" and 17 of these.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// idLength is the length of an association ID; AWS refuses another
// length with msgIDLength.
const idLength = 19

func newAssociationID() string {
	b := make([]byte, idLength-2)
	_, _ = rand.Read(b)
	var sb strings.Builder
	sb.WriteString("a-")
	for _, c := range b {
		sb.WriteByte(idAlphabet[int(c)%len(idAlphabet)])
	}
	return sb.String()
}

// newExternalID is the externalId EKS gives an association with a target
// role: the sts:ExternalId of the second AssumeRole. A UUID here; the
// format AWS uses is not confirmed.
func newExternalID() string { return requestID() }

func now() epochSeconds { return epochSeconds(time.Now()) }
