package smoketest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksauth"
)

// TestEKSAuth_Tokens calls the environment's EKS Auth directly, as the agent
// does, with tokens of one pod: the kubelet's kind, one for another
// audience, one whose lifetime is over, and requests EKS would refuse before
// looking at the token. The association is made through the EKS API
// emulator; EKS Auth knows it once it has propagated.
func TestEKSAuth_Tokens(t *testing.T) {
	t.Parallel()
	ctx, client, ns := setup(t)
	_, roleARN := createTrustRole(t, ctx, "auth", podIdentityTrust("pods.eks.amazonaws.com", "sts:AssumeRole", "sts:TagSession"))
	sa, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assoc := associate(t, ctx, ns, "app", roleARN)
	waitContainerCredentials(t, ctx, client, ns, "app")
	pod := createdPod(t, ctx, client, ns, "app")

	api := &eksauth.Client{
		Endpoint:    os.Getenv("AWS_ENDPOINT_URL_EKS_AUTH"),
		Region:      os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	}
	if api.Endpoint == "" {
		t.Fatal("AWS_ENDPOINT_URL_EKS_AUTH is not exported by the environment")
	}

	t.Run("the kubelet's token", func(t *testing.T) {
		before := time.Now()
		out, err := api.AssumeRoleForPodIdentity(ctx, "irsa-local", podToken(t, ctx, client, pod, "pods.eks.amazonaws.com"))
		if err != nil {
			t.Fatal(err)
		}
		if out.Subject != (eksauth.Subject{Namespace: ns, ServiceAccount: "app"}) || out.Audience != "pods.eks.amazonaws.com" {
			t.Errorf("subject %+v, audience %q", out.Subject, out.Audience)
		}
		id := aws.ToString(assoc.AssociationId)
		wantAssoc := eksauth.PodIdentityAssociation{
			AssociationID:  id,
			AssociationARN: "arn:aws:eks:us-east-1:" + account + ":podidentityassociation/irsa-local/" + id,
		}
		if out.PodIdentityAssociation != wantAssoc {
			t.Errorf("association %+v, want %+v", out.PodIdentityAssociation, wantAssoc)
		}
		if out.AssumedRoleUser.ARN == "" || out.AssumedRoleUser.AssumeRoleID == "" || out.Credentials.AccessKeyID == "" ||
			out.Credentials.SecretAccessKey == "" || out.Credentials.SessionToken == "" {
			t.Errorf("incomplete answer: %+v", out.AssumedRoleUser)
		}
		if exp := out.Credentials.Expiration.Time; !exp.After(before) || exp.After(before.Add(12*time.Hour)) {
			t.Errorf("credentials expire at %s, want within hours of now", exp)
		}
	})

	forged := func(t *testing.T, exp time.Time) string {
		return signServiceAccountToken(t, map[string]any{
			"iss": os.Getenv("IRSA_TESTENV_OIDC_ISSUER"), "sub": "system:serviceaccount:" + ns + ":app",
			"aud": []string{"pods.eks.amazonaws.com"},
			"iat": exp.Add(-2 * time.Hour).Unix(), "nbf": exp.Add(-2 * time.Hour).Unix(), "exp": exp.Unix(),
			"kubernetes.io": map[string]any{
				"namespace":      ns,
				"serviceaccount": map[string]any{"name": "app", "uid": string(sa.UID)},
				"pod":            map[string]any{"name": pod.Name, "uid": string(pod.UID)},
			},
		})
	}
	// The same claims with a lifetime not over yet are a valid token, so
	// the refusal below is for expiry alone.
	t.Run("a signed token in its lifetime", func(t *testing.T) {
		if _, err := api.AssumeRoleForPodIdentity(ctx, "irsa-local", forged(t, time.Now().Add(time.Hour))); err != nil {
			t.Fatalf("a token signed with the cluster's key was refused: %v", err)
		}
	})

	for _, tc := range []struct {
		name, cluster string
		token         func(t *testing.T) string
		unsigned      bool
		code          string
		status        int
	}{
		{name: "expired", cluster: "irsa-local", token: func(t *testing.T) string { return forged(t, time.Now().Add(-time.Minute)) },
			code: eksauth.CodeExpiredToken, status: 400},
		{name: "another audience", cluster: "irsa-local", token: func(t *testing.T) string { return podToken(t, ctx, client, pod, "sts.amazonaws.com") },
			code: eksauth.CodeInvalidToken, status: 400},
		{name: "not a token", cluster: "irsa-local", token: func(*testing.T) string { return "abc.def.ghi" },
			code: eksauth.CodeInvalidToken, status: 400},
		{name: "another cluster", cluster: "elsewhere", token: func(t *testing.T) string { return podToken(t, ctx, client, pod, "pods.eks.amazonaws.com") },
			code: eksauth.CodeResourceNotFound, status: 404},
		{name: "unsigned", cluster: "irsa-local", unsigned: true, token: func(t *testing.T) string { return podToken(t, ctx, client, pod, "pods.eks.amazonaws.com") },
			code: eksauth.CodeMissingAuthToken, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *api
			if tc.unsigned {
				c.Credentials = nil
			}
			out, err := c.AssumeRoleForPodIdentity(ctx, tc.cluster, tc.token(t))
			var apiErr *eksauth.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("AssumeRoleForPodIdentity = %+v, %v; want %s", out, err, tc.code)
			}
			if apiErr.Code != tc.code || apiErr.StatusCode != tc.status || apiErr.Message == "" {
				t.Errorf("error %s (HTTP %d) %q, want %s with HTTP %d", apiErr.Code, apiErr.StatusCode, apiErr.Message, tc.code, tc.status)
			}
		})
	}
}

// podToken is a token for pod's ServiceAccount bound to the pod, as the
// kubelet requests for a projected volume.
func podToken(t *testing.T, ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, audience string) string {
	t.Helper()
	tr, err := client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{audience},
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// signServiceAccountToken signs claims with the cluster's service account
// key, as the API server signs its tokens (RS256, kid the SHA-256 of the
// public key): the only way to get a token whose lifetime is over, since
// TokenRequest will not issue one shorter than ten minutes.
func signServiceAccountToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(os.Getenv("IRSA_TESTENV_STATE"), "pki", "sa.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("sa.key holds no PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("sa.key is a %T, want RSA", parsed)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	kid := sha256.Sum256(pub)
	segment := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := segment(map[string]string{"alg": "RS256", "kid": base64.RawURLEncoding.EncodeToString(kid[:])}) + "." + segment(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}
