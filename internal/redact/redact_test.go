package redact

import (
	"strings"
	"testing"
)

// Secrets of the shapes the provider meets. None of them is real.
const (
	accessKeyID  = "AKIAZX3EXAMPLE7QWERT"
	tempKeyID    = "ASIAZX3EXAMPLE7QWERT"
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sessionToken = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample0sessionToken1234567890abcdefGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	jwt          = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkV4YW1wbGUifQ.eyJzdWIiOiJzeXN0ZW06YWRtaW4ifQ.c2lnbmF0dXJlLWV4YW1wbGU"
	pemKey       = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIExampleExampleExampleExampleExampleExampleoAoGCCqGSM49\nAwEHoUQDQgAEExampleExampleExample==\n-----END EC PRIVATE KEY-----"
)

func TestString_removesCredentialShapes(t *testing.T) {
	for _, tc := range []struct{ name, in, secret string }{
		{"access key id", "credential_process printed AccessKeyId " + accessKeyID + ".", accessKeyID},
		{"temporary key id", `{"AccessKeyId":"` + tempKeyID + `"}`, tempKeyID},
		{"secret key", "SecretAccessKey=" + secretKey + "\n", secretKey},
		{"session token", `"SessionToken": "` + sessionToken + `"`, sessionToken},
		{"jwt", "Authorization: Bearer " + jwt, jwt},
		{"pem key", "client key:\n" + pemKey + "\ntrailing", "MHcCAQEEIExample"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.in)
			if strings.Contains(got, tc.secret) {
				t.Errorf("String(%q) = %q, still holds the secret", tc.in, got)
			}
			if !strings.Contains(got, Mask) {
				t.Errorf("String(%q) = %q, want %s in its place", tc.in, got, Mask)
			}
		})
	}
}

func TestString_keepsOrdinaryText(t *testing.T) {
	for _, s := range []string{
		"arn:aws:iam::123456789012:role/payments-api",
		"https://oidc.eks.us-east-1.amazonaws.com/id/38F939C001F25D5F0DE99365181A7FF6",
		"commit 3a33fb6cc605d2b4f1e0c9a8b7d6e5f4a3b2c1d0 is a hex digest", // 40 hex: no upper case
		"system:serviceaccount:payments:api-worker-with-a-rather-long-name-indeed",
		"/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AKIA is how access key IDs start",
	} {
		if got := String(s); got != s {
			t.Errorf("String(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestRegister_masksKnownValues(t *testing.T) {
	Register("kube-token-of-payments", "short", "line-one-of-a-key\nline-two-of-a-key")
	got := String("token kube-token-of-payments; short; escaped line-two-of-a-key")
	if strings.Contains(got, "kube-token-of-payments") || strings.Contains(got, "line-two-of-a-key") {
		t.Errorf("registered values survived: %q", got)
	}
	if !strings.Contains(got, "short") {
		t.Errorf("a value shorter than %d characters was masked: %q", MinLength, got)
	}
}

// What a credential helper prints on the provider's stderr reaches
// Terraform's log line by line, redacted.
func TestCopyRedacted(t *testing.T) {
	var out strings.Builder
	in := "first line\ncredential_process: " + accessKeyID + " " + secretKey + "\n" + `{"@message":"json stays one line"}` + "\nno newline " + tempKeyID
	copyRedacted(&out, strings.NewReader(in))
	want := "first line\ncredential_process: " + Mask + " " + Mask + "\n" + `{"@message":"json stays one line"}` + "\nno newline " + Mask
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}
