package loadstats_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"github.com/prometheus/client_golang/prometheus"
	promv1 "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/internal/grpctest"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/translator"
)

// counter and gauge are metric families as Envoy's metrics service sink
// sends them: the stat's full name, one metric with a timestamp, counters
// as the delta since the last flush (report_counters_as_deltas).
func counter(name string, delta float64) *promv1.MetricFamily {
	return &promv1.MetricFamily{Name: proto.String(name), Type: promv1.MetricType_COUNTER.Enum(),
		Metric: []*promv1.Metric{{Counter: &promv1.Counter{Value: proto.Float64(delta)}, TimestampMs: proto.Int64(1)}}}
}

func gauge(name string, v float64) *promv1.MetricFamily {
	return &promv1.MetricFamily{Name: proto.String(name), Type: promv1.MetricType_GAUGE.Enum(),
		Metric: []*promv1.Metric{{Gauge: &promv1.Gauge{Value: proto.Float64(v)}, TimestampMs: proto.Int64(1)}}}
}

// envoyStream opens a metrics stream as Envoy does: the identifier (the
// node) on the first message only.
func envoyStream(t *testing.T, c metricsv3.MetricsServiceClient, fleet string) (metricsv3.MetricsService_StreamMetricsClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := c.StreamMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&metricsv3.StreamMetricsMessage{Identifier: &metricsv3.StreamMetricsMessage_Identifier{
		Node: &corev3.Node{Id: "envoy-" + fleet, Cluster: fleet}}}); err != nil {
		t.Fatal(err)
	}
	return st, cancel
}

func flush(t *testing.T, st metricsv3.MetricsService_StreamMetricsClient, families ...*promv1.MetricFamily) {
	t.Helper()
	if err := st.Send(&metricsv3.StreamMetricsMessage{EnvoyMetrics: families}); err != nil {
		t.Fatal(err)
	}
}

// The metrics service sink over a real gRPC stream: each stat feeds its
// number, counters add up, gauges are the latest, the secure listener's
// stats feed the Ssl twins, and another fleet's report is dropped.
func TestMetricsSink(t *testing.T) {
	// Fleet a is served lb_1 and lb_2; fleet b nothing.
	s := loadstats.New(loadstats.Options{LoadBalancerID: translator.LoadBalancerID, MetricsLoadBalancers: 2,
		Serves: func(node *corev3.Node, names []string) []bool {
			out := make([]bool, len(names))
			for i := range names {
				out[i] = node.GetCluster() == "a"
			}
			return out
		}})
	c := metricsv3.NewMetricsServiceClient(grpctest.Loopback(t, s.Register))

	a, closeA := envoyStream(t, c, "a")
	flush(t, a,
		counter("http.lb_1.downstream_cx_rx_bytes_total", 100), counter("http.lb_1.downstream_cx_tx_bytes_total", 1000),
		gauge("http.lb_1.downstream_cx_active", 3), counter("http.lb_1.downstream_cx_idle_timeout", 2),
		counter("http.lb_1_tls.downstream_cx_rx_bytes_total", 10), counter("http.lb_1_tls.downstream_cx_tx_bytes_total", 20),
		gauge("http.lb_1_tls.downstream_cx_active", 1), counter("http.lb_1_tls.downstream_cx_idle_timeout", 1),
		counter("cluster.lb_1.upstream_cx_connect_timeout", 1), counter("cluster.lb_1.upstream_cx_connect_fail", 2),
		counter("cluster.lb_1.upstream_cx_destroy_remote_with_active_rq", 1), counter("cluster.lb_1.upstream_rq_timeout", 1),
		gauge("cluster.lb_1.upstream_cx_active", 5), // an HTTP load balancer's connections are the client side's
		counter("tcp.lb_2.downstream_cx_rx_bytes_total", 50), counter("tcp.lb_2.downstream_cx_tx_bytes_total", 60),
		counter("tcp.lb_2.idle_timeout", 4), gauge("cluster.lb_2.upstream_cx_active", 2),
		gauge("server.uptime", 7), counter("cluster.xds_cluster.upstream_cx_total", 1), // not ours: ignored
		gauge("http.lb_1_redirect.downstream_cx_active", 9), // no load balancer: dropped
	)
	want1 := loadstats.Snapshot{
		Totals: loadstats.Counts{BytesIn: 100, BytesOut: 1000, BytesInSSL: 10, BytesOutSSL: 20, KeepAliveTimeouts: 2, KeepAliveTimeoutsSSL: 1,
			ConnectTimeouts: 1, FailedConnections: 2, ConnectErrors: 1, DataTimeouts: 1},
		Gauges:               loadstats.Gauges{ActiveConnections: 3, ActiveConnectionsSSL: 1},
		MaxActiveConnections: 3, MaxActiveConnectionsSSL: 1,
	}
	waitFor(t, s, 1, want1)
	waitFor(t, s, 2, loadstats.Snapshot{Totals: loadstats.Counts{BytesIn: 50, BytesOut: 60, DataTimeouts: 4},
		Gauges: loadstats.Gauges{ActiveConnections: 2}, MaxActiveConnections: 2})

	// The next flush: counters are deltas, gauges replace.
	flush(t, a, counter("http.lb_1.downstream_cx_rx_bytes_total", 5), counter("http.lb_1.downstream_cx_tx_bytes_total", 0),
		gauge("http.lb_1.downstream_cx_active", 4), gauge("http.lb_1_tls.downstream_cx_active", 0))
	want1.Totals.BytesIn = 105
	want1.Gauges = loadstats.Gauges{ActiveConnections: 4}
	want1.MaxActiveConnections = 4
	waitFor(t, s, 1, want1)

	// Another fleet's Envoy cannot change fleet a's numbers.
	b, _ := envoyStream(t, c, "b")
	flush(t, b, counter("http.lb_1.downstream_cx_rx_bytes_total", 999999), gauge("http.lb_1.downstream_cx_active", 50))
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, s, "lbaas_load_reports_dropped_total", "kind", "metrics", "reason", "not_served") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("fleet b's report was not dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Snapshot(1); got != want1 {
		t.Errorf("after another fleet's report: %+v, want %+v", got, want1)
	}
	// Per load balancer series: bytes (the secure listener's included)
	// and connections.
	if in, out := metricValue(t, s, "lbaas_lb_bytes_total", "lb", "1", "direction", "in"),
		metricValue(t, s, "lbaas_lb_bytes_total", "lb", "1", "direction", "out"); in != 115 || out != 1020 {
		t.Errorf("lbaas_lb_bytes_total of lb 1: %v in, %v out; want 115 and 1020", in, out)
	}
	if n := metricValue(t, s, "lbaas_lb_connections", "lb", "1"); n != 4 {
		t.Errorf("lbaas_lb_connections of lb 1: %v, want 4", n)
	}
	if n := metricValue(t, s, "lbaas_load_reporters", "kind", "metrics"); n != 2 {
		t.Errorf("%v metrics streams open, want 2", n)
	}
	if n := metricValue(t, s, "lbaas_load_reports_total", "kind", "metrics"); n != 3 {
		t.Errorf("%v load balancer reports absorbed, want 3 (lb_1 and lb_2, then lb_1)", n)
	}

	// The history gets the bytes, by minute.
	var in, out uint64
	for _, u := range s.TakeUsage(time.Now()) {
		if u.LoadBalancerID == 1 {
			in, out = in+u.BytesIn, out+u.BytesOut
		}
	}
	if in != 105 || out != 1000 {
		t.Errorf("usage of lb 1: %d bytes in, %d out; want 105 and 1000", in, out)
	}

	// An Envoy that goes away stops counting in the gauges.
	if _, err := a.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	closeA()
	want1.Gauges = loadstats.Gauges{}
	waitFor(t, s, 1, want1)
}

