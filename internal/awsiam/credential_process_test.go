package awsiam

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A secret of a shape no redaction pattern knows: 17 characters, symbols.
const oddSecret = `Zq9#x!Lm2@Pw7$Rt4`

// credentialProcessClient is a Client whose profile runs script as its
// credential_process, through the SDK's own shared-config loading.
func credentialProcessClient(t *testing.T, script string) *Client {
	t.Helper()
	dir := t.TempDir()
	process := filepath.Join(dir, "credential-process")
	if err := os.WriteFile(process, []byte("#!/bin/sh\n"+script), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte("[profile helper]\ncredential_process = "+process+"\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", config)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	c, err := New(context.Background(), Settings{Profile: "helper", STSEndpoint: "http://127.0.0.1:1", IAMEndpoint: "http://127.0.0.1:1", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// windows returns every run of n bytes of s's words: a leak of any of
// them is a leak of what the process printed.
func windows(s string, n int) []string {
	var out []string
	for _, word := range strings.Fields(s) {
		for i := 0; i+n <= len(word); i++ {
			out = append(out, word[i:i+n])
		}
	}
	return out
}

// Each way the SDK's credential_process provider fails is said in words,
// and no 8 bytes of what the process printed reach the error, whichever
// path asks for the credentials.
func TestCredentialProcess_describesEachFailure(t *testing.T) {
	good := `{"Version":1,"AccessKeyId":"AKID` + oddSecret + `","SecretAccessKey":"` + oddSecret + `","SessionToken":"` + oddSecret + `tok"}`
	for _, tc := range []struct {
		name, stdout, exit string
		want               string
	}{
		{"JSON then a debug line", good + "\ndebug: got " + oddSecret, "0",
			"credential_process printed 2 lines: one JSON document followed by text that is not JSON; one JSON document"},
		{"two JSON documents", good + "\n" + good, "0", "printed 2 lines holding 2 JSON documents"},
		{"not JSON", "AccessKeyId: " + oddSecret + " SecretAccessKey: " + oddSecret, "0", "printed 1 line that is not JSON"},
		{"a number where a string goes", `{"Version":1,"AccessKeyId":12345678901234567,"SecretAccessKey":"` + oddSecret + `"}`, "0",
			"AccessKeyId is a JSON number, not a string"},
		{"an Expiration that is not a time", `{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"` + oddSecret + `","Expiration":"` + oddSecret + `"}`, "0",
			"printed 1 line whose Expiration is not an RFC 3339 time"},
		{"nothing", "", "0", "printed nothing on stdout"},
		{"version 2", `{"Version":2,"AccessKeyId":"AKID","SecretAccessKey":"` + oddSecret + `"}`, "0", "printed JSON whose Version is not 1"},
		{"no access key", `{"Version":1,"SecretAccessKey":"` + oddSecret + `"}`, "0", "printed JSON without an AccessKeyId"},
		{"no secret key", `{"Version":1,"AccessKeyId":"AKID` + oddSecret + `"}`, "0", "printed JSON without a SecretAccessKey"},
		{"credentials, then exit 3", good, "3", "credential_process exited with status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "cat <<'EOF'\n" + tc.stdout + "\nEOF\nexit " + tc.exit + "\n"
			if tc.stdout == "" {
				script = "exit " + tc.exit + "\n"
			}
			c := credentialProcessClient(t, script)
			checked := c.CheckCredentials(context.Background())
			_, called := c.Caller(context.Background(), "aws")
			for what, err := range map[string]error{"CheckCredentials": checked, "an STS call": called} {
				if err == nil {
					t.Fatalf("%s: no error", what)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.want) {
					t.Errorf("%s: %q does not say %q", what, msg, tc.want)
				}
				// Every value printed holds oddSecret; the JSON's field
				// names are the words the description itself uses.
				for _, w := range windows(oddSecret+" debug:", 8) {
					if strings.Contains(msg, w) {
						t.Fatalf("%s: the error quotes %q of what the process printed: %s", what, w, msg)
					}
				}
			}
			if !errors.Is(checked, ErrNoCredentials) {
				t.Errorf("CheckCredentials: %v is not ErrNoCredentials", checked)
			}
			var described *CredentialProcessError
			if !errors.As(called, &described) {
				t.Errorf("an STS call: %v holds no CredentialProcessError", called)
			}
		})
	}
}

// A process that hangs is stopped at its timeout and still counts as a
// deadline.
func TestCredentialProcess_timeoutIsADeadline(t *testing.T) {
	c := credentialProcessClient(t, "echo "+oddSecret+"\nexec sleep 5\n")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := c.cfg.Credentials.Retrieve(ctx)
	if err == nil || strings.Contains(err.Error(), oddSecret[:8]) {
		t.Fatalf("got %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not a deadline", err)
	}
}

// Working credentials pass through untouched.
func TestCredentialProcess_credentialsPassThrough(t *testing.T) {
	c := credentialProcessClient(t, `echo '{"Version":1,"AccessKeyId":"AKIDEXAMPLE","SecretAccessKey":"`+oddSecret+`"}'`+"\n")
	creds, err := c.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "AKIDEXAMPLE" || creds.SecretAccessKey != oddSecret {
		t.Errorf("got %+v", creds)
	}
}
