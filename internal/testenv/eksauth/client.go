package eksauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/restjson"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client calls AssumeRoleForPodIdentity as service/eksauth of
// aws-sdk-go-v2 does: a SigV4-signed (eks-auth) POST of {"token": ...} to
// /clusters/{clusterName}/assume-role-for-pod-identity; a 2xx body decoded
// with epoch-second timestamps; an error's code taken from X-Amzn-ErrorType,
// else the body's __type or code, its message from message or Message (the
// SDK's restjson helpers do both here too). It is the agent stand-in's client
// and the tests' way to reach the API, in place of the generated client that
// the module proxy does not serve.
type Client struct {
	// Endpoint is the API's base URL (AWS_ENDPOINT_URL_EKS_AUTH).
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient is http.DefaultClient when nil.
	HTTPClient *http.Client
}

// AssumeRoleForPodIdentity exchanges a pod's service account token for the
// credentials of its association's role.
func (c *Client) AssumeRoleForPodIdentity(ctx context.Context, clusterName, token string) (*AssumeRoleForPodIdentityOutput, error) {
	if clusterName == "" {
		return nil, errors.New("input member clusterName must not be empty")
	}
	body, err := json.Marshal(assumeRoleRequest{Token: token})
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimRight(c.Endpoint, "/") + fmt.Sprintf(assumeRoleForPodPathFmt, url.PathEscape(clusterName))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Credentials != nil {
		creds, err := c.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("retrieve credentials to sign the request: %w", err)
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), SigningName, c.Region, time.Now()); err != nil {
			return nil, fmt.Errorf("sign the request: %w", err)
		}
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, decodeError(resp, data)
	}
	var out AssumeRoleForPodIdentityOutput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("failed to decode response body: %w", err)
	}
	return &out, nil
}

func decodeError(resp *http.Response, body []byte) error {
	code := "UnknownError"
	if h := resp.Header.Get(errorTypeHeader); h != "" {
		code = restjson.SanitizeErrorCode(h)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	jsonCode, message, err := restjson.GetErrorInfo(dec)
	if err != nil {
		return fmt.Errorf("failed to decode the error response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.Header.Get(errorTypeHeader) == "" && jsonCode != "" {
		code = restjson.SanitizeErrorCode(jsonCode)
	}
	if message == "" {
		message = code
	}
	return &APIError{Code: code, Message: message, StatusCode: resp.StatusCode, RequestID: resp.Header.Get(requestIDHeader)}
}
