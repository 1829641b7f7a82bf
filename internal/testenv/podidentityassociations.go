package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// PodIdentityAssociation is one (namespace, ServiceAccount) listed in the
// webhook's identities file by SetPodIdentityAssociations: the webhook gives
// its pods container credentials instead of web identity, but it is no EKS
// association, so EKS Auth knows none for it. A real association, with a
// role whose credentials its pods get, is made through the EKS API
// emulator (EKSClient's CreatePodIdentityAssociation).
type PodIdentityAssociation = podidentity.Identity

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
// for tests of the webhook alone: they are not associations, so EKS Auth
// knows none for them (their pods' credential calls are refused with
// ResourceNotFoundException). The EKS API emulator is the file's one
// writer: these identities are kept beside the associations made through
// the API (the file lists both), and each call replaces the previous
// call's set, so tests that use it must not run in parallel with other
// tests that use it. The webhook notices the change within moments, not
// at once: wait for it (WaitWebhookMutates with a dry-run pod) before
// relying on it.
func (e *Env) SetPodIdentityAssociations(associations ...PodIdentityAssociation) error {
	if e.ContainerCredentialsConfig == "" || e.EKSURL == "" {
		return errors.New("this environment was started without the EKS API emulator: restart it (make testenv-down testenv-up)")
	}
	if associations == nil {
		associations = []PodIdentityAssociation{}
	}
	body, err := json.Marshal(map[string][]PodIdentityAssociation{"identities": associations})
	if err != nil {
		return err
	}
	return eksAdminAt(context.Background(), e.EKSURL, http.MethodPut, "identities", body, nil)
}

// SetPodIdentityAssociations acts on the exported environment (see Main).
func SetPodIdentityAssociations(associations ...PodIdentityAssociation) error {
	e, err := exported()
	if err != nil {
		return err
	}
	return e.SetPodIdentityAssociations(associations...)
}
