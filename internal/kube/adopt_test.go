package kube

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAnnotationFieldSets(t *testing.T) {
	t.Parallel()
	kubectl := metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{".":{},"f:eks.amazonaws.com/role-arn":{},"f:team":{}}}}`)
	rest, removed, err := withoutAnnotations(kubectl, []string{RoleARNAnnotation, AudienceAnnotation})
	if err != nil || !removed {
		t.Fatalf("removed %v, err %v", removed, err)
	}
	if got, want := rest.GetRawString(), `{"f:metadata":{"f:annotations":{".":{},"f:team":{}}}}`; got != want {
		t.Errorf("other manager keeps %s, want %s", got, want)
	}
	if _, removed, _ := withoutAnnotations(metav1.NewFieldsV1(`{"f:spec":{}}`), []string{RoleARNAnnotation}); removed {
		t.Error("removed from an entry without annotations")
	}

	ours, added, err := withAnnotations(nil, []string{RoleARNAnnotation})
	if err != nil || !added {
		t.Fatalf("added %v, err %v", added, err)
	}
	if got, want := ours.GetRawString(), `{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`; got != want {
		t.Errorf("ours = %s, want %s", got, want)
	}
	if _, added, _ := withAnnotations(ours, []string{RoleARNAnnotation}); added {
		t.Error("added a key we already own")
	}
}
