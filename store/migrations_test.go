package store

import (
	"context"
	"testing"
)

// TestContentCachingOffMigration: a load balancer stored with content
// caching on (before the API refused it) shows it off after the migration;
// others are untouched.
func TestContentCachingOffMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		cached := newLB("acc", "cached")
		cached.ContentCaching, cached.ConnectionLogging = true, true
		createLB(t, s, cached)
		plain := newLB("acc", "plain")
		createLB(t, s, plain)

		if err := migrateContentCachingOff(s.db); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		got, err := s.GetLoadBalancer(ctx, "acc", cached.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ContentCaching || !got.ConnectionLogging {
			t.Errorf("after the migration: contentCaching %v (want false), connectionLogging %v (want true)",
				got.ContentCaching, got.ConnectionLogging)
		}
		if got, err := s.GetLoadBalancer(ctx, "acc", plain.ID); err != nil || got.ContentCaching {
			t.Errorf("untouched load balancer: %v, %v", got, err)
		}
	})
}
