package health

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/store"
)

// levels counts log records by message and level.
type levels struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}

func (l *levels) count(msg string) (warn, all int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		all++
		if r.Level == slog.LevelWarn {
			warn++
		}
	}
	return warn, all
}

// With its database closed, the prober tries again after waits that start
// at Poll and double (with jitter), not at every Poll, and warns once.
func TestProberBacksOffWhileTheDatabaseFails(t *testing.T) {
	const poll = 20 * time.Millisecond
	for _, c := range []struct {
		name, url string
		msg       string // the failure each try logs, at Warn or Debug
	}{
		// SQLite needs no lock: the prober leads, and its reads fail.
		{"sqlite", "", "health: read the health monitors"},
		// PostgreSQL: opening the session for the shard locks fails.
		{"postgres", "postgres", "health: open a database session for the shard locks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := c.url
			if url == "postgres" {
				url = pgtest.NewDatabase(t)
			}
			st := openStore(t, url)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			logs := &levels{}
			p := New(st, Options{Poll: poll, Logger: slog.New(logs)})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			p.Run(ctx)

			// Waits of 20 ms ± 50%, doubling: 5 or 6 tries in 500 ms; one
			// try per poll would make 25.
			warn, tries := logs.count(c.msg)
			t.Logf("%d tries, %d warnings in 500 ms", tries, warn)
			if tries < 4 || tries > 7 {
				t.Errorf("%d tries in 500 ms; want 4 to 7", tries)
			}
			if warn != 1 {
				t.Errorf("%d warnings in 500 ms of failures; want 1", warn)
			}
		})
	}
}

// However long the outage, the prober tries again at least every retryMax
// (plus jitter).
func TestProberRetryIsCapped(t *testing.T) {
	p := New(&store.Store{}, Options{Poll: time.Second})
	b := p.retry()
	var last time.Duration
	for range 100 {
		last = b.NextBackOff()
		if last > retryMax*3/2 {
			t.Fatalf("backoff %v exceeds the cap %v plus jitter", last, retryMax)
		}
	}
	if last < retryMax/2 {
		t.Fatalf("backoff after 100 failures is %v; want near the cap %v", last, retryMax)
	}
}
