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
	check := func(t *testing.T, what string, db *gorm.DB, pool, want int, gates ...*gate) {
		t.Helper()
		if db != nil {
			sqlDB, _ := db.DB()
			if got := sqlDB.Stats().MaxOpenConnections; got != pool {
				t.Errorf("%s: pool of %d, want %d", what, got, pool)
			}
		}
		turns := 0
		for _, g := range gates {
			for g.sem.TryAcquire(1) {
				turns++
			}
		}
		if turns != want {
			t.Errorf("%s: the gates have %d turns, want %d", what, turns, want)
		}
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
					if s.reads != s.writes || s.scans != s.writes {
						t.Error("PostgreSQL has more than one gate")
					}
					// One connection more than turns: the prober's.
					check(t, what+", writes", nil, 0, c.want-1, s.writeCap)
					check(t, what, s.db, c.want+1, c.want, s.writes)
				} else {
					check(t, what+", writer", s.db, 1, 1, s.writes)
					check(t, what+", readers", s.read, c.want, c.want, s.reads, s.scans)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// On SQLite a read of one load balancer does not wait behind scans (lists,
// the data plane's batches): they have lanes of their own.
func TestReadsDoNotWaitBehindScans(t *testing.T) {
	s, err := Open(context.Background(), Options{URL: "sqlite://" + filepath.Join(t.TempDir(), "lbaas.db"),
		Connections: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lb := newLB("acct", "a", newNode("127.0.0.1", 80))
	createLB(t, s, lb)
	leave := s.scans.enter(context.Background()) // the only scan lane (2 readers)
	defer leave()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.GetLoadBalancer(ctx, "acct", lb.ID); err != nil {
		t.Fatalf("a read behind a scan: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.ListLoadBalancers(short, ListFilter{Account: "acct"}); err == nil {
		t.Fatal("a second scan did not wait for the lane")
	}
}

// On PostgreSQL writes waiting for an account's lock hold at most all but
// one turn: a read still gets one.
func TestWritesLeaveReadsATurn(t *testing.T) {
	s, err := Open(context.Background(), Options{URL: pgtest.NewDatabase(t), Connections: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lb := newLB("acct", "a", newNode("127.0.0.1", 80))
	createLB(t, s, lb)
	// Three writes of one account: the first holds its lock, the others
	// wait for it, or for a turn.
	hold := make(chan struct{})
	locked := make(chan struct{}, 3)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := s.Update(context.Background(), func(tx *Tx) error {
				if err := tx.LockAccount("acct"); err != nil {
					return err
				}
				locked <- struct{}{}
				<-hold
				return nil
			})
			errs <- err
		}()
	}
	<-locked
	for s.writeCap.waiting.Load()+s.writes.waiting.Load() == 0 {
		time.Sleep(time.Millisecond) // the third write is queued
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := s.GetLoadBalancer(ctx, "acct", lb.ID); err != nil {
		t.Errorf("a read while writes wait: %v", err)
	}
	close(hold)
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
