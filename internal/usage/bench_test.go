package usage_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/store"
)

// BenchmarkFlush is one replica's flush at the scale (10,000 load
// balancers with traffic in the minute) into the embedded SQLite database,
// the rows of 30 earlier minutes already there; then BenchmarkHistory-like
// reads of one load balancer's hour.
//
//	go test -run XXX -bench . -benchtime 3x ./internal/usage
func BenchmarkFlush(b *testing.B) {
	const lbs = 10_000
	st, err := store.Open(context.Background(), store.Options{URL: "sqlite://" + filepath.Join(b.TempDir(), "lbaas.db"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Hour)
	minute := func(m int) []store.UsageDelta {
		ds := make([]store.UsageDelta, lbs)
		for i := range ds {
			ds[i] = store.UsageDelta{LoadBalancerID: uint32(i + 1), Minute: start.Add(time.Duration(m) * time.Minute),
				Requests: 10, RequestErrors: 1, BytesIn: 1000, BytesOut: 5000, Polled: true, Connections: 2}
		}
		return ds
	}
	for m := range 30 {
		if err := st.AddUsage(ctx, "r1", minute(m)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if err := st.AddUsage(ctx, "r1", minute(30+i%30)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/flush")
	read := time.Now()
	const reads = 100
	for i := range reads {
		points, err := usage.History(ctx, st, nil, uint32(i*97%lbs+1), "hour", start.Add(59*time.Minute))
		if err != nil || len(points) != 60 || points[0].Requests != 10 {
			b.Fatalf("history: %v %+v", err, points[:1])
		}
	}
	b.ReportMetric(float64(time.Since(read).Microseconds())/reads, "µs/history-read")
}

// BenchmarkStatsRead is GET /stats' read of one load balancer (usage.Stats)
// at the scale in the embedded SQLite database: 10,000 load
// balancers, 1,000 reporters spread over 4 replicas reporting on every
// load balancer, so each replica has the minute, hour and all-time rows
// and the live gauges of every load balancer; the load balancers read
// have an hour of minute rows of each replica (what maxConn reads).
//
//	go test -run XXX -bench StatsRead -benchtime 1000x ./internal/usage
func BenchmarkStatsRead(b *testing.B) {
	const (
		lbs      = 10_000
		replicas = 4 // 250 reporters each
		read     = 100
	)
	st, err := store.Open(context.Background(), store.Options{URL: "sqlite://" + filepath.Join(b.TempDir(), "lbaas.db"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Minute)
	for r := range replicas {
		name := fmt.Sprintf("r%d", r)
		ds := make([]store.UsageDelta, 0, lbs+read*60)
		gs := make([]store.UsageGauge, lbs)
		for i := range lbs {
			ds = append(ds, store.UsageDelta{LoadBalancerID: uint32(i + 1), Minute: now, Requests: 10, RequestErrors: 1,
				Polled: true, Connections: 2})
			gs[i] = store.UsageGauge{LoadBalancerID: uint32(i + 1), InProgress: 250, Connections: 500}
		}
		for i := range read {
			for m := 1; m < 60; m++ {
				ds = append(ds, store.UsageDelta{LoadBalancerID: uint32(i*97 + 1), Minute: now.Add(-time.Duration(m) * time.Minute),
					Requests: 1, Polled: true, Connections: int64(m % 7)})
			}
		}
		for len(ds) > 0 {
			n := min(len(ds), 10_000)
			if err := st.AddUsage(ctx, name, ds[:n]); err != nil {
				b.Fatal(err)
			}
			ds = ds[n:]
		}
		if err := st.SetUsageGauges(ctx, name, now.Add(time.Hour), true, gs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		id := uint32(i%read*97 + 1)
		snap, err := usage.Stats(ctx, st, nil, "", id, now)
		if err != nil || snap.InProgress != 250*replicas || snap.Totals.Issued != (10+59)*replicas || snap.MaxActiveConnections != 500*replicas {
			b.Fatalf("stats of %d: %v %+v", id, err, snap)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/read")
}
