package store

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

func openPostgres(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: pgtest.NewDatabase(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func statusOf(t *testing.T, s *Store, id uint32) string {
	t.Helper()
	lb, err := s.LoadBalancerByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return lb.Status
}

// A waiting load balancer settles when every live replica with clients of
// its fleet has applied its revision: one replica's verdict is not enough
// while another with clients has not given one; a replica without clients
// of the fleet does not count; a replica whose lease expired stops
// counting.
func TestReplicasAgreeOnStatus(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	a, err := s.RegisterReplica(ctx, "a", time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterReplica(ctx, "b", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterReplica(ctx, "idle", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	// This one's lease is short: it will lapse.
	if _, err := s.RegisterReplica(ctx, "short", 300*time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	for id, fleets := range map[string][]string{"a": {"default"}, "b": {"default", "other"}, "idle": nil, "short": {"other"}} {
		if err := s.SetReplicaFleets(ctx, id, fleets); err != nil {
			t.Fatal(err)
		}
	}
	lb := newLB("acc", "web")
	rev := createLB(t, s, lb)
	other := newLB("acc", "other")
	other.Fleet = "other"
	otherRev := createLB(t, s, other)

	changed, err := s.RecordApplied(ctx, "a", []Applied{{ID: lb.ID, Revision: rev}})
	if err != nil || len(changed) != 0 {
		t.Fatalf("a's verdict alone settled %v (%v); b has clients of the fleet too", changed, err)
	}
	if st := statusOf(t, s, lb.ID); st != StatusBuild {
		t.Fatalf("after one replica's verdict the load balancer is %s, want BUILD", st)
	}
	// A verdict for an older revision does not count.
	if changed, err := s.RecordApplied(ctx, "b", []Applied{{ID: lb.ID, Revision: rev - 1}}); err != nil || len(changed) != 0 {
		t.Fatalf("an old revision's verdict settled %v (%v)", changed, err)
	}
	changed, err = s.RecordApplied(ctx, "b", []Applied{{ID: lb.ID, Revision: rev}, {ID: other.ID, Revision: otherRev}})
	if err != nil || len(changed) != 1 || changed[0] != lb.ID {
		t.Fatalf("with both replicas' verdicts settled %v (%v), want [%d]", changed, err, lb.ID)
	}
	if st := statusOf(t, s, lb.ID); st != StatusActive {
		t.Fatalf("the load balancer both replicas applied is %s, want ACTIVE", st)
	}
	// "other" waits for the replica with the short lease, until it lapses.
	if st := statusOf(t, s, other.ID); st != StatusBuild {
		t.Fatalf("a load balancer a live replica has not applied is %s, want BUILD", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for statusOf(t, s, other.ID) != StatusActive {
		if time.Now().After(deadline) {
			t.Fatal("the load balancer still waits for a replica whose lease expired")
		}
		if _, err := s.SettleAgreed(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.RenewReplica(ctx, "short", a, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renewing an expired lease: %v, want ErrLeaseLost", err)
	}
	if err := s.RenewReplica(ctx, "a", a, time.Minute); err != nil {
		t.Fatalf("renewing a live lease: %v", err)
	}
}

// The change feed is pruned below what every live replica has published,
// and expired replicas are forgotten.
func TestChangesArePrunedBelowTheOldestReplica(t *testing.T) {
	s := openPostgres(t)
	ctx := context.Background()
	first := createLB(t, s, newLB("acc", "one"))
	slow, err := s.RegisterReplica(ctx, "slow", time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	second := createLB(t, s, newLB("acc", "two"))
	if _, err := s.RegisterReplica(ctx, "fast", time.Minute, false); err != nil {
		t.Fatal(err)
	}
	if err := s.RenewReplica(ctx, "fast", second, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneChanges(ctx, second); err != nil {
		t.Fatal(err)
	}
	// "slow" has published up to its registration: it still needs the
	// second load balancer's change.
	changes, err := s.ChangesSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Revision != second {
		t.Fatalf("after pruning the feed holds %+v, want only revision %d (first was %d, slow published %d)", changes, second, first, slow)
	}
	if err := s.RemoveReplica(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneChanges(ctx, second); err != nil {
		t.Fatal(err)
	}
	if changes, _ := s.ChangesSince(ctx, 0); len(changes) != 0 {
		t.Fatalf("the feed still holds %+v once every replica published it", changes)
	}
}

// Replicas starting together on a new database migrate one at a time
// (an advisory lock): every one opens it.
func TestReplicasMigrateTogether(t *testing.T) {
	url := pgtest.NewDatabase(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := Open(context.Background(), Options{URL: url, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a replica starting with the others: %v", err)
		}
	}
}
