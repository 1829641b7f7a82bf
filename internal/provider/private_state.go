package provider

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/binding"
)

// A binding's Ownership lives in Terraform's private state, one key per
// field, under the names earlier releases wrote, so state from any of them
// loads: a JSON string or `true`, absent when empty or false.
const (
	// bindingIDKey is the ID the binding writes among the ServiceAccount's
	// holders.
	bindingIDKey = "binding_id"
	// importingKey marks a binding whose next Read is an import's.
	importingKey = "importing"
	// adoptKey marks an imported binding not applied since.
	adoptKey = "adopt"
	// createdUIDKey is the UID of the ServiceAccount the binding created.
	createdUIDKey = "created_service_account_uid"
	// associationChangedAtKey is when the binding last created its Pod
	// Identity association or changed its role, by the API server's clock
	// (RFC 3339).
	associationChangedAtKey = "association_changed_at"
	// podIdentityDeletedKey marks a move back to IRSA not finished yet.
	podIdentityDeletedKey = "pod_identity_deleted"
)

// privateState is the framework's private state of one resource instance
// (*privatestate.ProviderData, internal to the framework).
type privateState interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

// loadOwnership reads a binding's Ownership; created is the state's
// service_account_created, which Terraform shows.
func loadOwnership(ctx context.Context, private privateState, created bool) (binding.Ownership, diag.Diagnostics) {
	var diags diag.Diagnostics
	str := func(key string) string {
		raw, d := private.GetKey(ctx, key)
		diags.Append(d...)
		s, err := strconv.Unquote(string(raw))
		if err != nil {
			return ""
		}
		return s
	}
	flag := func(key string) bool {
		raw, d := private.GetKey(ctx, key)
		diags.Append(d...)
		return len(raw) > 0
	}
	own := binding.Ownership{
		ID:         str(bindingIDKey),
		Importing:  flag(importingKey),
		Adopt:      flag(adoptKey),
		Created:    created,
		CreatedUID: k8stypes.UID(str(createdUIDKey)),

		PodIdentityDeleted: flag(podIdentityDeletedKey),
	}
	if at, err := time.Parse(time.RFC3339Nano, str(associationChangedAtKey)); err == nil {
		own.AssociationChangedAt = at
	}
	return own, diags
}

// saveOwnership writes o; Created goes to state as service_account_created.
func saveOwnership(ctx context.Context, private privateState, o binding.Ownership) diag.Diagnostics {
	var diags diag.Diagnostics
	str := func(key, value string) {
		var raw []byte
		if value != "" {
			raw = []byte(strconv.Quote(value))
		}
		diags.Append(private.SetKey(ctx, key, raw)...)
	}
	flag := func(key string, value bool) {
		var raw []byte
		if value {
			raw = []byte(`true`)
		}
		diags.Append(private.SetKey(ctx, key, raw)...)
	}
	str(bindingIDKey, o.ID)
	flag(importingKey, o.Importing)
	flag(adoptKey, o.Adopt)
	str(createdUIDKey, string(o.CreatedUID))
	changedAt := ""
	if !o.AssociationChangedAt.IsZero() {
		changedAt = o.AssociationChangedAt.UTC().Format(time.RFC3339Nano)
	}
	str(associationChangedAtKey, changedAt)
	flag(podIdentityDeletedKey, o.PodIdentityDeleted)
	return diags
}
