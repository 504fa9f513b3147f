package ratelimit

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// clock is a settable time for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newLimiter(t *testing.T, st *store.Store) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	l := New(st, slog.New(slog.DiscardHandler))
	l.now = c.now
	return l, c
}

func sqlite(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// allowN sends n requests and returns how many were allowed.
func allowN(l *Limiter, account, verb string, n int) int {
	ok := 0
	for range n {
		if _, _, allowed := l.Allow(account, verb); allowed {
			ok++
		}
	}
	return ok
}

// The reference's defaults: per account and method, 5 POSTs a second and
// 300 a minute; a refusal says how long to wait, and other accounts and
// methods are not affected.
func TestDefaults(t *testing.T) {
	l, c := newLimiter(t, sqlite(t))
	if got := allowN(l, "a", "POST", 10); got != 5 {
		t.Errorf("%d of 10 POSTs in one instant allowed, want 5", got)
	}
	wait, details, ok := l.Allow("a", "POST")
	if ok || wait != 200*time.Millisecond || details != "Account a may send 5 POST requests per SECOND." {
		t.Errorf("6th POST: ok %v, wait %v, %q; want refused, 200ms", ok, wait, details)
	}
	if got := allowN(l, "b", "POST", 5); got != 5 {
		t.Errorf("another account: %d of 5 POSTs allowed", got)
	}
	if got := allowN(l, "a", "GET", 10); got != 10 {
		t.Errorf("GETs after the POSTs ran out: %d of 10 allowed", got)
	}
	c.add(200 * time.Millisecond)
	if got := allowN(l, "a", "POST", 2); got != 1 {
		t.Errorf("200 ms later %d POSTs allowed, want 1", got)
	}

	// A minute's worth: 300 POSTs at 5 a second take a minute; the 301st
	// within it waits for the minute's bucket.
	l, c = newLimiter(t, sqlite(t))
	sent := 0
	for range 60 {
		sent += allowN(l, "a", "POST", 5)
		c.add(time.Second)
	}
	if sent != 300 {
		t.Fatalf("%d POSTs allowed over a minute at 5 a second, want 300", sent)
	}
	// The second's bucket is full again, the minute's has refilled one per 200 ms: 5.
	if got := allowN(l, "a", "POST", 5); got != 5 {
		t.Errorf("after a minute at the limit: %d of 5 allowed", got)
	}
}

// An account's overrides, read from the store, replace the defaults,
// also for buckets already in use; a request refused by one limit costs
// nothing from the others.
func TestOverrides(t *testing.T) {
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		l, c := newLimiter(t, st)
		if got := allowN(l, "a", "PUT", 20); got != 10 {
			t.Fatalf("default: %d of 20 PUTs allowed, want 10", got)
		}
		for _, r := range []store.AccountRateLimit{
			{Account: "a", Verb: "PUT", Unit: "SECOND", Value: 20},
			{Account: "a", Verb: "PUT", Unit: "MINUTE", Value: 25},
		} {
			if err := st.SetAccountRateLimit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		// The second's bucket (20) bounds this second; the minute's
		// bucket, capped at its new value (25), keeps 5.
		c.add(time.Second)
		if got := allowN(l, "a", "PUT", 30); got != 20 {
			t.Errorf("after raising the limits: %d of 30 PUTs allowed in a second, want 20", got)
		}
		c.add(time.Second)
		if got := allowN(l, "a", "PUT", 5); got != 5 {
			t.Errorf("next second: %d of 5 allowed", got)
		}
		// Now the minute's limit refuses, and says so; the refused
		// requests cost the second's bucket nothing.
		wait, details, ok := l.Allow("a", "PUT")
		if ok || details != "Account a may send 25 PUT requests per MINUTE." || wait < time.Second || wait > 3*time.Second {
			t.Errorf("PUT past the minute's limit: ok %v, wait %v, %q", ok, wait, details)
		}
		allowN(l, "a", "PUT", 10)
		if s := status(l, "a", "PUT", "SECOND"); s.Remaining != 15 {
			t.Errorf("the second's bucket after requests the minute refused: %+v, want 15 left", s)
		}
		if err := st.ResetAccountRateLimits(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := l.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got := l.Rules("a"); got[2].Value != 10 || got[3].Value != 600 {
			t.Errorf("rules after reset: %+v", got)
		}
	})
}

func status(l *Limiter, account, verb, unit string) State {
	for _, s := range l.Status(account) {
		if s.Verb == verb && s.Unit == unit {
			return s
		}
	}
	return State{}
}

// Status shows what is left of each limit and when the next request may
// be sent.
func TestStatus(t *testing.T) {
	l, c := newLimiter(t, sqlite(t))
	all := l.Status("a")
	if len(all) != len(Defaults) {
		t.Fatalf("%d limits, want %d", len(all), len(Defaults))
	}
	for i, s := range all {
		if s.Rule != Defaults[i] || s.Remaining != s.Value || !s.NextAvailable.Equal(c.t) {
			t.Errorf("fresh limit %+v", s)
		}
	}
	allowN(l, "a", "DELETE", 5)
	sec, min := status(l, "a", "DELETE", "SECOND"), status(l, "a", "DELETE", "MINUTE")
	if sec.Remaining != 0 || !sec.NextAvailable.Equal(c.t.Add(200*time.Millisecond)) {
		t.Errorf("used-up second: %+v", sec)
	}
	if min.Remaining != 295 || !min.NextAvailable.Equal(c.t) {
		t.Errorf("minute after 5: %+v", min)
	}
}

func forEachStore(t *testing.T, test func(*testing.T, *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqlite(t)) })
	t.Run("postgres", func(t *testing.T) {
		st, err := store.Open(context.Background(), store.Options{URL: pgtest.NewDatabase(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		test(t, st)
	})
}
