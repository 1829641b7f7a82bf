package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksauth"
	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// PodIdentityAssociation is one (namespace, ServiceAccount) the webhook gives
// container credentials (EKS Pod Identity) instead of web identity, and,
// when it names a role, the association EKS Auth answers its pods' agent
// calls with.
type PodIdentityAssociation struct {
	Namespace      string
	ServiceAccount string
	// RoleARN is the association's role. Without one the webhook still
	// injects container credentials, but EKS Auth knows no association.
	RoleARN string
	// TargetRoleARN, when set, is assumed with the role's credentials.
	TargetRoleARN      string
	DisableSessionTags bool
	// AssociationID is generated (a- and 17 of [a-z0-9]) when empty.
	AssociationID string
}

// containerCredentialsFile is where the webhook's identities file lives in
// the state directory: a directory of its own, since the webhook watches the
// directory and need not hear of every other file the environment writes.
const containerCredentialsFile = "pod-identity/identities.json"

// prepareContainerCredentials creates the identities file, empty, before the
// webhook starts watching it.
func (e *Env) prepareContainerCredentials() error {
	e.ContainerCredentialsConfig = filepath.Join(e.StateDir, containerCredentialsFile)
	if err := os.MkdirAll(filepath.Dir(e.ContainerCredentialsConfig), 0o755); err != nil {
		return err
	}
	return podidentity.WriteIdentitiesFile(e.ContainerCredentialsConfig, nil)
}

// containerCredentialsArgs are the webhook flags of the container-credentials
// mode, the same for the port and the upstream binary.
func (e *Env) containerCredentialsArgs() []string {
	return []string{
		"--watch-container-credentials-config=" + e.ContainerCredentialsConfig,
		"--container-credentials-audience=" + podidentity.DefaultContainerCredentialsAudience,
		"--container-credentials-full-uri=" + e.agentCredentialsURL(),
	}
}

// SetPodIdentityAssociations lists associations in the webhook's
// identities file at once, without the EKS API and its propagation delay,
// for tests of the webhook alone. The EKS API emulator is the file's one
// writer: these identities are kept beside the associations made through
// the API (the file lists both), and each call replaces the previous
// call's set, so tests that use it must not run in parallel with other
// tests that use it. The webhook notices the change within moments, not
// at once: wait for it (WaitWebhookMutates with a dry-run pod) before
// relying on it.
//
// The associations that name a role are written first to EKS Auth's
// associations file, which it reads on every call, so a pod the webhook
// mutated for one already finds it there.
func (e *Env) SetPodIdentityAssociations(associations ...PodIdentityAssociation) error {
	if e.ContainerCredentialsConfig == "" || e.EKSURL == "" || e.EKSAuthAssociations == "" {
		return errors.New("this environment was started without the EKS API emulator or EKS Auth: restart it (make testenv-down testenv-up)")
	}
	var forEKSAuth []eksauth.Association
	identities := make([]podidentity.Identity, 0, len(associations))
	for _, a := range associations {
		identities = append(identities, podidentity.Identity{Namespace: a.Namespace, ServiceAccount: a.ServiceAccount})
		if a.RoleARN == "" {
			continue
		}
		id := a.AssociationID
		if id == "" {
			id = newAssociationID()
		}
		forEKSAuth = append(forEKSAuth, eksauth.Association{
			ClusterName: clusterName, Namespace: a.Namespace, ServiceAccount: a.ServiceAccount,
			RoleARN: a.RoleARN, TargetRoleARN: a.TargetRoleARN, DisableSessionTags: a.DisableSessionTags,
			AssociationID:  id,
			AssociationARN: fmt.Sprintf("arn:aws:eks:%s:%s:podidentityassociation/%s/%s", Region, AccountID, clusterName, id),
		})
	}
	if err := eksauth.WriteAssociationsFile(e.EKSAuthAssociations, forEKSAuth); err != nil {
		return err
	}
	body, err := json.Marshal(map[string][]podidentity.Identity{"identities": identities})
	if err != nil {
		return err
	}
	return eksAdminAt(context.Background(), e.EKSURL, http.MethodPut, "identities", body, nil)
}

// newAssociationID makes an ID of the form EKS uses.
func newAssociationID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 17)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))] //nolint:gosec // an identifier, not a secret
	}
	return "a-" + string(b)
}

// SetPodIdentityAssociations acts on the exported environment (see Main).
func SetPodIdentityAssociations(associations ...PodIdentityAssociation) error {
	e, err := exported()
	if err != nil {
		return err
	}
	return e.SetPodIdentityAssociations(associations...)
}
