// Command pod-identity-webhook is the local environment's EKS pod identity
// webhook. It takes upstream's out-of-cluster flags, so the environment can
// start either this binary or amazon-eks-pod-identity-webhook with one
// command line.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pod-identity-webhook:", err)
		os.Exit(1)
	}
}

func run() error {
	def := podidentity.DefaultConfig()
	var (
		bind       = flag.String("bind-address", "127.0.0.1", "address to listen on (not an upstream flag: upstream listens on all interfaces)")
		port       = flag.Int("port", 443, "port to listen on")
		_          = flag.Int("metrics-port", 9999, "accepted for compatibility; metrics are not served")
		tlsCert    = flag.String("tls-cert", "", "serving certificate (PEM)")
		tlsKey     = flag.String("tls-key", "", "serving key (PEM)")
		inCluster  = flag.Bool("in-cluster", true, "use in-cluster configuration")
		kubeconfig = flag.String("kubeconfig", "", "kubeconfig to use when --in-cluster=false")
		audience   = flag.String("token-audience", def.Audience, "default audience of the projected token")
		expiration = flag.Int64("token-expiration", def.TokenExpiration, "default token lifetime in seconds")
		mountPath  = flag.String("token-mount-path", def.MountPath, "where the token volume is mounted")
		region     = flag.String("aws-default-region", "", "inject AWS_REGION and AWS_DEFAULT_REGION with this value")
		regional   = flag.Bool("sts-regional-endpoint", false, "inject AWS_STS_REGIONAL_ENDPOINTS=regional for every pod")
		grace      = flag.Duration("service-account-lookup-grace-period", 0, "how long to wait for a ServiceAccount missing from the cache")
		cacheDelay = flag.Duration("cache-delay", 0, "delay every ServiceAccount cache update (reproduces the informer race; also PUT /testenv/cache-delay)")
		_          = flag.String("annotation-prefix", podidentity.AnnotationPrefix, "accepted for compatibility; only the default is supported")
		_          = flag.Bool("watch-config-map", false, "accepted for compatibility; ignored")
	)
	identitiesFile, cc := containerCredentialsFlags(flag.CommandLine)
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *inCluster {
		return errors.New("only --in-cluster=false is supported: pass --kubeconfig")
	}
	if *tlsCert == "" || *tlsKey == "" {
		return errors.New("--tls-cert and --tls-key are required")
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := podidentity.Config{
		Audience:        *audience,
		TokenExpiration: *expiration,
		MountPath:       *mountPath,
		Region:          *region,
		RegionalSTS:     *regional,
	}
	saCache, err := podidentity.NewServiceAccountCache(ctx, client, cfg)
	if err != nil {
		return err
	}
	saCache.SetDelay("", *cacheDelay)

	cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	var identities *podidentity.Identities
	if *identitiesFile != "" {
		identities = &podidentity.Identities{}
		if err := podidentity.WatchFile(ctx, *identitiesFile, identities.Load, log); err != nil {
			return fmt.Errorf("watch the container credentials config: %w", err)
		}
	}
	h := &podidentity.Handler{
		Cache: saCache, Cfg: cfg, Grace: *grace, Log: log,
		Identities: identities, ContainerCredentials: *cc,
	}
	srv := &http.Server{
		Addr:              net.JoinHostPort(*bind, strconv.Itoa(*port)),
		Handler:           h.Routes(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Info("serving", "addr", srv.Addr)
	if err := srv.ListenAndServeTLS("", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// containerCredentialsFlags defines upstream's flags of the container
// credentials mode on fs: the identities file to watch and what is injected
// for the ServiceAccounts it lists.
func containerCredentialsFlags(fs *flag.FlagSet) (identitiesFile *string, cc *podidentity.ContainerCredentialsConfig) {
	def := podidentity.DefaultContainerCredentialsConfig()
	cc = &podidentity.ContainerCredentialsConfig{}
	identitiesFile = fs.String("watch-container-credentials-config", "", "the container credentials config file to watch: the ServiceAccounts that get EKS Pod Identity credentials")
	fs.StringVar(&cc.Audience, "container-credentials-audience", def.Audience, "audience of the container credentials token")
	fs.StringVar(&cc.MountPath, "container-credentials-token-mount-path", def.MountPath, "where the container credentials token volume is mounted")
	fs.StringVar(&cc.VolumeName, "container-credentials-token-volume-name", def.VolumeName, "name of the container credentials token volume")
	fs.StringVar(&cc.TokenPath, "container-credentials-token-path", def.TokenPath, "file name of the container credentials token in its volume")
	fs.StringVar(&cc.FullURI, "container-credentials-full-uri", def.FullURI, "value of AWS_CONTAINER_CREDENTIALS_FULL_URI in mutated containers")
	return identitiesFile, cc
}
