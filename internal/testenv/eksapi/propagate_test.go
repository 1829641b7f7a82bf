package eksapi

import (
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// propagationDelay is long enough to look at the file before it changes
// on a loaded machine, short enough to keep the tests quick.
const propagationDelay = 500 * time.Millisecond

func TestPropagation_TheIdentitiesFileChangesOnlyAfterTheDelay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.PropagationDelay = propagationDelay })
	if ids := readIdentities(t, h.identities); len(ids) != 0 {
		t.Fatalf("a new emulator's identities file lists %v, want none", ids)
	}

	began := time.Now()
	a := h.create(t, "default", "app", roleARN("app"))
	// Right after the call returns, the webhook does not know yet; the
	// check is only meaningful while the delay has not passed.
	if ids := readIdentities(t, h.identities); lists(ids, "default", "app") && time.Since(began) < propagationDelay {
		t.Fatalf("the identities file listed the association %v after the call, before the delay", time.Since(began))
	}
	waitIdentities(t, h.identities, "listed default/app", func(ids []podidentity.Identity) bool { return lists(ids, "default", "app") })
	if took := time.Since(began); took < propagationDelay {
		t.Errorf("the association reached the identities file after %v, before the delay %v", took, propagationDelay)
	}

	began = time.Now()
	if _, err := h.client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: a.AssociationId}); err != nil {
		t.Fatal(err)
	}
	// Deleted, but not yet propagated: the webhook still injects, and a
	// new Create for the ServiceAccount is refused naming the deleted ID,
	// as AWS answers a Create right after a Delete.
	_, err := h.createErr(t, "default", "app", roleARN("app"))
	if time.Since(began) < propagationDelay {
		wantAPIError[*types.ResourceInUseException](t, err, aws.ToString(a.AssociationId))
	}
	waitIdentities(t, h.identities, "dropped default/app", func(ids []podidentity.Identity) bool { return !lists(ids, "default", "app") })
	if took := time.Since(began); took < propagationDelay {
		t.Errorf("the deletion reached the identities file after %v, before the delay %v", took, propagationDelay)
	}
	// Once it has propagated, the ServiceAccount is free again.
	h.create(t, "default", "app", roleARN("app"))
}

func TestPropagation_SetDirectlyIsAtOnceAndBesideAssociations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.PropagationDelay = 0 })
	h.create(t, "default", "api", roleARN("app"))
	waitIdentities(t, h.identities, "listed default/api", func(ids []podidentity.Identity) bool { return lists(ids, "default", "api") })

	direct := []podidentity.Identity{{Namespace: "webhook-test", ServiceAccount: "listed"}}
	if err := h.srv.setExtra(direct); err != nil {
		t.Fatal(err)
	}
	ids := readIdentities(t, h.identities) // no waiting: written before setExtra returns
	if !lists(ids, "webhook-test", "listed") || !lists(ids, "default", "api") {
		t.Errorf("identities file = %v, want the direct identity and the association's", ids)
	}
	if err := h.srv.setExtra(nil); err != nil {
		t.Fatal(err)
	}
	if ids := readIdentities(t, h.identities); lists(ids, "webhook-test", "listed") || !lists(ids, "default", "api") {
		t.Errorf("after clearing the direct identities: %v, want the association's alone", ids)
	}
}

func TestRestart_KeepsAssociationsAndTheFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.PropagationDelay = time.Hour })
	a := h.create(t, "default", "app", roleARN("app"))
	if err := h.srv.setExtra([]podidentity.Identity{{Namespace: "direct", ServiceAccount: "sa"}}); err != nil {
		t.Fatal(err)
	}
	h.srv.Close()
	if err := os.Remove(h.identities); err != nil {
		t.Fatal(err)
	}

	// The same state file, as cmd/eks-api is restarted with.
	again, err := New(Config{ClusterName: testCluster, Region: testRegion, AccountID: testAccount, StateFile: h.state, IdentitiesFile: h.identities})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	// What was stored is in effect at once: the file lists the association
	// (though its hour had not passed) and the direct identity.
	ids := readIdentities(t, h.identities)
	if !lists(ids, "default", "app") || !lists(ids, "direct", "sa") {
		t.Errorf("after a restart the identities file lists %v", ids)
	}
	again.mu.Lock()
	defer again.mu.Unlock()
	got := again.store.byID(aws.ToString(a.AssociationId))
	if got == nil || got.RoleArn != roleARN("app") {
		t.Fatalf("after a restart association %s is %+v", aws.ToString(a.AssociationId), got)
	}
	// New IDs continue the sequence: paging order survives a restart.
	if again.store.Seq != 1 {
		t.Errorf("sequence after a restart = %d, want 1", again.store.Seq)
	}
}
