package loadstats_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/openlbaas/lbaas/internal/grpctest"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/translator"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func serve(t *testing.T, o loadstats.Options) (*loadstats.Service, lrsv3.LoadReportingServiceClient) {
	t.Helper()
	o.LoadBalancerID = translator.LoadBalancerID
	s := loadstats.New(o)
	conn := grpctest.Loopback(t, s.Register)
	return s, lrsv3.NewLoadReportingServiceClient(conn)
}

// reporter opens a stream as a client does: the first request names the
// node, the answer asks for every cluster at the interval.
func reporter(t *testing.T, c lrsv3.LoadReportingServiceClient, node string, interval time.Duration) lrsv3.LoadReportingService_StreamLoadStatsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := c.StreamLoadStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&lrsv3.LoadStatsRequest{Node: &corev3.Node{Id: node, Cluster: "default"}}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !res.GetSendAllClusters() || res.GetLoadReportingInterval().AsDuration() != interval {
		t.Fatalf("answer %v, want every cluster every %v", res, interval)
	}
	return st
}

// load is one cluster's interval with two localities.
func load(cluster string, issued, ok, failed, inProgress, active uint64) *endpointv3.ClusterStats {
	half := func(n uint64) uint64 { return n / 2 }
	return &endpointv3.ClusterStats{
		ClusterName: cluster,
		UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{
			{Locality: &corev3.Locality{Zone: "a"}, TotalIssuedRequests: half(issued), TotalSuccessfulRequests: half(ok),
				TotalErrorRequests: half(failed), TotalRequestsInProgress: half(inProgress), TotalActiveConnections: half(active)},
			{Locality: &corev3.Locality{Zone: "b"}, TotalIssuedRequests: issued - half(issued), TotalSuccessfulRequests: ok - half(ok),
				TotalErrorRequests: failed - half(failed), TotalRequestsInProgress: inProgress - half(inProgress),
				TotalActiveConnections: active - half(active)},
		},
	}
}

func send(t *testing.T, st lrsv3.LoadReportingService_StreamLoadStatsClient, stats ...*endpointv3.ClusterStats) {
	t.Helper()
	if err := st.Send(&lrsv3.LoadStatsRequest{ClusterStats: stats}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls until the snapshot of id is want (the stream is absorbed
// asynchronously).
func waitFor(t *testing.T, s *loadstats.Service, id uint32, want loadstats.Snapshot) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.Snapshot(id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lb %d: %+v, want %+v", id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAggregatesPerLoadBalancerAcrossReporters(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	s, c := serve(t, loadstats.Options{Interval: 2 * time.Second, Now: clk.Now})
	if got := s.Snapshot(1); got != (loadstats.Snapshot{}) {
		t.Fatalf("nothing reported yet: %+v, want zeros", got)
	}
	a := reporter(t, c, "client-a", 2*time.Second)
	b := reporter(t, c, "client-b", 2*time.Second)

	send(t, a, load("lb_1", 10, 7, 3, 2, 4), load("lb_2", 5, 5, 0, 0, 1))
	send(t, b, load("lb_1", 4, 4, 0, 1, 2))
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 14, Succeeded: 11, Errors: 3},
		Gauges: loadstats.Gauges{InProgress: 3, ActiveConnections: 6}, MaxActiveConnections: 6})
	waitFor(t, s, 2, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 5, Succeeded: 5},
		Gauges: loadstats.Gauges{ActiveConnections: 1}, MaxActiveConnections: 1})

	// A later interval adds to the counters and replaces the gauges.
	send(t, a, load("lb_1", 2, 1, 1, 0, 1))
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 16, Succeeded: 12, Errors: 4},
		Gauges: loadstats.Gauges{InProgress: 1, ActiveConnections: 3}, MaxActiveConnections: 6})

	// Clusters that are no load balancer, and drops, are counted apart.
	send(t, b, load("xds_cluster", 9, 9, 0, 0, 0), &endpointv3.ClusterStats{ClusterName: "lb_2", TotalDroppedRequests: 3})
	waitFor(t, s, 2, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 5, Succeeded: 5, Dropped: 3},
		Gauges: loadstats.Gauges{ActiveConnections: 1}, MaxActiveConnections: 1})

	// A reporter that goes away stops counting in the gauges; what it
	// reported stays counted.
	if err := b.CloseSend(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 16, Succeeded: 12, Errors: 4},
		Gauges: loadstats.Gauges{InProgress: 0, ActiveConnections: 1}, MaxActiveConnections: 6})

	// A silent reporter stops counting after the expiry (3 intervals).
	clk.Add(6 * time.Second)
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 16, Succeeded: 12, Errors: 4},
		Gauges: loadstats.Gauges{InProgress: 0, ActiveConnections: 1}, MaxActiveConnections: 6})
	clk.Add(time.Millisecond)
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 16, Succeeded: 12, Errors: 4},
		MaxActiveConnections: 6})
}

