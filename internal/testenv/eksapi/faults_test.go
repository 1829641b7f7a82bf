package eksapi

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
)

// The SDK's standard retryer makes 3 attempts; it retries
// ThrottlingException (a throttle code) and 500 (a transient status).
const sdkAttempts = 3

func (h *harness) setFaults(f Faults) {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	h.srv.faults = f
}

func (h *harness) describeCluster(t *testing.T) error {
	t.Helper()
	_, err := h.client.DescribeCluster(t.Context(), &eks.DescribeClusterInput{Name: aws.String(testCluster)})
	return err
}

func TestFaults_TheSDKRetriesThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults Faults
	}{
		{"throttling", Faults{Throttle: sdkAttempts - 1}},
		{"server errors", Faults{ServerErrors: sdkAttempts - 1}},
		{"one of each", Faults{Throttle: 1, ServerErrors: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.setFaults(tc.faults)
			if err := h.describeCluster(t); err != nil {
				t.Fatalf("with %d faults before success, the SDK gave up: %v", sdkAttempts-1, err)
			}
			if got := h.srv.RequestCounts()["DescribeCluster"]; got != sdkAttempts {
				t.Errorf("requests = %d, want %d (the faulted ones, then the one that succeeded)", got, sdkAttempts)
			}
			// Used up: the next call is answered at once.
			if err := h.describeCluster(t); err != nil {
				t.Fatal(err)
			}
			if got := h.srv.RequestCounts()["DescribeCluster"]; got != sdkAttempts+1 {
				t.Errorf("requests = %d after a clean call, want %d", got, sdkAttempts+1)
			}
		})
	}
}

func TestFaults_PastTheRetriesTheSDKReturnsTheTypedError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setFaults(Faults{Throttle: sdkAttempts})
	wantAPIError[*types.ThrottlingException](t, h.describeCluster(t), "Rate exceeded")

	h.setFaults(Faults{ServerErrors: sdkAttempts})
	wantAPIError[*types.ServerException](t, h.describeCluster(t), "internal error")
	if got := h.srv.RequestCounts()["DescribeCluster"]; got != 2*sdkAttempts {
		t.Errorf("requests = %d, want %d: every attempt reached the emulator", got, 2*sdkAttempts)
	}
}

func TestFaults_LimitedToNamedOperations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.setFaults(Faults{Throttle: 100, Operations: []string{"CreatePodIdentityAssociation"}})
	if err := h.describeCluster(t); err != nil {
		t.Fatalf("DescribeCluster was faulted although only Create was named: %v", err)
	}
	_, err := h.createErr(t, "default", "app", roleARN("app"))
	wantAPIError[*types.ThrottlingException](t, err, "")
	// A faulted Create did nothing: nothing to conflict with once the
	// faults are gone.
	h.setFaults(Faults{})
	h.create(t, "default", "app", roleARN("app"))
	if got := h.srv.RequestCounts()["CreatePodIdentityAssociation"]; got != sdkAttempts+1 {
		t.Errorf("Create requests = %d, want %d", got, sdkAttempts+1)
	}
}
