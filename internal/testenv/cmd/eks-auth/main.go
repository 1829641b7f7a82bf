// Command eks-auth runs the local environment's EKS Auth API
// (AssumeRoleForPodIdentity) and, on a second port of the same address, the
// stand-in for the node's EKS Pod Identity Agent (GET /v1/credentials) that
// calls it. See package eksauth.
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
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/eksauth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eks-auth:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bind         = flag.String("bind-address", "127.0.0.1", "address both servers listen on")
		port         = flag.Int("port", 0, "port of the EKS Auth API")
		agentPort    = flag.Int("agent-port", 0, "port of the Pod Identity Agent stand-in")
		kubeconfig   = flag.String("kubeconfig", "", "kubeconfig of the cluster whose tokens are reviewed")
		clusterName  = flag.String("cluster-name", "", "EKS name of the cluster")
		clusterARN   = flag.String("cluster-arn", "", "ARN of the cluster (the eks-cluster-arn session tag)")
		account      = flag.String("account-id", "", "the cluster's account")
		region       = flag.String("region", "us-east-1", "region of the cluster and of the signing scope")
		iamEndpoint  = flag.String("iam-endpoint", "", "IAM endpoint (moto) whose roles' trust policies are checked")
		stsEndpoint  = flag.String("sts-endpoint", "", "STS endpoint (moto) that issues the credentials")
		associations = flag.String("associations-file", "", "the EKS API emulator's propagated associations (its --associations-file)")
		accessKey    = flag.String("access-key-id", "testing", "credentials EKS Auth and the agent sign their calls with")
		secretKey    = flag.String("secret-access-key", "testing", "see --access-key-id")
	)
	flag.Parse()
	for name, v := range map[string]string{"port": strconv.Itoa(*port), "agent-port": strconv.Itoa(*agentPort), "kubeconfig": *kubeconfig,
		"cluster-name": *clusterName, "cluster-arn": *clusterARN, "account-id": *account, "iam-endpoint": *iamEndpoint,
		"sts-endpoint": *stsEndpoint, "associations-file": *associations} {
		if v == "" || v == "0" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	creds := credentials.NewStaticCredentialsProvider(*accessKey, *secretKey, "")
	server := &eksauth.Server{
		ClusterName:  *clusterName,
		ClusterARN:   *clusterARN,
		Account:      *account,
		Associations: eksauth.PropagatedAssociations{Path: *associations},
		TokenReviews: kube.AuthenticationV1().TokenReviews(),
		STS:          sts.New(sts.Options{Region: *region, BaseEndpoint: aws.String(*stsEndpoint), Credentials: creds}),
		IAM:          iam.New(iam.Options{Region: *region, BaseEndpoint: aws.String(*iamEndpoint), Credentials: creds}),
		Log:          log.With("component", "eks-auth"),
	}
	apiAddr := net.JoinHostPort(*bind, strconv.Itoa(*port))
	agent := &eksauth.Agent{
		ClusterName: *clusterName,
		EKSAuth: &eksauth.Client{
			Endpoint:    "http://" + apiAddr,
			Region:      *region,
			Credentials: creds,
			HTTPClient:  &http.Client{Timeout: 10 * time.Second},
		},
		TargetHosts: []string{*bind},
		Log:         log.With("component", "agent"),
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{
		{Addr: apiAddr, Handler: server.Handler(), ReadHeaderTimeout: 10 * time.Second},
		{Addr: net.JoinHostPort(*bind, strconv.Itoa(*agentPort)), Handler: agent.Handler(), ReadHeaderTimeout: 10 * time.Second},
	}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return err
		}
		log.Info("listening", "addr", s.Addr)
		go func() { errs <- s.Serve(l) }()
	}
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}
