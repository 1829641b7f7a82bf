package eksapi

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"

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
	for _, f := range []string{h.identities, h.associations} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}

	// The same state file, as cmd/eks-api is restarted with.
	again, err := New(Config{ClusterName: testCluster, Region: testRegion, AccountID: testAccount, StateFile: h.state, IdentitiesFile: h.identities, AssociationsFile: h.associations})
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
	if all, err := ReadPropagatedAssociations(h.associations); err != nil || len(all) != 1 || all[0].AssociationID != aws.ToString(a.AssociationId) {
		t.Errorf("after a restart EKS Auth's file holds %+v (%v), want the association", all, err)
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

// The associations EKS Auth answers from change with the identities file,
// from the same snapshot: after the delay, with every field that decides
// the credentials, an Update's new role included.
func TestPropagation_TheAssociationsFileCarriesWhatDecidesTheCredentials(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.PropagationDelay = propagationDelay })
	propagated := func() []PropagatedAssociation {
		t.Helper()
		all, err := ReadPropagatedAssociations(h.associations)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	waitPropagated := func(what string, cond func([]PropagatedAssociation) bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return cond(propagated()), nil
		})
		if err != nil {
			t.Fatalf("the propagated associations never %s: %v; they are %+v", what, err, propagated())
		}
	}

	began := time.Now()
	a := h.create(t, "default", "app", roleARN("app"), func(in *eks.CreatePodIdentityAssociationInput) {
		in.TargetRoleArn = aws.String("arn:aws:iam::210987654321:role/target")
	})
	if got := propagated(); len(got) != 0 && time.Since(began) < propagationDelay {
		t.Fatalf("the associations file listed %+v %v after the call, before the delay", got, time.Since(began))
	}
	waitPropagated("listed default/app", func(all []PropagatedAssociation) bool { return len(all) == 1 })
	if took := time.Since(began); took < propagationDelay {
		t.Errorf("the association reached EKS Auth's file after %v, before the delay %v", took, propagationDelay)
	}
	// Written before the identities file: once the webhook can know, EKS
	// Auth does.
	if !lists(readIdentities(t, h.identities), "default", "app") {
		t.Error("the identities file does not list the association the associations file holds")
	}
	want := PropagatedAssociation{
		ClusterName: testCluster, Namespace: "default", ServiceAccount: "app", RoleArn: roleARN("app"),
		AssociationArn: aws.ToString(a.AssociationArn), AssociationID: aws.ToString(a.AssociationId),
		TargetRoleArn: "arn:aws:iam::210987654321:role/target", ExternalID: aws.ToString(a.ExternalId),
	}
	if diff := cmp.Diff([]PropagatedAssociation{want}, propagated()); diff != "" {
		t.Errorf("propagated associations (-want +got):\n%s", diff)
	}

	began = time.Now()
	if _, err := h.client.UpdatePodIdentityAssociation(t.Context(), &eks.UpdatePodIdentityAssociationInput{
		ClusterName: aws.String(testCluster), AssociationId: a.AssociationId, RoleArn: aws.String(roleARN("other")),
	}); err != nil {
		t.Fatal(err)
	}
	if got := propagated(); got[0].RoleArn != roleARN("app") && time.Since(began) < propagationDelay {
		t.Errorf("the new role reached EKS Auth's file %v after Update, before the delay", time.Since(began))
	}
	waitPropagated("took the new role", func(all []PropagatedAssociation) bool { return len(all) == 1 && all[0].RoleArn == roleARN("other") })

	// A direct identity is for the webhook alone: no association.
	if err := h.srv.setExtra([]podidentity.Identity{{Namespace: "webhook-test", ServiceAccount: "listed"}}); err != nil {
		t.Fatal(err)
	}
	if got := propagated(); len(got) != 1 {
		t.Errorf("after a direct identity the associations file holds %+v, want the one association", got)
	}
}
