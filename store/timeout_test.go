package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

// A write lock held elsewhere (another process's transaction) makes a
// mutation fail once the store's timeout has passed, not hang; the store
// works again as soon as the lock goes.
func TestTimeoutBoundsLockWaits(t *testing.T) {
	const timeout = 300 * time.Millisecond
	backends := []struct {
		name string
		url  func(t *testing.T) string
		// hold takes the writers' lock on another connection until release.
		hold func(t *testing.T, url string) (release func())
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "lbaas.db") }, holdSQLite},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }, holdPostgres},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			s, err := Open(context.Background(), Options{URL: url, Logger: slog.New(slog.DiscardHandler), Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			mustUpdate(t, s, func(*Tx) error { return nil })

			release := b.hold(t, url)
			start := time.Now()
			_, err = s.Update(context.Background(), func(*Tx) error { return nil })
			took := time.Since(start)
			if err == nil {
				t.Fatal("Update succeeded while another transaction held the writers' lock")
			}
			t.Logf("Update under a held lock: %v after %v", err, took)
			if took < timeout/2 || took > 2*time.Second {
				t.Fatalf("Update failed after %v; want about the %v timeout", took, timeout)
			}
			release()
			mustUpdate(t, s, func(*Tx) error { return nil })
		})
	}
}

func holdSQLite(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			_ = conn.Close()
			_ = db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func holdPostgres(t *testing.T, url string) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM revisions WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// PostgreSQL sessions carry the store's timeout as statement, lock and
// idle-in-transaction timeouts (the migration's own settings are undone),
// unless the URL sets them.
func TestPostgresSessionTimeouts(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	show := func(s *Store, param string) string {
		var v string
		if err := s.db.Raw("SHOW " + param).Scan(&v).Error; err != nil {
			t.Fatal(err)
		}
		return v
	}
	s, err := Open(context.Background(), Options{URL: dsn, Timeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The one pooled connection is the one that ran the migrations.
	sqlDB, _ := s.db.DB()
	if n := sqlDB.Stats().OpenConnections; n != 1 {
		t.Fatalf("%d connections open after Open; want the migrations' one", n)
	}
	for i := 0; i < 3; i++ {
		for _, p := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
			if got := show(s, p); got != "1500ms" {
				t.Errorf("%s = %q, want 1500ms (open connections %d)", p, got, sqlDB.Stats().OpenConnections)
			}
		}
	}

	o, err := Open(context.Background(), Options{URL: dsn + "&statement_timeout=42s", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := show(o, "statement_timeout"); got != "42s" {
		t.Errorf("statement_timeout set in the URL = %q, want 42s", got)
	}
	if got := show(o, "lock_timeout"); got != "1s" {
		t.Errorf("lock_timeout = %q, want 1s", got)
	}
}

// With the database gone, the LISTEN loop retries with a growing delay
// and warns once, however often it fails.
func TestListenBacksOff(t *testing.T) {
	// A "database" that hangs up on every connection, counting the
	// attempts to log in (a startup message: length, then protocol 3.0),
	// not the cancel requests pgx sends after a failed one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var attempts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			head := make([]byte, 8)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := io.ReadFull(c, head); err == nil && binary.BigEndian.Uint32(head[4:]) == 3<<16 {
				attempts.Add(1)
			}
			_ = c.Close()
		}
	}()
	cfg, err := postgresConfig("postgres://lbaas@"+ln.Addr().String()+"/lbaas?sslmode=disable", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	logs := &levels{}
	s := &Store{log: slog.New(logs), timeout: time.Second, subs: map[chan int64]struct{}{}}
	ctx, cancel := context.WithCancel(context.Background())
	s.listening.Add(1)
	go s.listen(ctx, cfg)
	time.Sleep(500 * time.Millisecond)
	cancel()
	s.listening.Wait()

	// Waits of 100 ms ± 50%, doubling: 3 or 4 attempts in 500 ms (a
	// fixed 100 ms retry would make 5, no backoff hundreds).
	n := int(attempts.Load())
	if n < 2 || n > 4 {
		t.Errorf("%d connection attempts in 500 ms; want 2 to 4", n)
	}
	warn, debug := logs.count("store: listening for other replicas' commits")
	if warn != 1 {
		t.Errorf("%d warnings in 500 ms of failures; want 1", warn)
	}
	if warn+debug != n {
		t.Errorf("%d failures logged (%d warn, %d debug) for %d attempts", warn+debug, warn, debug, n)
	}
}

// TestListenRetryIsCapped: however long the outage, the LISTEN loop tries
// again at least every listenRetryMax (plus jitter).
func TestListenRetryIsCapped(t *testing.T) {
	b := listenBackoff()
	var last time.Duration
	for range 100 {
		last = b.NextBackOff()
		if last > listenRetryMax*3/2 {
			t.Fatalf("backoff %v exceeds the cap %v plus jitter", last, listenRetryMax)
		}
	}
	if last < listenRetryMax/2 {
		t.Fatalf("backoff after 100 failures is %v; want near the cap %v", last, listenRetryMax)
	}
}

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

func (l *levels) count(msg string) (warn, debug int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		switch r.Level {
		case slog.LevelWarn:
			warn++
		case slog.LevelDebug:
			debug++
		}
	}
	return warn, debug
}

// A LISTEN connection to a server that hangs is noticed (pinged after
// listenCheck of silence) and replaced once the server answers again:
// the replica hears other replicas' commits again.
func TestListenSurvivesAHungServer(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pg, err := pgtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { listenCheck = d }(listenCheck)
	listenCheck = 200 * time.Millisecond
	logs := &levels{}
	a, err := Open(context.Background(), Options{URL: dsn, Logger: slog.New(logs), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), Options{URL: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	revs, stop := a.Subscribe()
	defer stop()
	// hears commits on b until a hears of it (a commits nothing itself).
	hears := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
			rev := mustUpdate(t, b, func(*Tx) error { return nil })
			wait := time.After(200 * time.Millisecond)
		waiting:
			for {
				select {
				case got := <-revs:
					if got >= rev {
						return
					}
				case <-wait:
					break waiting
				}
			}
		}
		t.Fatalf("replica a never heard replica b's commits %s", what)
	}
	hears("before the freeze")

	thaw, err := pg.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(thaw)
	const msg = "store: listening for other replicas' commits"
	deadline := time.Now().Add(5 * time.Second)
	for {
		if warn, _ := logs.count(msg); warn > 0 {
			break
		}
		if time.Now().After(deadline) {
			thaw()
			t.Fatal("the LISTEN loop did not notice the hung server")
		}
		time.Sleep(50 * time.Millisecond)
	}
	thaw()
	hears("after the server resumed")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var again bool
	for _, r := range logs.recs {
		again = again || r.Message == "store: listening for other replicas' commits again"
	}
	if !again {
		t.Error("no log line says the LISTEN loop recovered")
	}
}
