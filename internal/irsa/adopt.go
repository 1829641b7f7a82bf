package irsa

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Adopt makes the field manager the only owner of the given annotations,
// as k8s.io/client-go/util/csaupgrade does for fields a client-side apply
// set, but for these keys only: they leave every other manager's entry and
// join ours (an Apply entry). Values do not change, so no pod notices.
// Afterwards the binding's applies change them without conflicts, and a
// release removes them. The write is conditional on the resourceVersion
// read, so a concurrent change makes it fail rather than be lost.
func (s ServiceAccounts) Adopt(ctx context.Context, sa *corev1.ServiceAccount, keys []string) (*corev1.ServiceAccount, error) {
	fields := make([]metav1.ManagedFieldsEntry, 0, len(sa.ManagedFields)+1)
	ours := -1
	changed := false
	for _, mf := range sa.ManagedFields {
		if mf.Manager == s.manager() && mf.Operation == metav1.ManagedFieldsOperationApply {
			ours = len(fields)
			fields = append(fields, mf)
			continue
		}
		rest, removed, err := withoutAnnotations(mf.FieldsV1, keys)
		if err != nil {
			return nil, fmt.Errorf("managedFields of %s: %w", mf.Manager, err)
		}
		changed = changed || removed
		if rest == nil {
			continue // the entry owned nothing else
		}
		mf.FieldsV1 = rest
		fields = append(fields, mf)
	}
	if ours < 0 {
		fields = append(fields, metav1.ManagedFieldsEntry{
			Manager: s.manager(), Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
			Time: &metav1.Time{Time: time.Now().UTC().Truncate(time.Second)}, FieldsType: "FieldsV1",
		})
		ours = len(fields) - 1
	}
	merged, added, err := withAnnotations(fields[ours].FieldsV1, keys)
	if err != nil {
		return nil, err
	}
	if !changed && !added {
		return sa, nil
	}
	fields[ours].FieldsV1 = merged
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": sa.ResourceVersion},
		{"op": "add", "path": "/metadata/managedFields", "value": fields},
	})
	if err != nil {
		return nil, err
	}
	adopted, err := s.Client.CoreV1().ServiceAccounts(sa.Namespace).Patch(ctx, sa.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
	if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "resourceVersion") {
		// The test op failed: changed since read. Callers retry a
		// conflict from a fresh read.
		return nil, apierrors.NewConflict(schema.GroupResource{Resource: "serviceaccounts"}, sa.Name, err)
	}
	return adopted, err
}

// fieldSet is a FieldsV1 document: "f:name" keys down to empty leaves.
type fieldSet map[string]any

func parseFields(f *metav1.FieldsV1) (fieldSet, error) {
	set := fieldSet{}
	if f == nil || len(f.GetRawBytes()) == 0 {
		return set, nil
	}
	return set, json.Unmarshal(f.GetRawBytes(), &set)
}

func (s fieldSet) annotations(create bool) fieldSet {
	meta, ok := s["f:metadata"].(map[string]any)
	if !ok {
		if !create {
			return nil
		}
		meta = map[string]any{}
		s["f:metadata"] = meta
	}
	ann, ok := meta["f:annotations"].(map[string]any)
	if !ok {
		if !create {
			return nil
		}
		ann = map[string]any{}
		meta["f:annotations"] = ann
	}
	return ann
}

// withoutAnnotations removes keys from a field set. Emptied parents go too:
// an empty "f:annotations" would mean owning the annotations map itself.
// A set left with nothing is nil.
func withoutAnnotations(f *metav1.FieldsV1, keys []string) (*metav1.FieldsV1, bool, error) {
	set, err := parseFields(f)
	if err != nil {
		return nil, false, err
	}
	ann := set.annotations(false)
	removed := false
	for _, k := range keys {
		if _, ok := ann["f:"+k]; ok {
			delete(ann, "f:"+k)
			removed = true
		}
	}
	if !removed {
		return f, false, nil
	}
	if len(ann) == 0 {
		meta, _ := set["f:metadata"].(map[string]any)
		delete(meta, "f:annotations")
		if len(meta) == 0 {
			delete(set, "f:metadata")
		}
	}
	if len(set) == 0 {
		return nil, true, nil
	}
	raw, err := json.Marshal(set)
	return metav1.NewFieldsV1(string(raw)), true, err
}

func withAnnotations(f *metav1.FieldsV1, keys []string) (*metav1.FieldsV1, bool, error) {
	set, err := parseFields(f)
	if err != nil {
		return nil, false, err
	}
	ann := set.annotations(true)
	added := false
	for _, k := range keys {
		if _, ok := ann["f:"+k]; !ok {
			ann["f:"+k] = map[string]any{}
			added = true
		}
	}
	raw, err := json.Marshal(set)
	return metav1.NewFieldsV1(string(raw)), added, err
}