func TestBoundedLoadBalancers(t *testing.T) {
	s, c := serve(t, loadstats.Options{MaxLoadBalancers: 1})
	r := reporter(t, c, "client", loadstats.DefaultInterval)
	send(t, r, load("lb_1", 1, 1, 0, 0, 0), load("lb_2", 1, 1, 0, 0, 0))
	send(t, r, load("lb_1", 1, 1, 0, 0, 0))
	waitFor(t, s, 1, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 2, Succeeded: 2}})
	if got := s.Snapshot(2); got != (loadstats.Snapshot{}) {
		t.Errorf("a load balancer over the bound is tracked: %+v", got)
	}
}

// The Prometheus series: the collector's health, and series of their own
// for the first load balancers to report only.
func TestMetrics(t *testing.T) {
	s, c := serve(t, loadstats.Options{MetricsLoadBalancers: 1, MaxLoadBalancers: 2})
	r := reporter(t, c, "client", loadstats.DefaultInterval)
	send(t, r, load("lb_7", 4, 3, 1, 2, 0), load("lb_8", 1, 1, 0, 0, 0), load("lb_9", 1, 1, 0, 0, 0), load("other", 1, 1, 0, 0, 0))
	waitFor(t, s, 8, loadstats.Snapshot{Totals: loadstats.Counts{Issued: 1, Succeeded: 1}})
	want := `
# HELP lbaas_lb_requests_completed_total Requests completed, from the load reports, by result (succeeded, error).
# TYPE lbaas_lb_requests_completed_total counter
lbaas_lb_requests_completed_total{lb="7",result="error"} 1
lbaas_lb_requests_completed_total{lb="7",result="succeeded"} 3
# HELP lbaas_lb_requests_in_progress Requests in progress at the end of the live reporters' latest intervals.
# TYPE lbaas_lb_requests_in_progress gauge
lbaas_lb_requests_in_progress{lb="7"} 2
# HELP lbaas_load_balancers_reported Load balancers with load reports in memory, and how many of them have series of their own (labelled).
# TYPE lbaas_load_balancers_reported gauge
lbaas_load_balancers_reported{labelled="false"} 1
lbaas_load_balancers_reported{labelled="true"} 1
# HELP lbaas_load_reporters Report streams open on this replica, by kind (lrs: proxies and proxyless clients; metrics: Envoy's metrics service sink).
# TYPE lbaas_load_reporters gauge
lbaas_load_reporters{kind="lrs"} 1
lbaas_load_reporters{kind="metrics"} 0
# HELP lbaas_load_reports_dropped_total Per-load-balancer reports dropped, by kind and reason (the cluster is no load balancer of the reporter's fleet; more load balancers than tracked).
# TYPE lbaas_load_reports_dropped_total counter
lbaas_load_reports_dropped_total{kind="lrs",reason="not_served"} 1
lbaas_load_reports_dropped_total{kind="lrs",reason="too_many_load_balancers"} 1
lbaas_load_reports_dropped_total{kind="metrics",reason="not_served"} 0
lbaas_load_reports_dropped_total{kind="metrics",reason="too_many_load_balancers"} 0
# HELP lbaas_load_reports_total Per-load-balancer reports absorbed into the aggregates, by kind (lrs: a cluster's load report; metrics: a load balancer's share of an Envoy metrics message).
# TYPE lbaas_load_reports_total counter
lbaas_load_reports_total{kind="lrs"} 2
lbaas_load_reports_total{kind="metrics"} 0
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "lbaas_lb_requests_completed_total", "lbaas_lb_requests_in_progress",
		"lbaas_load_balancers_reported", "lbaas_load_reporters", "lbaas_load_reports_dropped_total", "lbaas_load_reports_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(s, "lbaas_lb_requests_issued_total"); n != 1 {
		t.Errorf("%d load balancers have series, want 1", n)
	}
}
