package main

import (
	"maps"
	"testing"
	"time"
)

func TestParseRequests(t *testing.T) {
	t.Parallel()
	raw := []byte(`# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="status",verb="PATCH",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 4
apiserver_request_duration_seconds_count{resource="pods",verb="LIST"} 99
`)
	want := counts{"LIST pods": 10, "PATCH deployments/status": 2, nonResource: 4}
	if got := parseRequests(raw); !maps.Equal(got, want) {
		t.Errorf("parseRequests = %v, want %v", got, want)
	}
}

func TestNet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  counts
		rate idleRate
		d    time.Duration
		want counts
	}{
		{
			name: "idle rate times the length is taken off",
			raw:  counts{"GET serviceaccounts": 500, "PUT leases": 12},
			rate: idleRate{"PUT leases": 1},
			d:    10 * time.Second,
			want: counts{"GET serviceaccounts": 500, "PUT leases": 2},
		},
		{
			name: "never below zero, and the closing scrape is not counted",
			raw:  counts{"PUT leases": 3, nonResource: 1},
			rate: idleRate{"PUT leases": 1},
			d:    10 * time.Second,
			want: counts{},
		},
		{
			name: "discovery requests stay, less the scrape",
			raw:  counts{nonResource: 6},
			want: counts{nonResource: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := net(tt.raw, tt.rate, tt.d); !maps.Equal(got, tt.want) {
				t.Errorf("net = %v, want %v", got, tt.want)
			}
		})
	}
}
