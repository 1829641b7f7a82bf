package podidentity

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Identity names a ServiceAccount that has an EKS Pod Identity association:
// one entry of the file --watch-container-credentials-config points at.
type Identity struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
}

// identitiesFile is the file's format, upstream's IdentityConfigObject.
type identitiesFile struct {
	Identities []Identity `json:"identities"`
}

// Identities is the set of ServiceAccounts the webhook gives container
// credentials, as last loaded from the identities file. The zero value is an
// empty set.
type Identities struct {
	mu  sync.RWMutex
	set map[Identity]bool
}

// Has reports whether namespace/serviceAccount is listed.
func (s *Identities) Has(namespace, serviceAccount string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.set[Identity{Namespace: namespace, ServiceAccount: serviceAccount}]
}

// Load replaces the set with the file content, as upstream's FileConfig.Load:
// no content (the file is missing or empty) means no identities; content that
// does not parse is an error and keeps the set as it was, so a half-written
// or broken file never takes credentials away from pods.
func (s *Identities) Load(content []byte) error {
	if len(content) == 0 {
		s.replace(nil)
		return nil
	}
	var f identitiesFile
	if err := json.Unmarshal(content, &f); err != nil {
		return fmt.Errorf("parse the container credentials config: %w", err)
	}
	set := make(map[Identity]bool, len(f.Identities))
	for _, id := range f.Identities {
		set[id] = true
	}
	s.replace(set)
	return nil
}

func (s *Identities) replace(set map[Identity]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = set
}

// WriteIdentitiesFile writes ids to path in the format the webhook reads,
// atomically: a temporary file in the same directory renamed over path, so
// the webhook never reads half a file.
func WriteIdentitiesFile(path string, ids []Identity) error {
	if ids == nil {
		ids = []Identity{} // {"identities":[]}, not null
	}
	data, err := json.Marshal(identitiesFile{Identities: ids})
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
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
