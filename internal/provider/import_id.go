package provider

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// parseImportID splits an import ID, NAMESPACE/SERVICE_ACCOUNT, and checks
// both names as the API server does: a namespace is a DNS-1123 label, a
// ServiceAccount name a DNS-1123 subdomain. Its error says what is wrong;
// the caller adds the expected form.
func parseImportID(id string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(id, "/")
	if !ok {
		return "", "", errors.New("it has no '/' between the namespace and the ServiceAccount name")
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return "", "", fmt.Errorf("namespace %q is not valid: %s", namespace, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", "", fmt.Errorf("ServiceAccount name %q is not valid: %s", name, strings.Join(msgs, "; "))
	}
	return namespace, name, nil
}
