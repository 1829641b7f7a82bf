// Command eks-api is the local environment's emulator of the Amazon EKS
// API (package eksapi) as a process of its own, so that it can be killed
// and restarted like the environment's other components. It keeps its
// associations in a state file, so a restart finds them again.
package main

import (
	"context"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eks-api:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bind        = flag.String("bind-address", "127.0.0.1", "address to listen on")
		port        = flag.Int("port", 0, "port to listen on")
		cluster     = flag.String("cluster-name", "", "name of the one cluster")
		region      = flag.String("region", "us-east-1", "region of the cluster (ARNs)")
		account     = flag.String("account-id", "123456789012", "account of the cluster (ARNs)")
		issuer      = flag.String("issuer", "", "the cluster's OIDC issuer (identity.oidc.issuer)")
		endpoint    = flag.String("endpoint", "", "the cluster's API server URL")
		caFile      = flag.String("ca-file", "", "the cluster CA certificate (PEM), served as certificateAuthority.data")
		version     = flag.String("kubernetes-version", "", "the cluster's Kubernetes minor version, e.g. 1.37")
		iamEndpoint = flag.String("iam-endpoint", "", "IAM API that roles are checked against (moto_server); empty accepts every role")
		identities  = flag.String("identities-file", "", "the pod identity webhook's identities file to keep")
		propagated  = flag.String("associations-file", "", "where to write the propagated associations EKS Auth reads")
		stateFile   = flag.String("state-file", "", "where associations are kept across restarts")
		createdAt   = flag.String("created-at", "", "the cluster's creation time (RFC 3339), the same across restarts; default now")
		delay       = flag.Duration("propagation-delay", 3*time.Second, "how long after a change both files show it")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	cfg := eksapi.Config{
		ClusterName: *cluster, Region: *region, AccountID: *account,
		Issuer: *issuer, Endpoint: *endpoint, KubernetesVersion: *version,
		IdentitiesFile: *identities, AssociationsFile: *propagated, StateFile: *stateFile, PropagationDelay: *delay, Log: log,
	}
	if *caFile != "" {
		ca, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		cfg.CAData = ca
	}
	if *iamEndpoint != "" {
		// The environment's fixed test credentials, as every moto client
		// of the environment uses.
		cfg.Roles = eksapi.IAMRoles{Client: iam.New(iam.Options{
			Region:       *region,
			BaseEndpoint: aws.String(*iamEndpoint),
			Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		})}
	}
	if *createdAt != "" {
		t, err := time.Parse(time.RFC3339, *createdAt)
		if err != nil {
			return fmt.Errorf("--created-at: %w", err)
		}
		cfg.CreatedAt = t
	}
	srv, err := eksapi.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{
		Addr:              net.JoinHostPort(*bind, strconv.Itoa(*port)),
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdownCtx)
	}()
	log.Info("serving", "addr", hs.Addr, "cluster", *cluster, "propagation-delay", delay.String())
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
