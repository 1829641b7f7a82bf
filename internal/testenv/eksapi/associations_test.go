package eksapi

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/google/go-cmp/cmp"
)

// The association's shape, from the EKS API model and IRSA.md: IDs "a-"
// and 17 of [a-z0-9], ARNs podidentityassociation/CLUSTER/ID.
var associationIDPattern = regexp.MustCompile(`^a-[a-z0-9]{17}$`)

func TestCreatePodIdentityAssociation_ReturnsTheAssociation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	before := time.Now().Add(-time.Second)
	a := h.create(t, "default", "app", roleARN("app"), func(in *eks.CreatePodIdentityAssociationInput) {
		in.Tags = map[string]string{"team": "platform"}
		in.TargetRoleArn = aws.String("arn:aws:iam::210987654321:role/target")
	})
	id := aws.ToString(a.AssociationId)
	if !associationIDPattern.MatchString(id) {
		t.Errorf("associationId = %q, want a- and 17 of [a-z0-9]", id)
	}
	if want := "arn:aws:eks:us-east-1:123456789012:podidentityassociation/test-cluster/" + id; aws.ToString(a.AssociationArn) != want {
		t.Errorf("associationArn = %q, want %q", aws.ToString(a.AssociationArn), want)
	}
	got := map[string]string{
		"clusterName": aws.ToString(a.ClusterName), "namespace": aws.ToString(a.Namespace),
		"serviceAccount": aws.ToString(a.ServiceAccount), "roleArn": aws.ToString(a.RoleArn),
		"targetRoleArn": aws.ToString(a.TargetRoleArn), "ownerArn": aws.ToString(a.OwnerArn),
	}
	want := map[string]string{
		"clusterName": testCluster, "namespace": "default", "serviceAccount": "app", "roleArn": roleARN("app"),
		"targetRoleArn": "arn:aws:iam::210987654321:role/target", "ownerArn": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("association (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"team": "platform"}, a.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if aws.ToString(a.ExternalId) == "" {
		t.Error("an association with a target role has no externalId")
	}
	if a.DisableSessionTags == nil || *a.DisableSessionTags {
		t.Errorf("disableSessionTags = %v, want false", a.DisableSessionTags)
	}
	// Epoch-second timestamps decode to the time of the call.
	created, modified := aws.ToTime(a.CreatedAt), aws.ToTime(a.ModifiedAt)
	if created.Before(before) || created.After(time.Now().Add(time.Second)) || !modified.Equal(created) {
		t.Errorf("createdAt %v, modifiedAt %v: want both the time of the call", created, modified)
	}

	d, err := h.client.DescribePodIdentityAssociation(t.Context(), &eks.DescribePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, d.Association, cmp.AllowUnexported(types.PodIdentityAssociation{})); diff != "" {
		t.Errorf("Describe differs from Create (-create +describe):\n%s", diff)
	}
}

func TestCreatePodIdentityAssociation_SecondForServiceAccountIsResourceInUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	first := h.create(t, "default", "app", roleARN("app"))
	// Another role, same ServiceAccount: still one association per SA.
	_, err := h.createErr(t, "default", "app", roleARN("other"))
	wantAPIError[*types.ResourceInUseException](t, err, "Association already exists: "+aws.ToString(first.AssociationId))
	// Another ServiceAccount or namespace is another association.
	h.create(t, "default", "app2", roleARN("app"))
	h.create(t, "other", "app", roleARN("app"))
}

func TestCreatePodIdentityAssociation_RefusesRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name, role, msg string
	}{
		{"unknown role", roleARN("nope"), "Role provided in the request does not exist"},
		{"not a role ARN", "app", "Role provided in the request does not exist"},
		{"web identity trust only", roleARN("irsa"), "Trust policy of the role provided is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.createErr(t, "default", strings.ReplaceAll(tc.name, " ", "-"), tc.role)
			wantAPIError[*types.InvalidParameterException](t, err, tc.msg)
		})
	}
}

