package provider

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"k8s.io/client-go/rest"

	"github.com/irsa-dev/terraform-provider-irsa/internal/awsiam"
	"github.com/irsa-dev/terraform-provider-irsa/internal/kube"
	"github.com/irsa-dev/terraform-provider-irsa/internal/redact"
)

// guard masks secrets in what a provider method hands back: the log lines
// written with the returned context, and, when done runs, the method's
// diagnostics. Every method that talks to the cluster or AWS starts with
//
//	ctx, done := guard(ctx, &resp.Diagnostics)
//	defer done()
func guard(ctx context.Context, diags *diag.Diagnostics) (context.Context, func()) {
	values := redact.Values()
	ctx = tflog.MaskMessageStrings(ctx, values...)
	ctx = tflog.MaskAllFieldValuesStrings(ctx, values...)
	ctx = tflog.MaskMessageRegexes(ctx, redact.LogPatterns()...)
	ctx = tflog.MaskAllFieldValuesRegexes(ctx, redact.LogPatterns()...)
	return ctx, func() { *diags = redactDiagnostics(*diags) }
}

// redactDiagnostics rebuilds the diagnostics whose text holds a secret,
// keeping severity and attribute path.
func redactDiagnostics(in diag.Diagnostics) diag.Diagnostics {
	if len(in) == 0 {
		return in
	}
	out := make(diag.Diagnostics, 0, len(in))
	for _, d := range in {
		summary, detail := redact.String(d.Summary()), redact.String(d.Detail())
		if summary == d.Summary() && detail == d.Detail() {
			out = append(out, d)
			continue
		}
		withPath, hasPath := d.(diag.DiagnosticWithPath)
		switch {
		case hasPath && d.Severity() == diag.SeverityError:
			out = append(out, diag.NewAttributeErrorDiagnostic(withPath.Path(), summary, detail))
		case hasPath:
			out = append(out, diag.NewAttributeWarningDiagnostic(withPath.Path(), summary, detail))
		case d.Severity() == diag.SeverityError:
			out = append(out, diag.NewErrorDiagnostic(summary, detail))
		default:
			out = append(out, diag.NewWarningDiagnostic(summary, detail))
		}
	}
	return out
}

// registerKubeSecrets records the Kubernetes credentials of the provider's
// settings, before anything can fail with them in a message.
func registerKubeSecrets(c kube.ConnectionConfig) {
	redact.Register(c.Token, c.ClientKey)
	if c.Exec != nil {
		for _, v := range c.Exec.Env {
			redact.Register(v)
		}
	}
}

// registerRESTSecrets records the credentials a kubeconfig file brought in.
func registerRESTSecrets(cfg *rest.Config) {
	redact.Register(cfg.BearerToken, cfg.Password, string(cfg.KeyData))
	if cfg.ExecProvider != nil {
		for _, e := range cfg.ExecProvider.Env {
			redact.Register(e.Value)
		}
	}
}

// registerAWSEnvSecrets records the AWS credentials of the environment; the
// ones of profiles, credential_process and assume_role are recorded when
// they are retrieved (redactCredentials).
func registerAWSEnvSecrets() {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		redact.Register(os.Getenv(k))
	}
}

// redactCredentials records the credentials the AWS client resolved.
func (d *providerData) redactCredentials(ctx context.Context, client *awsiam.Client) {
	d.credsOnce.Do(func() {
		if creds, err := client.Credentials(ctx); err == nil {
			redact.Register(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
		}
	})
}
