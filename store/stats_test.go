package store

import (
	"context"
	"testing"
	"time"
)

// The migration starts the all-time rows from the hour rows it finds; the
// pruner folds the all-time rows of replicas that are gone into one per
// load balancer, and GET /stats's counters do not change.
func TestUsageTotalsSeededAndFolded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		ctx := context.Background()
		hour := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		// Hour rows written before the migration (no all-time rows).
		old := []UsageSample{
			{LoadBalancerID: 1, Step: UsageStepHour, Start: hour, Replica: "r1", Requests: 5, RequestErrors: 1},
			{LoadBalancerID: 1, Step: UsageStepHour, Start: hour.Add(time.Hour), Replica: "r1", Requests: 7},
			{LoadBalancerID: 1, Step: UsageStepHour, Start: hour, Replica: "r2", Requests: 11, RequestErrors: 2},
			{LoadBalancerID: 2, Step: UsageStepHour, Start: hour, Replica: "r2", Requests: 100},
		}
		if err := s.db.Create(&old).Error; err != nil {
			t.Fatal(err)
		}
		if err := seedUsageTotals(s.db); err != nil {
			t.Fatal(err)
		}
		totals := func(step string, id uint32, requests, errors int64, rows int64) {
			t.Helper()
			got, err := s.LoadBalancerStats(ctx, id, hour, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Requests != requests || got.RequestErrors != errors {
				t.Errorf("%s: load balancer %d counts %d requests (%d errors), want %d (%d)", step, id, got.Requests, got.RequestErrors, requests, errors)
			}
			var n int64
			if err := s.db.Model(&UsageSample{}).Where("load_balancer_id = ? AND step = ?", id, UsageStepTotal).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			if n != rows {
				t.Errorf("%s: load balancer %d has %d all-time rows, want %d", step, id, n, rows)
			}
		}
		totals("seeded", 1, 23, 3, 2)
		totals("seeded", 2, 100, 0, 1)

		// r1 keeps flushing (live), r2 is gone: its rows fold into one.
		if err := s.AddUsage(ctx, "r1", []UsageDelta{{LoadBalancerID: 1, Minute: hour.Add(2 * time.Hour), Requests: 1,
			StatsCounters: StatsCounters{RequestsSucceeded: 1}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUsageGauges(ctx, "r1", hour.Add(100*time.Hour), true, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PruneUsage(ctx, hour.Add(3*time.Hour), 25*time.Hour, 90*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		totals("folded", 1, 24, 3, 2) // r1's and the folded one
		totals("folded", 2, 100, 0, 1)
		if err := s.AddUsage(ctx, "r2", []UsageDelta{{LoadBalancerID: 2, Minute: hour.Add(3 * time.Hour), Requests: 1}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PruneUsage(ctx, hour.Add(3*time.Hour), 25*time.Hour, 90*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		totals("folded twice", 2, 101, 0, 1)
		if got, _ := s.LoadBalancerStats(ctx, 1, hour, ""); got.RequestsSucceeded != 1 {
			t.Errorf("requestsSucceeded %d, want 1", got.RequestsSucceeded)
		}
	})
}
