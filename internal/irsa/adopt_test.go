package irsa

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
	// The last key goes with its empty parents: an empty f:annotations
	// would mean owning the annotations map itself.
	only := metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)
	if rest, removed, err := withoutAnnotations(only, []string{RoleARNAnnotation}); err != nil || !removed || rest != nil {
		t.Errorf("single-key entry: rest %v, removed %v, err %v; want nothing left", rest, removed, err)
	}
	labelled := metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}},"f:labels":{"f:app":{}}}}`)
	if rest, _, _ := withoutAnnotations(labelled, []string{RoleARNAnnotation}); rest.GetRawString() != `{"f:metadata":{"f:labels":{"f:app":{}}}}` {
		t.Errorf("rest = %s, want the labels only", rest.GetRawString())
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
