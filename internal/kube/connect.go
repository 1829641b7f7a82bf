// Package kube is the floor every part of the provider that talks to the
// Kubernetes API stands on: the connection (one client, one field manager),
// retries of what fails transiently, the live pods of a ServiceAccount, the
// namespace snapshots that plans share, the cluster's issuer, and RBAC
// refusals made readable. It knows no credential mechanism and recycles
// nothing: the mechanisms (internal/irsa) and the engine (internal/recycle)
// build on it.
package kube

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ConnectionConfig is the provider's kubernetes block with environment
// defaults already applied. The names follow the kubernetes and helm
// providers so a platform team can reuse the same settings.
type ConnectionConfig struct {
	ConfigPaths     []string
	Context         string
	ContextAuthInfo string
	ContextCluster  string

	Host                 string
	ClusterCACertificate string
	ClientCertificate    string
	ClientKey            string
	Token                string
	Insecure             bool
	TLSServerName        string
	ProxyURL             string
	Exec                 *ExecConfig

	UserAgent string
	// QPS and Burst are the client-side rate limit; zero means the default.
	QPS   float32
	Burst int
}

// The default client-side rate limit: high enough that Terraform's
// -parallelism, not the limit, paces an apply. A plan of any size reads two
// lists per namespace, well inside the burst; an apply makes two to three
// requests per binding plus those of recycling, and at 100 a second (the
// earlier default) 500 new bindings spent about eight seconds waiting on
// the limit alone (an apply of 500: 11.4 s, 8.5 s at this one). The API
// server protects itself with priority and fairness, and its 429s are
// retried after their Retry-After.
const (
	DefaultQPS   = 500.0
	DefaultBurst = 1000
)

// ExecConfig runs a credential plugin such as `aws eks get-token`.
type ExecConfig struct {
	APIVersion string
	Command    string
	Args       []string
	Env        map[string]string
}

// RESTConfig resolves the configuration the way the kubernetes provider v2
// does: kubeconfig files (explicit paths only) with the explicit settings
// layered on top; with neither, the in-cluster configuration. There is no
// implicit ~/.kube/config.
func (c ConnectionConfig) RESTConfig() (*rest.Config, error) {
	explicit := c.Host != "" || c.Token != "" || c.ClientCertificate != "" || c.Exec != nil
	paths := make([]string, 0, len(c.ConfigPaths))
	for _, p := range c.ConfigPaths {
		expanded, err := expandHome(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(expanded); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", p, err)
		}
		paths = append(paths, expanded)
	}
	if len(paths) == 0 && !explicit {
		// No implicit ~/.kube/config, as in the kubernetes provider v2: it
		// follows `kubectl config use-context`, and a plan would silently
		// go to whichever cluster was last used.
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, errors.New("no Kubernetes configuration: set kubernetes.config_path (or KUBE_CONFIG_PATH, or KUBECONFIG), " +
				"or kubernetes.host with credentials, or run the provider inside a pod")
		}
		return c.finish(cfg), nil
	}

	rules := &clientcmd.ClientConfigLoadingRules{Precedence: paths}
	overrides := &clientcmd.ConfigOverrides{
		CurrentContext: c.Context,
		Context:        clientcmdapi.Context{AuthInfo: c.ContextAuthInfo, Cluster: c.ContextCluster},
	}
	if c.Host != "" {
		overrides.ClusterInfo.Server = c.Host
	}
	if c.ClusterCACertificate != "" {
		overrides.ClusterInfo.CertificateAuthorityData = []byte(c.ClusterCACertificate)
	}
	if c.Insecure {
		overrides.ClusterInfo.InsecureSkipTLSVerify = true
	}
	overrides.ClusterInfo.TLSServerName = c.TLSServerName
	overrides.ClusterInfo.ProxyURL = c.ProxyURL
	if c.ClientCertificate != "" {
		overrides.AuthInfo.ClientCertificateData = []byte(c.ClientCertificate)
	}
	if c.ClientKey != "" {
		overrides.AuthInfo.ClientKeyData = []byte(c.ClientKey)
	}
	if c.Token != "" {
		overrides.AuthInfo.Token = c.Token
	}
	if c.Exec != nil {
		ex := &clientcmdapi.ExecConfig{
			APIVersion:      c.Exec.APIVersion,
			Command:         c.Exec.Command,
			Args:            c.Exec.Args,
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		}
		for k, v := range c.Exec.Env {
			ex.Env = append(ex.Env, clientcmdapi.ExecEnvVar{Name: k, Value: v})
		}
		overrides.AuthInfo.Exec = ex
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	if c.Context != "" {
		// clientcmd says only "context does not exist"; the user needs the
		// ones that do.
		raw, err := loader.RawConfig()
		if err == nil && raw.Contexts[c.Context] == nil {
			return nil, &ContextNotFoundError{Context: c.Context, Paths: c.ConfigPaths, Available: slices.Sorted(maps.Keys(raw.Contexts))}
		}
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return c.finish(cfg), nil
}

// RequestTimeout bounds each request to the API server, so that a hung
// server (or a proxy or load balancer holding the connection) fails a plan
// instead of hanging it: Terraform gives Read and plan no deadline. It is
// per request, not per operation: waits are many short requests, or watches
// that ask the API server to end them before this timeout
// (WatchTimeoutSeconds) and are resumed, under the resource's timeouts.
// The API server ends an ordinary request at 60 s itself; half that is
// still many times what a LIST of a few thousand pods takes.
const RequestTimeout = 30 * time.Second

// WatchTimeoutSeconds is how long a watch asks the API server to last:
// less than RequestTimeout, so that the server ends it cleanly rather than
// the client cutting it.
const WatchTimeoutSeconds = int64(RequestTimeout/time.Second) - 5

// ContextNotFoundError is a config_context that none of the kubeconfig files
// defines.
type ContextNotFoundError struct {
	Context   string
	Paths     []string
	Available []string
}

func (e *ContextNotFoundError) Error() string {
	return fmt.Sprintf("context %q is not in kubeconfig %s (contexts: %s)", e.Context,
		strings.Join(e.Paths, ", "), strings.Join(e.Available, ", "))
}

func (c ConnectionConfig) finish(cfg *rest.Config) *rest.Config {
	cfg.Timeout = RequestTimeout
	// client-go's default of 5 QPS would make an apply of many bindings
	// crawl; see DefaultQPS.
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	if c.QPS > 0 {
		cfg.QPS = c.QPS
	}
	if c.Burst > 0 {
		cfg.Burst = c.Burst
	}
	if c.UserAgent != "" {
		cfg.UserAgent = c.UserAgent
	}
	return cfg
}

// Conn is one connection to a cluster, acting as one field manager: every
// part that writes embeds it, so every write carries the same manager.
type Conn struct {
	Client       kubernetes.Interface
	FieldManager string
}

func expandHome(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
	}
	return p, nil
}
