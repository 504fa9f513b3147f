// Package usage turns the traffic numbers of the fleet into history: a
// Recorder writes what this replica's reporters sent (internal/loadstats)
// into the database each flush interval and prunes the old rows, and
// Records, Account and History read it back, summed over every replica,
// in the shapes of the usage API.
package usage

import (
	"context"
	"log/slog"
	"sync"
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

	mu      sync.Mutex                  // one Flush at a time
	written map[uint32]loadstats.Gauges // the gauges the last Flush wrote (nil: none yet)
}

// Run flushes every FlushInterval and prunes every PruneInterval until ctx
// ends, then flushes once more.
func (r *Recorder) Run(ctx context.Context) {
	flush := time.NewTicker(r.interval())
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
			// Its reporters go with it: their gauges stop counting now.
			if err := r.Store.EndUsageReplica(final, r.Replica); err != nil {
				r.log().Warn("usage: this replica's gauges were not dropped; they expire", "err", err)
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

// Flush writes what the reporters sent since the last flush, and the
// live gauges of GET /stats (the ones that changed; all of them the first
// time or after a failure) with this replica's expiry: 3 flush intervals
// from now. On failure the counters are kept for the next one.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if taken := r.Stats.TakeUsage(now); len(taken) > 0 {
		deltas := make([]store.UsageDelta, len(taken))
		for i, u := range taken {
			deltas[i] = delta(u)
		}
		if err := r.Store.AddUsage(ctx, r.Replica, deltas); err != nil {
			r.Stats.ReturnUsage(taken)
			return err
		}
	}
	live := r.Stats.LiveGauges(now)
	full := r.written == nil
	var changed []store.UsageGauge
	for id, g := range live {
		if old, ok := r.written[id]; full || !ok || old != g {
			changed = append(changed, store.UsageGauge{LoadBalancerID: id,
				InProgress: clamp(g.InProgress), Connections: clamp(g.ActiveConnections), ConnectionsSSL: clamp(g.ActiveConnectionsSSL)})
		}
	}
	for id := range r.written {
		if _, ok := live[id]; !ok {
			changed = append(changed, store.UsageGauge{LoadBalancerID: id})
		}
	}
	if err := r.Store.SetUsageGauges(ctx, r.Replica, now.Add(3*r.interval()), full, changed); err != nil {
		r.written = nil
		return err
	}
	r.written = live
	return nil
}

// delta is what a replica adds to the rows of a load balancer's minute.
func delta(u loadstats.Usage) store.UsageDelta {
	return store.UsageDelta{
		LoadBalancerID: u.LoadBalancerID, Minute: u.Minute,
		Requests: clamp(u.Issued), RequestErrors: clamp(u.Errors),
		BytesIn: clamp(u.BytesIn), BytesOut: clamp(u.BytesOut),
		BytesInSSL: clamp(u.BytesInSSL), BytesOutSSL: clamp(u.BytesOutSSL),
		Polled: u.Polled, Connections: clamp(u.Connections), ConnectionsSSL: clamp(u.ConnectionsSSL),
		StatsCounters: store.StatsCounters{
			RequestsSucceeded: clamp(u.Succeeded), RequestsDropped: clamp(u.Dropped),
			ConnectFailures: clamp(u.FailedConnections), ConnectTimeouts: clamp(u.ConnectTimeouts),
			ConnectErrors: clamp(u.ConnectErrors), DataTimeouts: clamp(u.DataTimeouts),
			KeepAliveTimeouts: clamp(u.KeepAliveTimeouts), DataTimeoutsSSL: clamp(u.DataTimeoutsSSL),
			KeepAliveTimeoutsSSL: clamp(u.KeepAliveTimeoutsSSL),
		},
	}
}

func (r *Recorder) interval() time.Duration {
	if r.FlushInterval <= 0 {
		return DefaultFlushInterval
	}
	return r.FlushInterval
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
