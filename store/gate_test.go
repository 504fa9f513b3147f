package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

// Calls waiting at a full gate are admitted in the order they came (what
// database/sql's pool, which picks a waiter at random, does not do).
func TestGateAdmitsInArrivalOrder(t *testing.T) {
	g := newGate(1)
	leave := g.enter(context.Background())
	const n = 20
	var (
		mu    sync.Mutex
		order []int
		done  sync.WaitGroup
	)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			leave := g.enter(context.Background())
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			leave()
		}()
		// The next caller comes once this one waits.
		for g.waiting.Load() != int64(i+1) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Millisecond)
	}
	leave()
	leave() // idempotent: a second call frees no second turn
	done.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("admitted in order %v, want 0..%d", order, n-1)
		}
	}
	if g.waiting.Load() != 0 {
		t.Fatalf("%d still waiting", g.waiting.Load())
	}
}

// A call whose context ends while it waits gets no turn and takes none.
func TestGateGivesUpWithItsContext(t *testing.T) {
	g := newGate(1)
	leave := g.enter(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.enter(ctx)() // returns at once; its leave frees nothing
	leave()
	if !g.sem.TryAcquire(1) {
		t.Fatal("the gate is still taken")
	}
}

// Under more concurrent calls than connections, nobody waits inside
// database/sql's pools (which would serve them in random order): the
// gates queue them first.
func TestPoolsNeverQueueCalls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		lb := newLB("acct", "a", newNode("127.0.0.1", 80))
		createLB(t, s, lb)
		ctx := context.Background()
		errs := concurrently(96, func(i int) error {
			if i%4 == 0 {
				_, err := s.TouchLoadBalancers(ctx, []uint32{lb.ID})
				return err
			}
			_, err := s.GetLoadBalancer(ctx, "acct", lb.ID)
			return err
		})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for name, db := range map[string]*gorm.DB{"writer": s.db, "reader": s.read} {
			sqlDB, err := db.DB()
			if err != nil {
				t.Fatal(err)
			}
			if st := sqlDB.Stats(); st.WaitCount != 0 {
				t.Errorf("%s pool: %d calls waited for a connection inside database/sql (of %d connections)", name, st.WaitCount, st.MaxOpenConnections)
			}
		}
		if s.Waiting() != 0 {
			t.Errorf("%d calls still waiting", s.Waiting())
		}
	})
}

// The PostgreSQL pool, or SQLite's read pool, has Options.Connections
// connections, and its gate as many turns; SQLite has one writer.
func TestConnectionsOption(t *testing.T) {
	check := func(t *testing.T, what string, db *gorm.DB, g *gate, want int) {
		t.Helper()
		sqlDB, _ := db.DB()
		if got := sqlDB.Stats().MaxOpenConnections; got != want {
			t.Errorf("%s: pool of %d, want %d", what, got, want)
		}
		if !g.sem.TryAcquire(int64(want)) || g.sem.TryAcquire(1) {
			t.Errorf("%s: the gate does not have %d turns", what, want)
		}
		g.sem.Release(int64(want))
	}
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			url := "sqlite://" + filepath.Join(t.TempDir(), "lbaas.db")
			if dialect == "postgres" {
				url = pgtest.NewDatabase(t)
			}
			for _, c := range []struct{ option, want int }{{0, DefaultConnections(dialect)}, {3, 3}} {
				s, err := Open(context.Background(), Options{URL: url, Connections: c.option, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				what := fmt.Sprintf("Connections %d", c.option)
				if dialect == "postgres" {
					check(t, what, s.db, s.writes, c.want)
				} else {
					check(t, what+", writer", s.db, s.writes, 1)
					check(t, what+", readers", s.read, s.reads, c.want)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
