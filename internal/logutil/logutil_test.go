package logutil

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// records keeps every log record.
type records struct {
	mu  sync.Mutex
	all []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, rec)
	return nil
}

func (r *records) at(level slog.Level) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.all {
		if rec.Level == level {
			out = append(out, rec)
		}
	}
	return out
}

func attr(rec slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

func TestLimited(t *testing.T) {
	ctx := context.Background()
	rec := &records{}
	l := NewLimited(slog.New(rec), 100*time.Millisecond)

	// A burst: the first failure is a warning, the rest debug lines.
	for range 10 {
		l.Warn(ctx, "db down", "err", "refused")
	}
	if n := len(rec.at(slog.LevelWarn)); n != 1 {
		t.Fatalf("warnings after a burst of 10 failures: %d, want 1", n)
	}
	if n := len(rec.at(slog.LevelDebug)); n != 9 {
		t.Fatalf("debug lines after a burst of 10 failures: %d, want 9", n)
	}

	// After the interval, one warning that counts the suppressed ones.
	time.Sleep(110 * time.Millisecond)
	l.Warn(ctx, "db down", "err", "refused")
	warns := rec.at(slog.LevelWarn)
	if len(warns) != 2 {
		t.Fatalf("warnings after the interval: %d, want 2", len(warns))
	}
	if v, ok := attr(warns[1], "suppressed"); !ok || v.Int64() != 9 {
		t.Fatalf("second warning's suppressed = %v (present %v), want 9", v, ok)
	}
	if _, ok := attr(warns[0], "suppressed"); ok {
		t.Fatal("the first warning has a suppressed count")
	}

	// Recovery is logged once with the run's failures, and the next
	// failure warns at once.
	l.Recovered(ctx, "db back")
	l.Recovered(ctx, "db back")
	infos := rec.at(slog.LevelInfo)
	if len(infos) != 1 {
		t.Fatalf("info lines after recovering twice: %d, want 1", len(infos))
	}
	if v, ok := attr(infos[0], "failures"); !ok || v.Int64() != 11 {
		t.Fatalf("recovery's failures = %v (present %v), want 11", v, ok)
	}
	l.Warn(ctx, "db down", "err", "refused")
	if n := len(rec.at(slog.LevelWarn)); n != 3 {
		t.Fatalf("warnings after a new failure following recovery: %d, want 3", n)
	}
}
