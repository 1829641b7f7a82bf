package redact

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
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

// The exec plugin's decoder quotes what it could not parse: the rest of
// the line goes, whatever its shape, and the words say why.
func TestString_removesQuotedHelperOutput(t *testing.T) {
	const odd = `Zq9#x!Lm2@Pw7$Rt4`
	for _, in := range []string{
		`Get "https://127.0.0.1:6443/api/v1/namespaces/x": getting credentials: decoding stdout: parsing time "` + odd + `" as "2006-01-02T15:04:05Z07:00": cannot parse "` + odd + `" as "2006"`,
		"process provider error: parse failed of process output: {\"SecretAccessKey\":\"" + odd + "\"} debug, error: invalid character 'd' after top-level value",
	} {
		got := String(in + "\nthe next line stays")
		if strings.Contains(got, odd[:8]) || strings.Contains(got, "invalid character 'd'") {
			t.Errorf("String(%q) = %q, still quotes the helper", in, got)
		}
		if !strings.Contains(got, "run the command yourself") || !strings.HasSuffix(got, "\nthe next line stays") {
			t.Errorf("String(%q) = %q, want the words in its place and the next line kept", in, got)
		}
	}
}

// Every line a credential helper writes on the provider's stderr is
// withheld; only its length reaches Terraform's log.
func TestCopyWithheld(t *testing.T) {
	var out strings.Builder
	copyWithheld(&out, strings.NewReader("debug: secret `Zq9#x!Lm2@Pw7$Rt4`\nno newline"))
	want := "[a credential helper (credential_process or exec plugin) wrote a line of 34 bytes on stderr; withheld, as it may hold credentials: run the helper yourself to see it]\n" +
		"[a credential helper (credential_process or exec plugin) wrote a line of 10 bytes on stderr; withheld, as it may hold credentials: run the helper yourself to see it]\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}

// FilterStderr in a process of its own: a child's stderr is withheld,
// klog's and the log package's lines arrive, redacted.
func TestFilterStderr(t *testing.T) {
	if os.Getenv("IRSA_REDACT_STDERR_CHILD") == "1" {
		if err := FilterStderr(); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		cmd := exec.Command("sh", "-c", "echo 'helper debug Zq9#x!Lm2@Pw7$Rt4' >&2")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		klog.Info("klog line with " + accessKeyID)
		klog.Flush()
		log.Print("log line with " + secretKey)
		_ = os.Stderr.Close()
		time.Sleep(200 * time.Millisecond) // the copier drains the pipe
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFilterStderr$")
	cmd.Env = append(os.Environ(), "IRSA_REDACT_STDERR_CHILD=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, out, stderr.String())
	}
	got := stderr.String()
	for _, want := range []string{"wrote a line of 31 bytes on stderr; withheld", "klog line with " + Mask, "log line with " + Mask} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr has no %q:\n%s", want, got)
		}
	}
	for _, leak := range []string{"Zq9#x!Lm", "helper debug", accessKeyID, secretKey} {
		if strings.Contains(got, leak) {
			t.Errorf("stderr holds %q:\n%s", leak, got)
		}
	}
}
