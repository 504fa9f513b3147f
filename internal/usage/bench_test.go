package usage_test

import (
	"context"
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
		points, err := usage.History(ctx, st, uint32(i*97%lbs+1), "hour", start.Add(59*time.Minute), nil)
		if err != nil || len(points) != 60 || points[0].Requests != 10 {
			b.Fatalf("history: %v %+v", err, points[:1])
		}
	}
	b.ReportMetric(float64(time.Since(read).Microseconds())/reads, "µs/history-read")
}
