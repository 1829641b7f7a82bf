package irsa

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Who holds a ServiceAccount is kept by the API server: each binding
// applies its annotations as a field manager of its own, the provider's
// field manager, a slash and the binding's ID
// ("terraform-provider-irsa/3f9c0a1b2c3d4e5f"). An annotation two bindings
// applied with the same value belongs to both, so one binding's release
// leaves it to the other (a create_before_destroy replacement hands over
// that way), and a binding asking for another value over a holder's is
// refused (CheckHolder, before the API server would). None of it shows
// among the annotations: a tool beside the binding ignores only the
// eks.amazonaws.com/ ones.

// BindingManager is the field manager of binding id under the provider's
// field manager base; base itself without an ID.
func BindingManager(base, id string) string {
	if id == "" {
		return base
	}
	return base + "/" + id
}

// LegacyHolderAnnotation is where releases before per-binding field
// managers named the bindings that hold a ServiceAccount (comma-separated
// IDs, written by the shared field manager). A binding that still holds a
// ServiceAccount that way moves to its own manager on its next apply
// (ServiceAccounts.MoveFromLegacy); until then it counts among the holders.
const LegacyHolderAnnotation = "irsa-dev/binding-id"

// Holders lists the IDs of the bindings that hold sa: the field managers
// base/ID that own one of the binding annotations, then the IDs of
// LegacyHolderAnnotation.
func Holders(sa *corev1.ServiceAccount, base string) []string {
	var ids []string
	owners := AnnotationOwners(sa, "")
	for _, key := range BindingAnnotations {
		for _, m := range owners[key] {
			if id, ok := strings.CutPrefix(m, base+"/"); ok && id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range legacyHolders(sa) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func legacyHolders(sa *corev1.ServiceAccount) []string {
	var ids []string
	for _, id := range strings.Split(sa.Annotations[LegacyHolderAnnotation], ",") {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// LegacyHeld reports whether binding id holds sa the way releases before
// per-binding managers did: its ID in LegacyHolderAnnotation, or, from
// before binding IDs, the shared manager base owning binding annotations
// with no holder named.
func LegacyHeld(sa *corev1.ServiceAccount, base, id string) bool {
	legacy := legacyHolders(sa)
	if len(legacy) == 0 {
		return len(OwnedBy(sa, base)) > 0 || slices.Contains(AnnotationOwners(sa, "")[LegacyHolderAnnotation], base)
	}
	return slices.Contains(legacy, id)
}

// OurManagers are the field managers whose annotations count as binding
// id's own: its manager, and the shared one while it holds sa that way.
func OurManagers(sa *corev1.ServiceAccount, base, id string) []string {
	ours := []string{BindingManager(base, id)}
	if id != "" && LegacyHeld(sa, base, id) {
		ours = append(ours, base)
	}
	return ours
}
