package main

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// counts are API requests by "VERB resource[/subresource]".
type counts map[string]float64

// total sums every key.
func (c counts) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// nonResource is the key of requests to paths that are not resources
// (discovery, /openapi, /metrics, /version).
const nonResource = "(non-resource)"

var requestLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} (\S+)$`)

// scrape reads apiserver_request_total from the API server's /metrics,
// summed by verb and resource over every other label (code, scope, group,
// version, component, dry_run).
func scrape(ctx context.Context, client kubernetes.Interface) (counts, error) {
	raw, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseRequests(raw), nil
}

func parseRequests(raw []byte) counts {
	c := counts{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := requestLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		n, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		key := labels["verb"] + " " + labels["resource"]
		switch {
		case labels["resource"] == "":
			key = nonResource
		case labels["subresource"] != "":
			key += "/" + labels["subresource"]
		}
		c[key] += n
	}
	return c
}

// idleRate is requests per second by key while nothing but the cluster's
// own components runs.
type idleRate counts

// measureIdle scrapes twice, d apart.
func measureIdle(ctx context.Context, client kubernetes.Interface, d time.Duration) (idleRate, error) {
	before, err := scrape(ctx, client)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	after, err := scrape(ctx, client)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	idle := diff(before, after)
	// One of them is the scrape closing the interval, not the cluster's.
	idle[nonResource] = max(idle[nonResource]-1, 0)
	rate := idleRate{}
	for k, v := range idle {
		rate[k] = v / secs
	}
	return rate, nil
}

// diff is after minus before, by key, keeping positive differences.
func diff(before, after counts) counts {
	d := counts{}
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

// net is what a command of length d asked for: the requests counted during
// it minus what the idle cluster asks for in as long, never below zero, and
// minus the scrape closing the interval.
func net(raw counts, rate idleRate, d time.Duration) counts {
	out := counts{}
	for k, v := range raw {
		n := v - rate[k]*d.Seconds()
		if k == nonResource {
			n--
		}
		if n = math.Round(n); n > 0 {
			out[k] = n
		}
	}
	return out
}
