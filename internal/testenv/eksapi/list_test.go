package eksapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestListPodIdentityAssociations_PagesWithTheSDKPaginator(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var want []string
	for i := range 7 {
		a := h.create(t, "default", fmt.Sprintf("sa-%d", i), roleARN("app"))
		want = append(want, aws.ToString(a.AssociationId))
	}
	p := eks.NewListPodIdentityAssociationsPaginator(h.client,
		&eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(testCluster)},
		func(o *eks.ListPodIdentityAssociationsPaginatorOptions) { o.Limit = 3 })
	var got []string
	var sizes []int
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Associations))
		for _, a := range page.Associations {
			got = append(got, aws.ToString(a.AssociationId))
		}
	}
	if diff := cmp.Diff([]int{3, 3, 1}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got):\n%s", diff)
	}
	// Every association once, in creation order.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("associations over all pages (-want +got):\n%s", diff)
	}
}

func TestListPodIdentityAssociations_PagingSurvivesADeletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var ids []*string
	for i := range 4 {
		ids = append(ids, h.create(t, "default", fmt.Sprintf("sa-%d", i), roleARN("app")).AssociationId)
	}
	in := &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(testCluster), MaxResults: aws.Int32(2)}
	first, err := h.client.ListPodIdentityAssociations(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Associations) != 2 || first.NextToken == nil {
		t.Fatalf("first page: %d associations, nextToken %v; want 2 and a token", len(first.Associations), first.NextToken)
	}
	// The last of the first page goes before the second page is read.
	if _, err := h.client.DeletePodIdentityAssociation(t.Context(), &eks.DeletePodIdentityAssociationInput{ClusterName: aws.String(testCluster), AssociationId: ids[1]}); err != nil {
		t.Fatal(err)
	}
	in.NextToken = first.NextToken
	second, err := h.client.ListPodIdentityAssociations(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range second.Associations {
		got = append(got, aws.ToString(a.AssociationId))
	}
	if diff := cmp.Diff([]string{aws.ToString(ids[2]), aws.ToString(ids[3])}, got); diff != "" || second.NextToken != nil {
		t.Errorf("second page (-want +got):\n%s\nnextToken %v, want none", diff, second.NextToken)
	}
}

func TestListPodIdentityAssociations_Filters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, nsSA := range [][2]string{{"a", "x"}, {"a", "y"}, {"b", "x"}, {"b", "z"}} {
		h.create(t, nsSA[0], nsSA[1], roleARN("app"))
	}
	for _, tc := range []struct {
		name   string
		ns, sa *string
		want   []string
	}{
		{"none", nil, nil, []string{"a/x", "a/y", "b/x", "b/z"}},
		{"namespace", aws.String("a"), nil, []string{"a/x", "a/y"}},
		{"serviceAccount", nil, aws.String("x"), []string{"a/x", "b/x"}},
		{"both", aws.String("b"), aws.String("x"), []string{"b/x"}},
		{"nothing matches", aws.String("c"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.client.ListPodIdentityAssociations(t.Context(), &eks.ListPodIdentityAssociationsInput{
				ClusterName: aws.String(testCluster), Namespace: tc.ns, ServiceAccount: tc.sa,
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range out.Associations {
				if aws.ToString(a.ClusterName) != testCluster || !associationIDPattern.MatchString(aws.ToString(a.AssociationId)) || aws.ToString(a.AssociationArn) == "" {
					t.Errorf("summary %+v lacks its cluster, ID or ARN", a)
				}
				got = append(got, aws.ToString(a.Namespace)+"/"+aws.ToString(a.ServiceAccount))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("listed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListPodIdentityAssociations_RefusesBadPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, n := range []int32{0, 101} {
		_, err := h.client.ListPodIdentityAssociations(t.Context(), &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(testCluster), MaxResults: aws.Int32(n)})
		wantAPIError[*types.InvalidParameterException](t, err, "maxResults")
	}
	for _, token := range []string{"not-a-token", base64.RawURLEncoding.EncodeToString([]byte("other:1"))} {
		_, err := h.client.ListPodIdentityAssociations(t.Context(), &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(testCluster), NextToken: aws.String(token)})
		wantAPIError[*types.InvalidParameterException](t, err, "nextToken")
	}
}

func TestDescribeCluster_ServesTheLocalCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	out, err := h.client.DescribeCluster(t.Context(), &eks.DescribeClusterInput{Name: aws.String(testCluster)})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Cluster
	got := map[string]string{
		"name": aws.ToString(c.Name), "arn": aws.ToString(c.Arn), "endpoint": aws.ToString(c.Endpoint),
		"issuer": aws.ToString(c.Identity.Oidc.Issuer), "status": string(c.Status), "version": aws.ToString(c.Version),
		"ca": aws.ToString(c.CertificateAuthority.Data),
	}
	want := map[string]string{
		"name": testCluster, "arn": "arn:aws:eks:us-east-1:123456789012:cluster/test-cluster", "endpoint": testAPI,
		"issuer": testIssuer, "status": string(types.ClusterStatusActive), "version": "1.37",
		"ca": base64.StdEncoding.EncodeToString(h.srv.cfg.CAData),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	if aws.ToTime(c.CreatedAt).IsZero() {
		t.Error("createdAt is missing")
	}

	_, err = h.client.DescribeCluster(t.Context(), &eks.DescribeClusterInput{Name: aws.String("elsewhere")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "No cluster found for name: elsewhere.")
}

func TestListClusters_ListsTheLocalCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	p := eks.NewListClustersPaginator(h.client, &eks.ListClustersInput{})
	var got []string
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Clusters...)
	}
	if diff := cmp.Diff([]string{testCluster}, got); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
}

func TestUnknownPath_IsAnErrorTheSDKCanRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ts := h.client.Options().BaseEndpoint
	resp, err := http.Get(aws.ToString(ts) + "/clusters/test-cluster/addons")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("GET addons: %s, X-Amzn-ErrorType %q; want 404 UnknownOperationException", resp.Status, resp.Header.Get("X-Amzn-ErrorType"))
	}
}