func TestCreatePodIdentityAssociation_PolicyNeedsDisableSessionTags(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	for _, disable := range []*bool{nil, aws.Bool(false)} {
		_, err := h.createErr(t, "default", "app", roleARN("app"), func(in *eks.CreatePodIdentityAssociationInput) {
			in.Policy, in.DisableSessionTags = aws.String(policy), disable
		})
		wantAPIError[*types.InvalidParameterException](t, err, "disableSessionTags")
	}
	a := h.create(t, "default", "app", roleARN("app"), func(in *eks.CreatePodIdentityAssociationInput) {
		in.Policy, in.DisableSessionTags = aws.String(policy), aws.Bool(true)
	})
	if aws.ToString(a.Policy) != policy || !aws.ToBool(a.DisableSessionTags) {
		t.Errorf("policy %q, disableSessionTags %v: want both as sent", aws.ToString(a.Policy), aws.ToBool(a.DisableSessionTags))
	}
}

func TestCreatePodIdentityAssociation_SameTokenIsTheSameRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	token := func(in *eks.CreatePodIdentityAssociationInput) { in.ClientRequestToken = aws.String("retry-1") }
	first := h.create(t, "default", "app", roleARN("app"), token)
	again := h.create(t, "default", "app", roleARN("app"), token)
	if aws.ToString(again.AssociationId) != aws.ToString(first.AssociationId) {
		t.Errorf("a retried Create made %s, want the first call's %s", aws.ToString(again.AssociationId), aws.ToString(first.AssociationId))
	}
	// The SDK fills a fresh token into every call that sets none: a plain
	// second Create is a second request.
	_, err := h.createErr(t, "default", "app", roleARN("app"))
	wantAPIError[*types.ResourceInUseException](t, err, aws.ToString(first.AssociationId))
}

func TestAssociationOperations_UnknownAndMalformedIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	cluster := aws.String(testCluster)
	ops := map[string]func(id string) error{
		"Describe": func(id string) error {
			_, err := h.client.DescribePodIdentityAssociation(t.Context(), &eks.DescribePodIdentityAssociationInput{ClusterName: cluster, AssociationId: aws.String(id)})
			return err
		},
		"Update": func(id string) error {
			_, err := h.client.UpdatePodIdentityAssociation(t.Context(), &eks.UpdatePodIdentityAssociationInput{ClusterName: cluster, AssociationId: aws.String(id), RoleArn: aws.String(roleARN("app"))})
			return err
		},
		"Delete": func(id string) error {
			_, err := h.client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{ClusterName: cluster, AssociationId: aws.String(id)})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			wantAPIError[*types.ResourceNotFoundException](t, op("a-0000000000000000x"), "a-0000000000000000x")
			wantAPIError[*types.InvalidParameterException](t, op("a-short"), "should be 19 characters long")
		})
	}
}

func TestAssociationOperations_UnknownCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	_, err := h.client.CreatePodIdentityAssociation(t.Context(), &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String("elsewhere"), Namespace: aws.String("default"), ServiceAccount: aws.String("app"), RoleArn: aws.String(roleARN("app")),
	})
	wantAPIError[*types.ResourceNotFoundException](t, err, "No cluster found for name: elsewhere.")
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) && aws.ToString(nf.ClusterName) != "elsewhere" {
		t.Errorf("clusterName = %q, want elsewhere", aws.ToString(nf.ClusterName))
	}
	_, err = h.client.ListPodIdentityAssociations(t.Context(), &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String("elsewhere")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "elsewhere")
}

