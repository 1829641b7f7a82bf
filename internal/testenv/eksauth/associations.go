package eksauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Association is what AssumeRoleForPodIdentity needs of an EKS Pod Identity
// association: the fields of DescribePodIdentityAssociation's association
// that decide the credentials.
type Association struct {
	ClusterName        string `json:"clusterName"`
	Namespace          string `json:"namespace"`
	ServiceAccount     string `json:"serviceAccount"`
	RoleARN            string `json:"roleArn"`
	TargetRoleARN      string `json:"targetRoleArn,omitempty"`
	AssociationARN     string `json:"associationArn"`
	AssociationID      string `json:"associationId"`
	DisableSessionTags bool   `json:"disableSessionTags,omitempty"`
}

// Associations finds the association of one ServiceAccount of a cluster.
// EKS allows at most one per (cluster, namespace, ServiceAccount).
type Associations interface {
	Find(ctx context.Context, cluster, namespace, serviceAccount string) (Association, bool, error)
}

// FileAssociations reads the associations from a JSON file
// ({"associations": [Association...]}) on every lookup, so whoever writes the
// file (testenv's SetPodIdentityAssociations) needs no channel to this
// process. A missing file means no associations.
type FileAssociations struct {
	Path string
}

var _ Associations = FileAssociations{}

// associationsFile is the file's format.
type associationsFile struct {
	Associations []Association `json:"associations"`
}

// Find implements Associations.
func (f FileAssociations) Find(_ context.Context, cluster, namespace, serviceAccount string) (Association, bool, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(data) == 0) {
		return Association{}, false, nil
	}
	if err != nil {
		return Association{}, false, err
	}
	var file associationsFile
	if err := json.Unmarshal(data, &file); err != nil {
		return Association{}, false, fmt.Errorf("parse %s: %w", f.Path, err)
	}
	for _, a := range file.Associations {
		if a.ClusterName == cluster && a.Namespace == namespace && a.ServiceAccount == serviceAccount {
			return a, true, nil
		}
	}
	return Association{}, false, nil
}

// WriteAssociationsFile replaces path with associations, atomically (a
// temporary file renamed over it), so a reader never sees half a file.
func WriteAssociationsFile(path string, associations []Association) error {
	if associations == nil {
		associations = []Association{}
	}
	data, err := json.MarshalIndent(associationsFile{Associations: associations}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
