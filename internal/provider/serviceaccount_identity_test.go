package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/irsa-dev/terraform-provider-irsa/internal/irsa"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
)

// The binding never re-creates a ServiceAccount someone deleted, and deletes
// only the very ServiceAccount it created.

// The UID precondition against the real API server: an apply aimed at a
// ServiceAccount deleted meanwhile creates nothing, and a delete aimed at
// one re-created meanwhile deletes nothing.
func TestServiceAccounts_neverTouchAnotherIncarnation(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	sas := irsa.ServiceAccounts{Conn: kube.Conn{Client: c.client, FieldManager: "irsa-test"}}
	c.createSA("api")
	old, err := c.getSA("api")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.client.CoreV1().ServiceAccounts(c.ns).Delete(t.Context(), "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	_, err = sas.Apply(t.Context(), c.ns, "api", map[string]string{irsa.RoleARNAnnotation: testRoleA}, irsa.ApplyOptions{UID: old.UID})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("apply to a deleted ServiceAccount: err = %v, want NotFound", err)
	}
	if _, err := c.getSA("api"); !apierrors.IsNotFound(err) {
		t.Fatalf("the apply re-created the ServiceAccount: %v", err)
	}

	c.createSA("api")
	if err := sas.Delete(t.Context(), c.ns, "api", old.UID); !errors.Is(err, irsa.ErrReplaced) {
		t.Fatalf("delete of a re-created ServiceAccount: err = %v, want ErrReplaced", err)
	}
	if _, err := c.getSA("api"); err != nil {
		t.Fatalf("the re-created ServiceAccount was deleted: %v", err)
	}
}

// A ServiceAccount the binding created, deleted and re-created by someone
// else, survives the binding's destroy.
func TestAccServiceAccountBinding_destroyLeavesARecreatedServiceAccount(t *testing.T) {
	c := newTestCluster(t)
	var recreated *corev1.ServiceAccount
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			sa, err := c.getSA("api")
			if err != nil {
				return fmt.Errorf("the re-created ServiceAccount is gone: %w", err)
			}
			if sa.UID != recreated.UID {
				return fmt.Errorf("ServiceAccount UID %s, want the re-created %s", sa.UID, recreated.UID)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{Config: bindingConfig(c.ns, "api", testRoleA, "  create_service_account = true")},
			{
				PreConfig: func() {
					ctx := context.Background()
					if err := c.client.CoreV1().ServiceAccounts(c.ns).Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
					c.createSA("api")
					c.annotate("api", irsa.RoleARNAnnotation, testRoleA)
					var err error
					if recreated, err = c.getSA("api"); err != nil {
						t.Fatal(err)
					}
				},
				RefreshState: true,
			},
		},
	})
}

// checkSoleOwner asserts the provider's field manager alone owns key.
func (c *testCluster) checkSoleOwner(name, key string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		sa, err := c.getSA(name)
		if err != nil {
			return err
		}
		if owners := managersOf(sa, key); len(owners) != 1 || !isBindingManager(owners[0]) {
			return fmt.Errorf("%s is owned by %v, want one binding's field manager %s/ID alone", key, owners, DefaultFieldManager)
		}
		return nil
	}
}

// An imported binding that is destroyed without ever being applied removes
// the annotations it imported (it adopts them first), and nothing else.
func TestAccServiceAccountBinding_importThenDestroyRemovesTheAnnotation(t *testing.T) {
	c := newTestCluster(t)
	c.createSA("api")
	c.annotate("api", irsa.RoleARNAnnotation, testRoleA)
	resource.ParallelTest(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             c.checkAnnotations("api", map[string]string{}),
		Steps: []resource.TestStep{{
			Config:             bindingConfig(c.ns, "api", testRoleA, ""),
			ResourceName:       resourceAddr,
			ImportState:        true,
			ImportStateId:      c.ns + "/api",
			ImportStatePersist: true,
		}},
	})
}
