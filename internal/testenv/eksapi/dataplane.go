package eksapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PropagatedAssociation is an association as EKS's data plane holds it once
// a change has propagated: what EKS Auth needs to answer
// AssumeRoleForPodIdentity for the association's ServiceAccount. The JSON
// names are the EKS model's.
//
// On AWS, EKS Auth and the pod identity webhook learn of an association the
// same way: some seconds after the control-plane call returned, and from
// EKS's own replicated state, not from the public API (whose throttling or
// outage does not stop credentials from being vended). The emulator plays
// that with one writer: it writes the propagated associations
// (Config.AssociationsFile) and the webhook's identities file from one
// snapshot, a propagation delay after each change, and EKS Auth reads the
// former (ReadPropagatedAssociations).
type PropagatedAssociation struct {
	ClusterName        string `json:"clusterName"`
	Namespace          string `json:"namespace"`
	ServiceAccount     string `json:"serviceAccount"`
	RoleArn            string `json:"roleArn"`
	AssociationArn     string `json:"associationArn"`
	AssociationID      string `json:"associationId"`
	DisableSessionTags bool   `json:"disableSessionTags,omitempty"`
	TargetRoleArn      string `json:"targetRoleArn,omitempty"`
	ExternalID         string `json:"externalId,omitempty"`
	Policy             string `json:"policy,omitempty"`
}

func (a *association) propagated() PropagatedAssociation {
	return PropagatedAssociation{
		ClusterName: a.ClusterName, Namespace: a.Namespace, ServiceAccount: a.ServiceAccount,
		RoleArn: a.RoleArn, AssociationArn: a.AssociationArn, AssociationID: a.AssociationID,
		DisableSessionTags: a.DisableSessionTags, TargetRoleArn: a.TargetRoleArn,
		ExternalID: a.ExternalID, Policy: a.Policy,
	}
}

// associationsFile is the format of the propagated associations file.
type associationsFile struct {
	Associations []PropagatedAssociation `json:"associations"`
}

// ReadPropagatedAssociations reads the propagated associations file the
// emulator writes. A missing or empty file (an emulator not started yet)
// holds none.
func ReadPropagatedAssociations(path string) ([]PropagatedAssociation, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(data) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f associationsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse the propagated associations %s: %w", path, err)
	}
	return f.Associations, nil
}

// writePropagatedAssociations replaces path with associations, atomically
// (a temporary file renamed over it), so a reader never sees half a file.
func writePropagatedAssociations(path string, associations []PropagatedAssociation) error {
	if associations == nil {
		associations = []PropagatedAssociation{}
	}
	data, err := json.MarshalIndent(associationsFile{Associations: associations}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomically(path, data)
}

// writeAtomically writes data to a temporary file beside path and renames
// it over path.
func writeAtomically(path string, data []byte) error {
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
