package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DiscoverIssuer reads the cluster's service account issuer from the API
// server's OpenID discovery document, as `kubectl get --raw
// /.well-known/openid-configuration` shows it. On EKS it is
// https://oidc.eks.REGION.amazonaws.com/id/ID.
func DiscoverIssuer(ctx context.Context, client kubernetes.Interface) (string, error) {
	var raw []byte
	// Retried like a ServiceAccount read: the provider caches the answer,
	// error or not, for the whole run.
	err := OnTransient(ctx, func() (err error) {
		raw, err = client.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
		return err
	})
	if err != nil {
		// The discovery client does not decode a Status body, so its
		// error says only "unknown"; the body says what was refused.
		var status metav1.Status
		if json.Unmarshal(raw, &status) == nil && status.Kind == "Status" && status.Message != "" {
			err = &apierrors.StatusError{ErrStatus: status}
		}
		return "", fmt.Errorf("read /.well-known/openid-configuration: %w", err)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("decode /.well-known/openid-configuration: %w", err)
	}
	if doc.Issuer == "" {
		return "", errors.New("/.well-known/openid-configuration has no issuer")
	}
	return doc.Issuer, nil
}