func TestUpdatePodIdentityAssociation_ChangesWhatTheModelAllows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.create(t, "default", "app", roleARN("app"), func(in *eks.CreatePodIdentityAssociationInput) {
		in.TargetRoleArn = aws.String("arn:aws:iam::210987654321:role/target")
	})
	id := a.AssociationId
	update := func(mod func(*eks.UpdatePodIdentityAssociationInput)) (*types.PodIdentityAssociation, error) {
		in := &eks.UpdatePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: id}
		mod(in)
		out, err := h.client.UpdatePodIdentityAssociation(t.Context(), in)
		if err != nil {
			return nil, err
		}
		return out.Association, nil
	}
	time.Sleep(10 * time.Millisecond) // modifiedAt has millisecond precision
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`
	u, err := update(func(in *eks.UpdatePodIdentityAssociationInput) {
		in.RoleArn, in.DisableSessionTags, in.Policy = aws.String(roleARN("other")), aws.Bool(true), aws.String(policy)
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(u.RoleArn) != roleARN("other") || !aws.ToBool(u.DisableSessionTags) || aws.ToString(u.Policy) != policy {
		t.Errorf("after update: roleArn %q, disableSessionTags %v, policy %q", aws.ToString(u.RoleArn), aws.ToBool(u.DisableSessionTags), aws.ToString(u.Policy))
	}
	// UpdatePodIdentityAssociationInput has no Namespace or
	// ServiceAccount: they stay; so do the ID, target role and creation time.
	if aws.ToString(u.Namespace) != "default" || aws.ToString(u.ServiceAccount) != "app" || aws.ToString(u.AssociationId) != aws.ToString(id) ||
		aws.ToString(u.TargetRoleArn) != aws.ToString(a.TargetRoleArn) || aws.ToString(u.ExternalId) != aws.ToString(a.ExternalId) {
		t.Errorf("update changed what it was not asked to: %+v", u)
	}
	if !aws.ToTime(u.CreatedAt).Equal(aws.ToTime(a.CreatedAt)) || !aws.ToTime(u.ModifiedAt).After(aws.ToTime(a.ModifiedAt)) {
		t.Errorf("createdAt %v → %v, modifiedAt %v → %v: want createdAt kept and modifiedAt later", aws.ToTime(a.CreatedAt), aws.ToTime(u.CreatedAt), aws.ToTime(a.ModifiedAt), aws.ToTime(u.ModifiedAt))
	}

	// The policy rule holds for the result: session tags back on while
	// the policy stays is refused, and changes nothing.
	_, err = update(func(in *eks.UpdatePodIdentityAssociationInput) { in.DisableSessionTags = aws.Bool(false) })
	wantAPIError[*types.InvalidParameterException](t, err, "disableSessionTags")
	// Removing both is fine, and so is removing the target role.
	u, err = update(func(in *eks.UpdatePodIdentityAssociationInput) {
		in.DisableSessionTags, in.Policy, in.TargetRoleArn = aws.Bool(false), aws.String(""), aws.String("")
	})
	if err != nil {
		t.Fatal(err)
	}
	if u.Policy != nil || u.TargetRoleArn != nil || u.ExternalId != nil || aws.ToBool(u.DisableSessionTags) {
		t.Errorf("after removing policy and target role: %+v", u)
	}

	// The new role is checked as at Create.
	_, err = update(func(in *eks.UpdatePodIdentityAssociationInput) { in.RoleArn = aws.String(roleARN("nope")) })
	wantAPIError[*types.InvalidParameterException](t, err, "Role provided in the request does not exist")
	_, err = update(func(in *eks.UpdatePodIdentityAssociationInput) { in.RoleArn = aws.String(roleARN("irsa")) })
	wantAPIError[*types.InvalidParameterException](t, err, "Trust policy of the role provided is invalid")
}

func TestDeletePodIdentityAssociation_ReturnsItAndItIsGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.create(t, "default", "app", roleARN("app"))
	out, err := h.client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: a.AssociationId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Association.AssociationId) != aws.ToString(a.AssociationId) || aws.ToString(out.Association.RoleArn) != roleARN("app") {
		t.Errorf("Delete returned %+v, want the deleted association", out.Association)
	}
	_, err = h.client.DescribePodIdentityAssociation(t.Context(), &eks.DescribePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: a.AssociationId})
	wantAPIError[*types.ResourceNotFoundException](t, err, aws.ToString(a.AssociationId))
	_, err = h.client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: a.AssociationId})
	wantAPIError[*types.ResourceNotFoundException](t, err, aws.ToString(a.AssociationId))
}

func TestOwnerArn_SetByATestShowsInDescribeAndList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.create(t, "kube-system", "ebs-csi-controller-sa", roleARN("app"))
	const addon = "arn:aws:eks:us-east-1:123456789012:addon/test-cluster/aws-ebs-csi-driver/a1b2"
	if _, err := h.srv.setOwner(aws.ToString(a.AssociationId), addon); err != nil {
		t.Fatal(err)
	}
	d, err := h.client.DescribePodIdentityAssociation(t.Context(), &eks.DescribePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: a.AssociationId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Association.OwnerArn) != addon {
		t.Errorf("Describe ownerArn = %q, want %q", aws.ToString(d.Association.OwnerArn), addon)
	}
	l, err := h.client.ListPodIdentityAssociations(t.Context(), &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(testCluster)})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Associations) != 1 || aws.ToString(l.Associations[0].OwnerArn) != addon {
		t.Errorf("List = %+v, want the one association with ownerArn %q", l.Associations, addon)
	}
}
