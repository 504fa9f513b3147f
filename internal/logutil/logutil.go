// Package logutil holds logging helpers shared by the background loops
// (the store's LISTEN loop, the health prober).
package logutil

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Interval is how often the background loops repeat a warning about a
// failure that goes on.
const Interval = time.Minute

// Limited logs a run of repeated failures without flooding the log: the
// first failure at Warn, then at most one Warn line per interval, carrying
// in "suppressed" how many failures were not logged at Warn since the
// previous line (those go to Debug). Recovered ends the run.
//
// A Limited is safe for concurrent use; use one per kind of failure.
type Limited struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	failures   int       // in the current run
	last       time.Time // of the last Warn line
	suppressed int       // failures since then not logged at Warn
}

// NewLimited returns a Limited writing to log at most one Warn line per
// interval every.
func NewLimited(log *slog.Logger, every time.Duration) *Limited {
	return &Limited{log: log, every: every}
}

// Warn records a failure and logs it at Warn if the run just started or
// the interval has passed since the last Warn line, else at Debug.
func (l *Limited) Warn(ctx context.Context, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	l.failures++
	if l.failures > 1 && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		l.log.DebugContext(ctx, msg, args...)
		return
	}
	suppressed := l.suppressed
	l.suppressed, l.last = 0, now
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.log.WarnContext(ctx, msg, args...)
}

// Recovered ends a run of failures: when there was one, it logs msg at
// Info with the run's number of failures, and the next failure is logged
// at once.
func (l *Limited) Recovered(ctx context.Context, msg string, args ...any) {
	l.mu.Lock()
	failures := l.failures
	l.failures, l.suppressed = 0, 0
	l.mu.Unlock()
	if failures > 0 {
		l.log.InfoContext(ctx, msg, append(args, "failures", failures)...)
	}
}