// metricValue is the value of the collector's series of that name with
// those label pairs.
func metricValue(t *testing.T, s *loadstats.Service, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// The stats matcher the bootstrap gives Envoy keeps exactly the stats the
// sink reads.
func TestStatsMatcher(t *testing.T) {
	re := regexp.MustCompile(loadstats.StatsMatcher())
	for _, name := range []string{"http.lb_1.downstream_cx_active", "http.lb_12_tls.downstream_cx_rx_bytes_total",
		"tcp.lb_3.idle_timeout", "udp.lb_4.downstream_sess_tx_bytes", "cluster.lb_5.upstream_cx_connect_timeout"} {
		if !re.MatchString(name) {
			t.Errorf("%s is not kept", name)
		}
	}
	for _, name := range []string{"http.lb_1.downstream_rq_2xx", "cluster.lb_1.upstream_cx_total", "http.lb_01.downstream_cx_active",
		"http.lb_1_redirect.downstream_cx_active", "cluster.xds_cluster.upstream_cx_active", "listener.127.0.0.1_80.downstream_cx_active",
		"http.lb_1.downstream_cx_active.extra"} {
		if re.MatchString(name) {
			t.Errorf("%s is kept", name)
		}
	}
	if !strings.HasPrefix(loadstats.StatsMatcher(), "^") {
		t.Error("the matcher is not anchored")
	}
}

// An Envoy flushes its metrics less often than load reports come: its
// gauges count for three flush intervals, not three load report intervals.
func TestMetricsGaugesOutliveLoadReportExpiry(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	s := loadstats.New(loadstats.Options{LoadBalancerID: translator.LoadBalancerID, Interval: 10 * time.Second, Now: clk.Now})
	c := metricsv3.NewMetricsServiceClient(grpctest.Loopback(t, s.Register))
	st, _ := envoyStream(t, c, "default")
	flush(t, st, gauge("http.lb_1.downstream_cx_active", 3))
	want := loadstats.Snapshot{Gauges: loadstats.Gauges{ActiveConnections: 3}, MaxActiveConnections: 3}
	waitFor(t, s, 1, want)
	clk.Add(2 * loadstats.MetricsFlushInterval) // far past 3 load report intervals
	waitFor(t, s, 1, want)
	clk.Add(loadstats.MetricsFlushInterval + time.Millisecond)
	waitFor(t, s, 1, loadstats.Snapshot{MaxActiveConnections: 3})
}
