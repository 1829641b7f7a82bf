package provider

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// randomFrom returns n characters drawn from alphabet, and makes sure the
// result mixes upper case, lower case and digits, like a real key.
func randomFrom(t *testing.T, alphabet string, n int) string {
	t.Helper()
	for {
		b := make([]byte, n)
		for i := range b {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				t.Fatal(err)
			}
			b[i] = alphabet[k.Int64()]
		}
		s := string(b)
		if strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "0123456789") &&
			(!strings.ContainsAny(alphabet, "abc") || strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz")) {
			return s
		}
	}
}

const (
	upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// A full create, plan and destroy under TF_LOG=TRACE, with every kind of
// secret the provider handles, each a working one where the environment
// allows: no secret may appear in the logs (Terraform's and the
// provider's, in TF_LOG_PATH), the CLI output, the state or the saved plan.
func TestAccServiceAccountBinding_secretsNeverLeak(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	for _, sa := range []string{"api-token", "api-cert", "api-exec", "api-leaky"} {
		c.createSA(sa)
	}
	role := trustedRole(t, "system:serviceaccount:"+c.ns+":*")
	rest, err := restConfigForTests()
	if err != nil {
		t.Fatal(err)
	}
	ca := readFile(t, rest.CAFile)
	clientCert, clientKey := readFile(t, rest.CertFile), readFile(t, rest.KeyFile)

	// A real ServiceAccount token with the rights of a cluster admin.
	ctx := context.Background()
	admin := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "secret-test-admin", Namespace: c.ns}}
	if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Create(ctx, admin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "irsa-" + c.ns + "-secret-test"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: admin.Name, Namespace: c.ns}},
	}
	if _, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.client.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	expiry := int64(3600)
	tr, err := c.client.CoreV1().ServiceAccounts(c.ns).CreateToken(ctx, admin.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, token, 0o600)
	// An exec plugin that hands out the token and, like a careless one,
	// prints its secret environment on stderr.
	execSecret := "irsa-exec-env-" + randomFrom(t, base64Chars[:62], 24)
	execPlugin := filepath.Join(dir, "exec-plugin")
	writeFile(t, execPlugin, fmt.Sprintf(`#!/bin/sh
echo "exec plugin: IRSA_EXEC_SECRET=$IRSA_EXEC_SECRET" >&2
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%%s"}}\n' "$(cat %s)"
`, tokenFile), 0o700)

	// The environment's AWS credentials: distinctive, key-shaped, and
	// accepted by the emulator.
	accessKey := "AKIA" + randomFrom(t, upperDigits, 16)
	secretKey := randomFrom(t, base64Chars, 40)
	sessionToken := "IQoJb3JpZ2luX2Vj" + randomFrom(t, base64Chars, 240)
	// A credential_process that fails by printing credentials instead of
	// JSON: the SDK quotes its stdout in the error, and its stderr is the
	// provider's.
	leakedKey := "ASIA" + randomFrom(t, upperDigits, 16)
	leakedSecret := randomFrom(t, base64Chars, 40)
	leakedToken := "FwoGZXIvYXdzE" + randomFrom(t, base64Chars, 200)
	credProcess := filepath.Join(dir, "credential-process")
	writeFile(t, credProcess, fmt.Sprintf(`#!/bin/sh
echo "AccessKeyId: %[1]s SecretAccessKey: %[2]s SessionToken: %[3]s"
echo "debug: AccessKeyId=%[1]s SecretAccessKey=%[2]s SessionToken=%[3]s" >&2
`, leakedKey, leakedSecret, leakedToken), 0o700)
	awsConfig := filepath.Join(dir, "aws-config")
	writeFile(t, awsConfig, "[profile leaky]\ncredential_process = "+credProcess+"\nregion = us-east-1\n", 0o600)

	kube := func(auth string) string {
		return fmt.Sprintf("  kubernetes = {\n    host                   = %q\n    cluster_ca_certificate = %q\n%s\n  }\n", rest.Host, ca, auth)
	}
	binding := func(name, provider, sa string) string {
		return fmt.Sprintf("resource \"irsa_service_account_binding\" %q {\n  provider        = %s\n  namespace       = %q\n  service_account = %q\n  role_arn        = %q\n}\n",
			name, provider, c.ns, sa, role)
	}
	config := "provider \"irsa\" {\n" + kube(fmt.Sprintf("    token = %q", token)) + "}\n" +
		"provider \"irsa\" {\n  alias = \"cert\"\n" + kube(fmt.Sprintf("    client_certificate = %q\n    client_key = %q", clientCert, clientKey)) + "}\n" +
		"provider \"irsa\" {\n  alias = \"exec\"\n" + kube(fmt.Sprintf(`    exec = {
      api_version = "client.authentication.k8s.io/v1"
      command     = %q
      env         = { IRSA_EXEC_SECRET = %q }
    }`, execPlugin, execSecret)) + "}\n" +
		"provider \"irsa\" {\n  alias = \"leaky\"\n  aws = { profile = \"leaky\" }\n" + kube(fmt.Sprintf("    token = %q", token)) + "}\n" +
		binding("token", "irsa", "api-token") + binding("cert", "irsa.cert", "api-cert") +
		binding("exec", "irsa.exec", "api-exec") + binding("leaky", "irsa.leaky", "api-leaky")

	tf := newTerraformCLI(t, config)
	logFile := filepath.Join(dir, "terraform.log")
	tf.env = append(tf.env, "TF_LOG=TRACE", "TF_LOG_PATH="+logFile,
		"AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_SESSION_TOKEN="+sessionToken,
		"AWS_CONFIG_FILE="+awsConfig, "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")

	places := map[string]string{}
	step := func(want int, args ...string) string {
		t.Helper()
		code, out := tf.run(args...)
		places["output of terraform "+strings.Join(args, " ")] = out
		if code != want {
			t.Fatalf("terraform %s exited %d, want %d:\n%s", args[0], code, want, out)
		}
		return out
	}
	applied := step(0, "apply", "-auto-approve", "-input=false", "-no-color")
	// The leaky profile's failure is reported in words.
	if !strings.Contains(applied, "Trust Check Skipped") || !strings.Contains(strings.Join(strings.Fields(applied), " "), "credential_process printed 1 line that is not JSON") {
		t.Errorf("apply did not say what the failing credential_process did wrong:\n%s", applied)
	}
	step(0, "plan", "-detailed-exitcode", "-input=false", "-no-color", "-out=tfplan")
	step(0, "show", "-no-color", "tfplan")
	// The JSON plan's "configuration" is the configuration as written,
	// and Terraform reproduces literal provider settings there whatever
	// the schema marks sensitive: it is left out, the rest is grepped.
	var plan map[string]any
	if err := json.Unmarshal([]byte(step(0, "show", "-json", "tfplan")), &plan); err != nil {
		t.Fatal(err)
	}
	delete(plan, "configuration")
	planJSON, _ := json.Marshal(plan)
	places["output of terraform show -json tfplan"] = string(planJSON)
	state := step(0, "show", "-json")
	if !strings.Contains(state, `"api-exec"`) {
		t.Fatalf("the state does not hold the bindings:\n%s", state)
	}
	step(0, "destroy", "-auto-approve", "-input=false", "-no-color")
	for _, sa := range []string{"api-token", "api-cert", "api-exec", "api-leaky"} {
		got, err := c.getSA(sa)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := got.Annotations["eks.amazonaws.com/role-arn"]; ok {
			t.Errorf("%s still annotated with %s after destroy", sa, v)
		}
	}

	logs := readFile(t, logFile)
	// The log is Terraform's and the provider's, at TRACE: a check that
	// finds nothing in an empty log proves nothing.
	for _, want := range []string{"[TRACE]", "terraform-provider-irsa", "ConfigureProvider", "withheld, as it may hold credentials"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the TF_LOG_PATH log (%d bytes) has no %q", len(logs), want)
		}
	}
	places["TF_LOG_PATH log"] = logs
	places["state file"] = readFile(t, filepath.Join(tf.dir, "terraform.tfstate"))
	places["state backup"] = readFileIfExists(t, filepath.Join(tf.dir, "terraform.tfstate.backup"))
	secrets := map[string]string{
		"kubernetes token":                 token,
		"exec env value":                   execSecret,
		"AWS access key ID":                accessKey,
		"AWS secret access key":            secretKey,
		"AWS session token":                sessionToken,
		"credential_process access key":    leakedKey,
		"credential_process secret key":    leakedSecret,
		"credential_process session token": leakedToken,
	}
	for i, line := range strings.Split(strings.TrimSpace(clientKey), "\n") {
		if !strings.HasPrefix(line, "-----") {
			secrets[fmt.Sprintf("client_key line %d", i)] = line
		}
	}
	for where, text := range places {
		for what, secret := range secrets {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("the %s appears in the %s: ...%s...", what, where, text[max(0, i-300):i])
			}
		}
	}
	t.Logf("grepped %d secrets in %d places; log %d bytes", len(secrets), len(places), len(logs))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readFileIfExists(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// Credential helpers that print a little more than asked, with secrets of
// a shape no pattern knows: a credential_process printing its JSON and a
// debug line, and an exec plugin whose expirationTimestamp is not a time
// (client-go's decoder quotes the value). What they printed, on
// stdout or stderr, never reaches the CLI's output or the TRACE log; the
// diagnostics say in words what was wrong.
func TestAccServiceAccountBinding_credentialHelperOutputNeverShown(t *testing.T) {
	requireEnv(t)
	c := newTestCluster(t)
	c.createSA("api")
	role := trustedRole(t, "system:serviceaccount:"+c.ns+":api")
	rest, err := restConfigForTests()
	if err != nil {
		t.Fatal(err)
	}
	// 17 characters of symbols: neither key-shaped nor registered.
	odd := randomFrom(t, base64Chars[:62], 9) + "#!@$%^&*"
	dir := t.TempDir()
	credProcess := filepath.Join(dir, "credential-process")
	writeFile(t, credProcess, fmt.Sprintf(`#!/bin/sh
echo '{"Version":1,"AccessKeyId":"AKID%[1]s","SecretAccessKey":"%[1]s","SessionToken":"tok%[1]s"}'
echo "debug: handed out %[1]s"
echo "debug on stderr: %[1]s" >&2
`, odd), 0o700)
	awsConfig := filepath.Join(dir, "aws-config")
	writeFile(t, awsConfig, "[profile chatty]\ncredential_process = "+credProcess+"\nregion = us-east-1\n", 0o600)
	execPlugin := filepath.Join(dir, "exec-plugin")
	writeFile(t, execPlugin, fmt.Sprintf(`#!/bin/sh
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%[1]s","expirationTimestamp":"%[1]s"}}'
echo "debug on stderr: %[1]s" >&2
`, odd), 0o700)

	binding := fmt.Sprintf("resource \"irsa_service_account_binding\" \"api\" {\n  namespace       = %q\n  service_account = \"api\"\n  role_arn        = %q\n}\n", c.ns, role)
	tf := newTerraformCLI(t, "provider \"irsa\" {\n  aws = { profile = \"chatty\" }\n}\n"+binding)
	logFile := filepath.Join(dir, "terraform.log")
	tf.env = append(tf.env, "TF_LOG=TRACE", "TF_LOG_PATH="+logFile, "AWS_CONFIG_FILE="+awsConfig,
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=")

	code, planned := tf.run("plan", "-input=false", "-no-color")
	if code != 0 {
		t.Fatalf("plan with the chatty credential_process exited %d:\n%s", code, planned)
	}
	for _, want := range []string{"Trust Check Skipped", "credential_process printed 2 lines: one JSON document followed by text that", "run the command yourself"} {
		if !strings.Contains(strings.Join(strings.Fields(planned), " "), want) {
			t.Errorf("the plan does not say %q:\n%s", want, planned)
		}
	}

	ca := readFile(t, rest.CAFile)
	tf.configure(fmt.Sprintf(`provider "irsa" {
  kubernetes = {
    host                   = %q
    cluster_ca_certificate = %q
    exec = {
      api_version = "client.authentication.k8s.io/v1"
      command     = %q
    }
  }
}
`, rest.Host, ca, execPlugin) + binding)
	code, failed := tf.run("plan", "-input=false", "-no-color")
	if code == 0 {
		t.Fatalf("plan with the chatty exec plugin succeeded:\n%s", failed)
	}
	if !strings.Contains(strings.Join(strings.Fields(failed), " "), "did not print one ExecCredential JSON document") {
		t.Errorf("the failed plan does not say what the exec plugin did wrong:\n%s", failed)
	}

	logs := readFile(t, logFile)
	if !strings.Contains(logs, "withheld, as it may hold credentials") {
		t.Errorf("the TRACE log (%d bytes) does not show the helpers' stderr lines withheld", len(logs))
	}
	for where, text := range map[string]string{"plan output": planned, "failed plan output": failed, "TF_LOG_PATH log": logs} {
		for i := 0; i+8 <= len(odd); i++ {
			if j := strings.Index(text, odd[i:i+8]); j >= 0 {
				t.Errorf("the %s holds %q of what a helper printed: ...%s...", where, odd[i:i+8], text[max(0, j-200):min(len(text), j+50)])
			}
		}
	}
}
