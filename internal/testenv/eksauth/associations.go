package eksauth

import (
	"context"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

// Association is what AssumeRoleForPodIdentity needs of an EKS Pod Identity
// association: the fields of DescribePodIdentityAssociation's association
// that decide the credentials.
type Association struct {
	ClusterName        string
	Namespace          string
	ServiceAccount     string
	RoleARN            string
	AssociationARN     string
	AssociationID      string
	DisableSessionTags bool
	// TargetRoleARN, when set, is assumed with RoleARN's credentials, with
	// ExternalID as sts:ExternalId.
	TargetRoleARN string
	ExternalID    string
	// Policy is a session policy (only with DisableSessionTags).
	Policy string
}

// Associations finds the association of one ServiceAccount of a cluster.
// EKS allows at most one per (cluster, namespace, ServiceAccount).
type Associations interface {
	Find(ctx context.Context, cluster, namespace, serviceAccount string) (Association, bool, error)
}

// PropagatedAssociations are the associations of the EKS API emulator
// (package eksapi) as they have propagated to EKS's data plane: the file
// the emulator rewrites a propagation delay after each change, in the same
// moment as the webhook's identities file, read again on every lookup.
//
// This is the faithful seam, rather than asking the emulator's API: on AWS,
// EKS Auth sees an association when the webhook does, some seconds after
// the call that made it, and keeps vending credentials while the public
// EKS API throttles or fails; here a fault armed on the emulator, or the
// eks-api process killed, leaves EKS Auth answering from the last
// propagated state, as on AWS.
type PropagatedAssociations struct {
	Path string
}

var _ Associations = PropagatedAssociations{}

// Find implements Associations.
func (p PropagatedAssociations) Find(_ context.Context, cluster, namespace, serviceAccount string) (Association, bool, error) {
	all, err := eksapi.ReadPropagatedAssociations(p.Path)
	if err != nil {
		return Association{}, false, err
	}
	for _, a := range all {
		if a.ClusterName == cluster && a.Namespace == namespace && a.ServiceAccount == serviceAccount {
			return Association{
				ClusterName: a.ClusterName, Namespace: a.Namespace, ServiceAccount: a.ServiceAccount,
				RoleARN: a.RoleArn, AssociationARN: a.AssociationArn, AssociationID: a.AssociationID,
				DisableSessionTags: a.DisableSessionTags, TargetRoleARN: a.TargetRoleArn,
				ExternalID: a.ExternalID, Policy: a.Policy,
			}, true, nil
		}
	}
	return Association{}, false, nil
}
