package usage_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	promv1 "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/internal/grpctest"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// forEachBackend runs test on SQLite and on PostgreSQL; open opens another
// store (a replica) on the same database.
func forEachBackend(t *testing.T, test func(t *testing.T, open func() *store.Store)) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "lbaas.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			test(t, func() *store.Store {
				s, err := store.Open(context.Background(), store.Options{URL: url, Logger: slog.New(slog.DiscardHandler), Now: testClock.Now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

// testClock is the clock of the stores, the reporters' aggregates and the
// recorders: the test moves it across hours.
var testClock = &clock{}

// replica is one lbaasd's share of the reports: its aggregates, served on
// a real gRPC server, and its recorder.
type replica struct {
	stats   *loadstats.Service
	rec     *usage.Recorder
	lrs     lrsv3.LoadReportingServiceClient
	metrics metricsv3.MetricsServiceClient
	// endStreams ends the last report's streams: they stay open until the
	// next report, so the flush after a report samples its open
	// connections (a reporter's gauges stop counting when its stream ends).
	endStreams context.CancelFunc
}

func newReplica(t *testing.T, st *store.Store, name string) *replica {
	s := loadstats.New(loadstats.Options{LoadBalancerID: translator.LoadBalancerID, Now: testClock.Now})
	conn := grpctest.Loopback(t, s.Register)
	return &replica{stats: s, rec: &usage.Recorder{Store: st, Stats: s, Replica: name, Now: testClock.Now},
		lrs: lrsv3.NewLoadReportingServiceClient(conn), metrics: metricsv3.NewMetricsServiceClient(conn)}
}

// report sends one LRS interval for lb (requests, errors) and one Envoy
// metrics flush (bytes in and out, open connections), on streams of their
// own, and waits until the replica absorbed them. The streams of the
// previous report end first, and their open connections with them.
func (r *replica) report(t *testing.T, lb uint32, requests, errors, in, out uint64, conns float64) {
	t.Helper()
	if r.endStreams != nil {
		r.endStreams()
		for deadline := time.Now().Add(5 * time.Second); r.stats.Snapshot(lb).ActiveConnections != 0; time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the previous report's connections still count: %+v", r.stats.Snapshot(lb))
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.endStreams = cancel
	t.Cleanup(cancel)
	before := r.stats.Snapshot(lb).Totals
	l, err := r.lrs.StreamLoadStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "client", Cluster: "default"}
	if err := l.Send(&lrsv3.LoadStatsRequest{Node: node, ClusterStats: []*endpointv3.ClusterStats{{
		ClusterName: translator.ResourceName(lb),
		UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{TotalIssuedRequests: requests,
			TotalSuccessfulRequests: requests - errors, TotalErrorRequests: errors}},
	}}}); err != nil {
		t.Fatal(err)
	}
	m, err := r.metrics.StreamMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "http." + translator.ResourceName(lb) + "."
	family := func(stat string, typ promv1.MetricType, v float64) *promv1.MetricFamily {
		f := &promv1.MetricFamily{Name: proto.String(name + stat), Type: typ.Enum(), Metric: []*promv1.Metric{{}}}
		if typ == promv1.MetricType_COUNTER {
			f.Metric[0].Counter = &promv1.Counter{Value: proto.Float64(v)}
		} else {
			f.Metric[0].Gauge = &promv1.Gauge{Value: proto.Float64(v)}
		}
		return f
	}
	if err := m.Send(&metricsv3.StreamMetricsMessage{Identifier: &metricsv3.StreamMetricsMessage_Identifier{Node: node},
		EnvoyMetrics: []*promv1.MetricFamily{family("downstream_cx_rx_bytes_total", promv1.MetricType_COUNTER, float64(in)),
			family("downstream_cx_tx_bytes_total", promv1.MetricType_COUNTER, float64(out)),
			family("downstream_cx_active", promv1.MetricType_GAUGE, conns)}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.stats.Snapshot(lb)
		if got.Totals.Issued == before.Issued+requests && got.Totals.BytesIn == before.BytesIn+in && got.ActiveConnections >= uint64(conns) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report was not absorbed: %+v", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func flush(t *testing.T, r *replica) {
	t.Helper()
	if err := r.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Rollups across hour boundaries, two replicas on one database each with
// its own reporters, a restart in the middle: every number is counted
// once, nothing flushed is lost, and both replicas read the same totals.
func TestRollupAcrossHoursReplicasAndRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() *store.Store) {
		// Two hours from now (after the real clock, which stamps nothing
		// here), 90 s before the hour.
		hour := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour)
		testClock.Set(hour.Add(-90 * time.Second))
		a, b := open(), open()
		lb := &store.LoadBalancer{Account: "acc", Name: "web", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
			Status: store.StatusBuild, Timeout: 30, Fleet: "default"}
		if _, err := a.Update(context.Background(), func(tx *store.Tx) error { return tx.CreateLoadBalancer(lb) }); err != nil {
			t.Fatal(err)
		}
		created := testClock.Now()

		ra, rb := newReplica(t, a, "a"), newReplica(t, b, "b")
		// :58:30 of the first hour, replica a: 3 requests, 2 connections
		// open; at :58:45 2 more (1 error), the connections still open
		// (sampled once in the minute however often it flushes).
		ra.report(t, lb.ID, 3, 0, 60, 120, 2)
		flush(t, ra)
		testClock.Set(hour.Add(-75 * time.Second))
		ra.report(t, lb.ID, 2, 1, 40, 80, 2)
		flush(t, ra)
		// :59:40, replica b: 7 requests.
		testClock.Set(hour.Add(-20 * time.Second))
		rb.report(t, lb.ID, 7, 0, 50, 70, 0)
		flush(t, rb)
		// :00:10 of the next hour, replica a: 3 requests, then it restarts
		// (its last flush on the way out).
		testClock.Set(hour.Add(10 * time.Second))
		ra.report(t, lb.ID, 3, 0, 30, 40, 0)
		flush(t, ra)
		ra = newReplica(t, a, "a-restarted")
		// :01:05, the restarted replica: 4 requests (2 errors).
		testClock.Set(hour.Add(65 * time.Second))
		ra.report(t, lb.ID, 4, 2, 1, 2, 0)
		flush(t, ra)
		// Flushing again writes nothing more.
		flush(t, ra)
		flush(t, rb)

		now := hour.Add(2 * time.Minute)
		testClock.Set(now)
		ctx := context.Background()
		for name, st := range map[string]*store.Store{"a": a, "b": b} {
			hours, err := st.UsageSeries(ctx, []uint32{lb.ID}, store.UsageStepHour, hour.Add(-time.Hour), now)
			if err != nil {
				t.Fatal(err)
			}
			if len(hours) != 2 || hours[0].Requests != 12 || hours[0].RequestErrors != 1 || hours[0].BytesIn != 150 ||
				hours[0].BytesOut != 270 || hours[1].Requests != 7 || hours[1].RequestErrors != 2 || hours[1].BytesIn != 31 {
				t.Errorf("replica %s reads the hours %+v; want 12 requests (1 error, 150 bytes in, 270 out), then 7 (2 errors, 31 bytes in)", name, hours)
			}
			points, err := usage.History(ctx, st, nil, lb.ID, "hour", now)
			if err != nil {
				t.Fatal(err)
			}
			if len(points) != 60 || !points[59].Time.Equal(hour.Add(2*time.Minute)) {
				t.Fatalf("replica %s: %d points ending %v", name, len(points), points[len(points)-1].Time)
			}
			got := map[time.Time]usage.Point{}
			for _, p := range points {
				if p != (usage.Point{Time: p.Time}) {
					got[p.Time] = p
				}
			}
			m := func(d time.Duration) time.Time { return hour.Add(d) }
			want := map[time.Time]usage.Point{
				m(-2 * time.Minute): {Time: m(-2 * time.Minute), Requests: 5, RequestErrors: 1, BytesIn: 100, BytesOut: 200, Connections: 2},
				m(-1 * time.Minute): {Time: m(-1 * time.Minute), Requests: 7, BytesIn: 50, BytesOut: 70},
				m(0):                {Time: m(0), Requests: 3, BytesIn: 30, BytesOut: 40},
				m(time.Minute):      {Time: m(time.Minute), Requests: 4, RequestErrors: 2, BytesIn: 1, BytesOut: 2},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("replica %s, the history's non-zero points:\n%+v\nwant\n%+v", name, got, want)
			}
		}
		recsA, err := usage.Records(ctx, a, lb.ID, created.Add(-time.Hour), now, now)
		if err != nil {
			t.Fatal(err)
		}
		recsB, err := usage.Records(ctx, b, lb.ID, created.Add(-time.Hour), now, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(recsA, recsB) {
			t.Errorf("the replicas read different records:\n%+v\n%+v", recsA, recsB)
		}
		// The creation's record to the hour, then the next hour so far.
		if len(recsA) != 2 || recsA[0].Event != store.EventCreateLoadBalancer || !recsA[0].Start.Equal(created) ||
			!recsA[0].End.Equal(hour) || recsA[0].BytesIn != 150 || recsA[0].BytesOut != 270 || recsA[0].NumPolls != 1 ||
			recsA[1].Event != "" || !recsA[1].Start.Equal(hour) || !recsA[1].End.Equal(now) || recsA[1].BytesIn != 31 {
			t.Errorf("records %+v", recsA)
		}
		// 2 connections sampled in one minute of the hour's 60.
		if got := recsA[0].AverageConnections; got != 2.0/60 {
			t.Errorf("average connections %v, want 2/60", got)
		}

		// What a replica took and did not write yet is lost with it (at
		// most one flush interval): 2 requests that never reach the rows.
		crashed := newReplica(t, a, "a-crashed")
		crashed.report(t, lb.ID, 2, 0, 0, 0, 0)
		if hours, _ := b.UsageSeries(ctx, []uint32{lb.ID}, store.UsageStepHour, hour, now); hours[0].Requests != 7 {
			t.Errorf("unflushed requests are in the rows: %+v", hours)
		}
		// Until then the replica's own history reads show them, in the
		// current step, and only there.
		points, err := usage.History(ctx, a, crashed.stats, lb.ID, "hour", now)
		if err != nil {
			t.Fatal(err)
		}
		if last := points[len(points)-1]; last.Requests != 2 || points[len(points)-2].Requests != 4 {
			t.Errorf("history with the pending usage: last steps %+v, %+v; want 4 then 2 requests", points[len(points)-2], last)
		}
		if p, _ := usage.History(ctx, b, nil, lb.ID, "hour", now); p[len(p)-1].Requests != 0 {
			t.Errorf("another replica's history shows the unflushed requests: %+v", p[len(p)-1])
		}

		// Pruning: a day later the minute rows go, the hours stay; past
		// the retention they go too. On PostgreSQL one replica at a time.
		later := now.Add(26 * time.Hour)
		for _, st := range []*store.Store{a, b} {
			if _, err := st.PruneUsage(ctx, later, usage.MinuteRetention, 90*24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if p, _ := usage.History(ctx, a, nil, lb.ID, "day", now); anyTraffic(p) {
			t.Error("the minute rows outlived their day")
		}
		if hours, _ := a.UsageSeries(ctx, []uint32{lb.ID}, store.UsageStepHour, hour.Add(-time.Hour), now); len(hours) != 2 {
			t.Errorf("the hour rows were pruned early: %+v", hours)
		}
		if _, err := b.PruneUsage(ctx, later, usage.MinuteRetention, time.Hour); err != nil {
			t.Fatal(err)
		}
		if hours, _ := a.UsageSeries(ctx, []uint32{lb.ID}, store.UsageStepHour, hour.Add(-time.Hour), now); len(hours) != 0 {
			t.Errorf("the hour rows outlived the retention: %+v", hours)
		}
		// The last event stays: the state later usage starts from.
		if evs, _ := a.UsageEvents(ctx, []uint32{lb.ID}, later, later.Add(time.Hour)); len(evs) != 1 {
			t.Errorf("events after pruning: %+v", evs)
		}
	})
}

func anyTraffic(points []usage.Point) bool {
	for _, p := range points {
		if p.Requests != 0 || p.BytesIn != 0 || p.Connections != 0 {
			return true
		}
	}
	return false
}
