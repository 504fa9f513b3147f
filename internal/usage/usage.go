// Package usage turns the traffic numbers of the fleet into history: a
// Recorder writes what this replica's reporters sent (internal/loadstats)
// into the database each flush interval and prunes the old rows, and
// Records, Account and History read it back, summed over every replica,
// in the shapes of the usage API.
package usage

import (
	"context"
	"log/slog"
	"time"

	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/store"
)

// Defaults of the recorder.
const (
	DefaultFlushInterval = time.Minute
	DefaultRetention     = 90 * 24 * time.Hour
	// MinuteRetention is how long the one-minute rows stay: the history's
	// longest window (a day) and an hour of margin.
	MinuteRetention = 25 * time.Hour
	// PruneInterval is how often the recorder prunes.
	PruneInterval = time.Hour
)

// Recorder writes this replica's usage into the database.
type Recorder struct {
	Store   *store.Store
	Stats   *loadstats.Service
	Replica string // this replica's rows
	// FlushInterval is how often it writes (DefaultFlushInterval when 0):
	// a restart loses at most that much of this replica's numbers.
	FlushInterval time.Duration
	// Retention is how long the hourly rows and events stay
	// (DefaultRetention when 0).
	Retention time.Duration
	Now       func() time.Time // time.Now when nil
	Log       *slog.Logger
}

// Run flushes every FlushInterval and prunes every PruneInterval until ctx
// ends, then flushes once more.
func (r *Recorder) Run(ctx context.Context) {
	interval := r.FlushInterval
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	flush := time.NewTicker(interval)
	defer flush.Stop()
	prune := time.NewTicker(PruneInterval)
	defer prune.Stop()
	r.Prune(ctx)
	for {
		select {
		case <-ctx.Done():
			// The last numbers, on the way out (a fresh context: ctx ended).
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Flush(final); err != nil {
				r.log().Warn("usage: the last numbers were not written", "err", err)
			}
			return
		case <-flush.C:
			if err := r.Flush(ctx); err != nil {
				r.log().Warn("usage: write failed; retrying at the next flush", "err", err)
			}
		case <-prune.C:
			r.Prune(ctx)
		}
	}
}

// Flush writes what the reporters sent since the last flush; on failure
// it is kept for the next one.
func (r *Recorder) Flush(ctx context.Context) error {
	taken := r.Stats.TakeUsage(r.now())
	if len(taken) == 0 {
		return nil
	}
	deltas := make([]store.UsageDelta, len(taken))
	for i, u := range taken {
		deltas[i] = store.UsageDelta{
			LoadBalancerID: u.LoadBalancerID, Minute: u.Minute,
			Requests: clamp(u.Issued), RequestErrors: clamp(u.Errors),
			BytesIn: clamp(u.BytesIn), BytesOut: clamp(u.BytesOut),
			BytesInSSL: clamp(u.BytesInSSL), BytesOutSSL: clamp(u.BytesOutSSL),
			Polled: u.Polled, Connections: clamp(u.Connections), ConnectionsSSL: clamp(u.ConnectionsSSL),
		}
	}
	if err := r.Store.AddUsage(ctx, r.Replica, deltas); err != nil {
		r.Stats.ReturnUsage(taken)
		return err
	}
	return nil
}

// Prune deletes the rows past their retention (one replica at a time).
func (r *Recorder) Prune(ctx context.Context) {
	retention := r.Retention
	if retention <= 0 {
		retention = DefaultRetention
	}
	if _, err := r.Store.PruneUsage(ctx, r.now(), MinuteRetention, retention); err != nil && ctx.Err() == nil {
		r.log().Warn("usage: prune failed", "err", err)
	}
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recorder) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func clamp(n uint64) int64 { return int64(min(n, 1<<62)) }
