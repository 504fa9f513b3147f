package store

import (
	"context"
	"sync"
	"testing"
	"time"
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
