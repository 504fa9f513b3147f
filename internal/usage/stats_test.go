package usage_test

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	promv1 "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

// traffic is what one reporter says of a load balancer: an LRS interval
// and an Envoy metrics flush, on streams that stay open (their gauges
// count) until end is called.
type traffic struct {
	issued, succeeded, errors, dropped, failedConns, inProgress uint64
	// Envoy's counters (deltas) and gauges, by stat name under the
	// load balancer's scopes (secure: its _tls listener).
	connectTimeouts, dataTimeouts, idleTimeouts, idleTimeoutsSSL uint64
	active, activeSSL                                            uint64
}

// open sends tr for lb to the replica on streams of their own and waits
// until it absorbed them; the streams end (and their gauges with them)
// when the returned function is called.
func (r *replica) open(t *testing.T, lb uint32, tr traffic) (end func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	before := r.stats.Snapshot(lb)
	l, err := r.lrs.StreamLoadStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "client", Cluster: "default"}
	if err := l.Send(&lrsv3.LoadStatsRequest{Node: node, ClusterStats: []*endpointv3.ClusterStats{{
		ClusterName: translator.ResourceName(lb), TotalDroppedRequests: tr.dropped,
		UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{TotalIssuedRequests: tr.issued,
			TotalSuccessfulRequests: tr.succeeded, TotalErrorRequests: tr.errors, TotalFailConnections: tr.failedConns,
			TotalRequestsInProgress: tr.inProgress}},
	}}}); err != nil {
		t.Fatal(err)
	}
	m, err := r.metrics.StreamMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := translator.ResourceName(lb)
	family := func(name string, typ promv1.MetricType, v uint64) *promv1.MetricFamily {
		f := &promv1.MetricFamily{Name: proto.String(name), Type: typ.Enum(), Metric: []*promv1.Metric{{}}}
		if typ == promv1.MetricType_COUNTER {
			f.Metric[0].Counter = &promv1.Counter{Value: proto.Float64(float64(v))}
		} else {
			f.Metric[0].Gauge = &promv1.Gauge{Value: proto.Float64(float64(v))}
		}
		return f
	}
	counter, gauge := promv1.MetricType_COUNTER, promv1.MetricType_GAUGE
	if err := m.Send(&metricsv3.StreamMetricsMessage{Identifier: &metricsv3.StreamMetricsMessage_Identifier{Node: node},
		EnvoyMetrics: []*promv1.MetricFamily{
			family("cluster."+name+".upstream_cx_connect_timeout", counter, tr.connectTimeouts),
			family("cluster."+name+".upstream_rq_timeout", counter, tr.dataTimeouts),
			family("http."+name+".downstream_cx_idle_timeout", counter, tr.idleTimeouts),
			family("http."+name+loadstats.SecureSuffix+".downstream_cx_idle_timeout", counter, tr.idleTimeoutsSSL),
			family("http."+name+".downstream_cx_active", gauge, tr.active),
			family("http."+name+loadstats.SecureSuffix+".downstream_cx_active", gauge, tr.activeSSL),
		}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.stats.Snapshot(lb)
		if got.Totals.Issued == before.Totals.Issued+tr.issued && got.Totals.KeepAliveTimeouts == before.Totals.KeepAliveTimeouts+tr.idleTimeouts &&
			got.InProgress >= before.InProgress+tr.inProgress && got.ActiveConnections >= before.ActiveConnections+tr.active {
			return cancel
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reports were not absorbed: %+v", got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// GET /stats (usage.Stats, which it calls) reads the same numbers on
// every replica: two replicas on one database, each with reporters of its
// own; the answering replica's unflushed counters show at once, the
// others' after their flush; a restart keeps the counters; a replica that
// stops flushing drops out of the gauges.
func TestStatsSameOnEveryReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() *store.Store) {
		start := time.Now().UTC().Truncate(time.Hour).Add(3 * time.Hour)
		testClock.Set(start.Add(10 * time.Second))
		a, b := open(), open()
		lb := &store.LoadBalancer{Account: "acc", Name: "web", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
			Status: store.StatusBuild, Timeout: 30, Fleet: "default"}
		if _, err := a.Update(context.Background(), func(tx *store.Tx) error { return tx.CreateLoadBalancer(lb) }); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		ra, rb := newReplica(t, a, "a"), newReplica(t, b, "b")
		read := func(st *store.Store, r *replica) loadstats.Snapshot {
			t.Helper()
			snap, err := usage.Stats(ctx, st, r.stats, r.rec.Replica, lb.ID, testClock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return snap
		}
		// same checks that both replicas read want.
		same := func(step string, want loadstats.Snapshot) {
			t.Helper()
			for name, got := range map[string]loadstats.Snapshot{"a": read(a, ra), "b": read(b, rb)} {
				if got != want {
					t.Errorf("%s: replica %s reads\n%+v\nwant\n%+v", step, name, got, want)
				}
			}
		}

		endA := ra.open(t, lb.ID, traffic{issued: 10, succeeded: 7, errors: 3, dropped: 1, failedConns: 2, inProgress: 4,
			connectTimeouts: 5, dataTimeouts: 2, idleTimeouts: 6, idleTimeoutsSSL: 1, active: 3, activeSSL: 1})
		rb.open(t, lb.ID, traffic{issued: 20, succeeded: 20, inProgress: 1, active: 2})
		// Before any flush each replica reads its own reporters only.
		if got := read(b, rb); got.Totals.Issued != 20 || got.InProgress != 1 || got.ActiveConnections != 2 || got.MaxActiveConnections != 2 {
			t.Errorf("replica b before the flushes: %+v", got)
		}
		flush(t, ra)
		flush(t, rb)
		both := loadstats.Snapshot{
			Totals: loadstats.Counts{Issued: 30, Succeeded: 27, Errors: 3, Dropped: 1, FailedConnections: 2,
				ConnectTimeouts: 5, DataTimeouts: 2, KeepAliveTimeouts: 6, KeepAliveTimeoutsSSL: 1},
			Gauges:               loadstats.Gauges{InProgress: 5, ActiveConnections: 5, ActiveConnectionsSSL: 1},
			MaxActiveConnections: 5, MaxActiveConnectionsSSL: 1,
		}
		same("after both flushes", both)

		// Replica a's new requests show on a at once, on b after a's flush.
		// (The clock stays within the LRS reporters' expiry, 3 report
		// intervals, until b goes silent.)
		testClock.Set(start.Add(20 * time.Second))
		ra.report(t, lb.ID, 4, 1, 0, 0, 0)
		if got := read(a, ra).Totals; got.Issued != 34 || got.Errors != 4 {
			t.Errorf("replica a's unflushed requests: it reads %d (%d errors), want 34 (4)", got.Issued, got.Errors)
		}
		if got := read(b, rb).Totals.Issued; got != 30 {
			t.Errorf("replica b reads %d requests before a's flush, want 30", got)
		}
		flush(t, ra)
		flush(t, rb)
		both.Totals.Issued, both.Totals.Succeeded, both.Totals.Errors = 34, 30, 4
		same("after a's second flush", both)

		// Replica a restarts: its last flush on the way out, its reporters
		// gone with it; the counters stay, its gauges go at once.
		testClock.Set(start.Add(30 * time.Second))
		endA()
		flush(t, ra)
		if err := a.EndUsageReplica(ctx, ra.rec.Replica); err != nil {
			t.Fatal(err)
		}
		a = open()
		ra = newReplica(t, a, "a-restarted")
		flush(t, ra)
		both.Gauges = loadstats.Gauges{InProgress: 1, ActiveConnections: 2}
		same("after a's restart", both)

		// Replica b stops flushing (it lost the database, or died without
		// its last flush): 3 of its flush intervals later its gauges stop
		// counting; its counters stay, and so does the highest minute's
		// sample of open connections.
		testClock.Set(start.Add(20*time.Second + 3*usage.DefaultFlushInterval - time.Second))
		if got := read(a, ra).Gauges; got != both.Gauges {
			t.Errorf("replica b's gauges before their expiry: replica a reads %+v, want %+v", got, both.Gauges)
		}
		testClock.Set(start.Add(20*time.Second + 3*usage.DefaultFlushInterval + time.Second))
		both.Gauges = loadstats.Gauges{}
		if got := read(a, ra); got != both {
			t.Errorf("replica b silent: replica a reads\n%+v\nwant\n%+v", got, both)
		}

		// A day later the pruner folds the all-time rows of the replicas
		// gone (a, b) into one: the counters do not change. maxConn looks
		// at the last hour only: the current connections, none.
		later := start.Add(26 * time.Hour)
		testClock.Set(later)
		flush(t, ra)
		if _, err := a.PruneUsage(ctx, later, usage.MinuteRetention, usage.DefaultRetention); err != nil {
			t.Fatal(err)
		}
		both.MaxActiveConnections, both.MaxActiveConnectionsSSL = 0, 0
		if got := read(a, ra); got != both {
			t.Errorf("after the pruner folded the rows: replica a reads\n%+v\nwant\n%+v", got, both)
		}
	})
}
