package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestRoundTrip(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	if !strings.HasPrefix(dsn, "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(dsn, "?sslmode=disable") {
		t.Errorf("unexpected DSN shape: %s", dsn)
	}
	ctx := context.Background()
	conn := connect(t, dsn)

	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if _, err := conn.Exec(ctx, `INSERT INTO items (name) VALUES ($1)`, n); err != nil {
			t.Fatalf("insert %q: %v", n, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT name FROM items ORDER BY id`)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if got := strings.Join(names, ","); got != "alpha,beta,gamma" {
		t.Fatalf("got rows %q", got)
	}

	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatalf("server_version: %v", err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want off", fsync, err)
	}
	t.Logf("PostgreSQL %s at %s", version, dsn)
}

func TestCreateDatabaseDistinct(t *testing.T) {
	pgtest.NewDatabase(t) // skips (or fails under PGTEST_REQUIRED=1) when there is no server
	srv, err := pgtest.Shared()
	if err != nil {
		t.Fatalf("Shared: %v", err)
	}
	ctx := context.Background()
	dsn1, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	dsn2, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	if dsn1 == dsn2 {
		t.Fatalf("two CreateDatabase calls returned the same DSN %s", dsn1)
	}
	c1, c2 := connect(t, dsn1), connect(t, dsn2)
	var n1, n2 string
	if err := c1.QueryRow(ctx, "SELECT current_database()").Scan(&n1); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(ctx, "SELECT current_database()").Scan(&n2); err != nil {
		t.Fatal(err)
	}
	if n1 == n2 {
		t.Fatalf("both DSNs point at database %q", n1)
	}
	// A table in one database must not be visible in the other.
	if _, err := c1.Exec(ctx, "CREATE TABLE only_in_one (x int)"); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := c2.QueryRow(ctx, "SELECT to_regclass('only_in_one') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("table created in %s is visible in %s", n1, n2)
	}
}

func TestParallelDatabases(t *testing.T) {
	for i := 0; i < 4; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, pgtest.NewDatabase(t))
			ctx := context.Background()
			if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
				t.Fatal(err)
			}
			var v int
			if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
				t.Fatalf("got %d, %v", v, err)
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	srv, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("PGTEST_REQUIRED") != "1" {
		t.Skipf("SKIPPING Postgres test: %v", err)
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	dsn := srv.DSN("postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		_ = srv.Stop()
		t.Fatalf("connect: %v", err)
	}
	_ = conn.Close(ctx)

	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(start))
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := srv.CreateDatabase(ctx); err == nil {
		t.Fatal("CreateDatabase succeeded on a stopped server")
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ccancel()
	if c, err := pgx.Connect(cctx, dsn); err == nil {
		_ = c.Close(cctx)
		t.Fatal("server still accepts connections after Stop")
	}
}

// A frozen server accepts nothing that needs an answer, on an open
// connection or a new one; thawed, it answers again and stops cleanly.
func TestFreeze(t *testing.T) {
	srv, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoPostgres) && os.Getenv("PGTEST_REQUIRED") != "1" {
		t.Skipf("SKIPPING Postgres test: %v", err)
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Stop()
	dsn := srv.DSN("postgres")
	conn := connect(t, dsn)
	thaw, err := srv.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(thaw)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("an open connection to the frozen server answered a ping")
	}
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		_ = c.Close(context.Background())
		t.Fatal("connected to the frozen server")
	}

	thaw()
	thaw() // harmless
	fresh := connect(t, dsn)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := fresh.Ping(ctx2); err != nil {
		t.Fatalf("the thawed server does not answer: %v", err)
	}
	_ = fresh.Close(ctx2)
	_ = conn.Close(ctx2)
	// Stop's fast shutdown works (a wrapper left stopped would make it
	// time out and kill the server).
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop after a freeze: %v", err)
	}
}
