package store

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// gate admits at most as many calls to a connection pool as the pool has
// connections, in the order they arrive. database/sql hands a freed
// connection to a waiter chosen at random, so under load a few calls wait
// many turns while others wait none: with 32 concurrent requests on 4
// connections that randomness alone made p99 five times p50. Waiting here
// instead (a FIFO semaphore) keeps the pool's own queue empty, and each call
// waits its turn once for all of its queries.
type gate struct {
	sem     *semaphore.Weighted
	waiting atomic.Int64 // calls waiting for their turn
}

func newGate(size int) *gate { return &gate{sem: semaphore.NewWeighted(int64(size))} }

// enter waits for a turn until ctx ends, and returns the function that ends
// it (idempotent). When ctx ends first, it returns at once: the caller's
// queries then fail on the same ended context.
func (g *gate) enter(ctx context.Context) func() {
	g.waiting.Add(1)
	err := g.sem.Acquire(ctx, 1)
	g.waiting.Add(-1)
	if err != nil {
		return func() {}
	}
	left := false
	return func() {
		if !left {
			left = true
			g.sem.Release(1)
		}
	}
}
