package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The token files the SDKs read, by the variables that name them.
var tokenFileVars = []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}

// Identity is who a container's credentials are, as sts:GetCallerIdentity
// answered the SDK's default chain run with the container's environment.
type Identity struct {
	ARN         string `json:"arn"`
	Account     string `json:"account"`
	UserID      string `json:"userId"`
	AccessKeyID string `json:"accessKeyId"`
	// Source is the SDK credential provider that answered, e.g.
	// WebIdentityCredentials or EndpointCredentialsProvider.
	Source string `json:"source"`
}

// SDKError is the SDK's error from a container's credential chain or its
// GetCallerIdentity call, as the program in the container saw it: the
// message, the API error code when the SDK had one, and the HTTP status.
type SDKError struct {
	Message    string
	Code       string
	HTTPStatus int
}

func (e *SDKError) Error() string { return e.Message }

// callerIdentityResult is what cmd/caller-identity prints.
type callerIdentityResult struct {
	Identity
	Error      string `json:"error"`
	ErrorCode  string `json:"errorCode"`
	HTTPStatus int    `json:"httpStatus"`
}

// CallerIdentity is the ARN the aws-sdk-go-v2 default credential chain gets
// for container of pod, or the SDK's error (an *SDKError); see Identity.
func (e *Env) CallerIdentity(ctx context.Context, pod *corev1.Pod, container string) (string, error) {
	id, err := e.Identity(ctx, pod, container)
	if err != nil {
		return "", err
	}
	return id.ARN, nil
}

// Identity runs the aws-sdk-go-v2 default credential chain as container of
// pod would, and returns sts:GetCallerIdentity's answer or the SDK's error.
// pod should be as the webhook mutated it, read back from the API server.
//
// The container's filesystem is played by a temporary directory: for each
// token file variable the container sets, a token is minted where the pod's
// projected volume would put it, the way the kubelet does (TokenRequest for
// the pod's ServiceAccount with the audience and lifetime of the projection,
// bound to the pod), and the variable is pointed at that copy. A path no
// mounted projection provides is pointed into the directory but left absent,
// as it would be in the pod.
//
// The chain runs in a separate process (cmd/caller-identity) whose
// environment is built from nothing: the container's AWS_* variables (literal
// values), the local STS endpoint (AWS_ENDPOINT_URL_STS), a region when the
// container has none, and AWS_EC2_METADATA_DISABLED (the environment has no
// instance metadata; on EKS a pod without credentials would fall through to
// the node's role). The SDK reads os.Getenv throughout (AWS_CONTAINER_
// AUTHORIZATION_TOKEN_FILE is read at credential time, not from the loaded
// config), so no option of LoadDefaultConfig could keep this test process's
// own AWS_ACCESS_KEY_ID, which the environment exports, from winning the
// chain in process; a clean process is the only way the answer is the pod's.
func (e *Env) Identity(ctx context.Context, pod *corev1.Pod, container string) (*Identity, error) {
	c, err := findContainer(pod, container)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(e.StateDir, "bin", "caller-identity")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("this environment has no caller-identity program (%w): restart it (make testenv-down testenv-up)", err)
	}
	root, err := os.MkdirTemp("", "irsa-container-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)

	env := map[string]string{}
	for _, v := range c.Env {
		if !strings.HasPrefix(v.Name, "AWS_") {
			continue
		}
		if v.ValueFrom != nil {
			return nil, fmt.Errorf("container %s takes %s from a source (valueFrom), which CallerIdentity does not resolve", c.Name, v.Name)
		}
		env[v.Name] = v.Value
	}
	for _, name := range tokenFileVars {
		path, ok := env[name]
		if !ok {
			continue
		}
		local := filepath.Join(root, filepath.Clean("/"+path))
		env[name] = local
		if err := e.mintProjectedToken(ctx, pod, c, path, local); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", name, path, err)
		}
	}
	env["AWS_ENDPOINT_URL_STS"] = e.MotoURL
	if env["AWS_REGION"] == "" && env["AWS_DEFAULT_REGION"] == "" {
		env["AWS_REGION"] = Region
	}
	env["AWS_EC2_METADATA_DISABLED"] = "true"

	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = root
	cmd.Env = make([]string, 0, len(env))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w; stderr: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	var res callerIdentityResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("read the output of %s: %w", bin, err)
	}
	if res.Error != "" {
		return nil, &SDKError{Message: res.Error, Code: res.ErrorCode, HTTPStatus: res.HTTPStatus}
	}
	return &res.Identity, nil
}

// mintProjectedToken writes to local the token the kubelet would put at
// path in container c: the projected serviceAccountToken source of the
// volume mounted over path. Nothing is written when none provides it.
func (e *Env) mintProjectedToken(ctx context.Context, pod *corev1.Pod, c *corev1.Container, path, local string) error {
	src := projectedTokenAt(pod, c, path)
	if src == nil {
		return nil
	}
	client, err := e.clientset()
	if err != nil {
		return err
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("request a token for ServiceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return err
	}
	return os.WriteFile(local, []byte(tr.Status.Token), 0o600)
}

// projectedTokenAt finds the serviceAccountToken projection that provides
// path in container c: the mount with the longest path over it, and in its
// projected volume the token source at the rest of the path.
func projectedTokenAt(pod *corev1.Pod, c *corev1.Container, path string) *corev1.ServiceAccountTokenProjection {
	var mount *corev1.VolumeMount
	var rel string
	for i, m := range c.VolumeMounts {
		r, err := filepath.Rel(m.MountPath, path)
		if err != nil || r == "." || r == ".." || strings.HasPrefix(r, "../") {
			continue
		}
		if mount == nil || len(m.MountPath) > len(mount.MountPath) {
			mount, rel = &c.VolumeMounts[i], r
		}
	}
	if mount == nil {
		return nil
	}
	if mount.SubPath != "" {
		rel = filepath.Join(mount.SubPath, rel)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name != mount.Name || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil && filepath.Clean(s.ServiceAccountToken.Path) == rel {
				return s.ServiceAccountToken
			}
		}
	}
	return nil
}

func findContainer(pod *corev1.Pod, name string) (*corev1.Container, error) {
	if pod == nil {
		return nil, errors.New("no pod")
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], nil
			}
		}
	}
	return nil, fmt.Errorf("pod %s/%s has no container %q", pod.Namespace, pod.Name, name)
}

func (e *Env) clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// CallerIdentity acts on the exported environment (see Main).
func CallerIdentity(ctx context.Context, pod *corev1.Pod, container string) (string, error) {
	e, err := exported()
	if err != nil {
		return "", err
	}
	return e.CallerIdentity(ctx, pod, container)
}

// IdentityOf is Identity on the exported environment (see Main).
func IdentityOf(ctx context.Context, pod *corev1.Pod, container string) (*Identity, error) {
	e, err := exported()
	if err != nil {
		return nil, err
	}
	return e.Identity(ctx, pod, container)
}

// IdentityOfPod is Identity for the first container of pod namespace/name,
// read from the API server.
func (e *Env) IdentityOfPod(ctx context.Context, namespace, name string) (*Identity, error) {
	client, err := e.clientset()
	if err != nil {
		return nil, err
	}
	pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("pod %s/%s has no container", namespace, name)
	}
	return e.Identity(ctx, pod, pod.Spec.Containers[0].Name)
}
