package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/auth"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// run runs lbaasd with args and returns what it printed on stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		done <- b.String()
	}()
	err = root().ParseAndRun(context.Background(), args)
	os.Stdout = saved
	_ = w.Close()
	return <-done, err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("lbaasd %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// The admin subcommands manage users, their roles and keys, and the
// accounts' rate limits, on SQLite and PostgreSQL.
func TestAdminCommands(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{
		"sqlite":   func(t testing.TB) string { return filepath.Join(t.TempDir(), "lbaasd.db") },
		"postgres": pgtest.NewDatabase,
	} {
		t.Run(name, func(t *testing.T) { testAdminCommands(t, url(t)) })
	}
}

func testAdminCommands(t *testing.T, db string) {
	ctx := context.Background()
	key := strings.TrimSpace(mustRun(t, "user", "create", "--database-url", db, "--username", "alice", "--tenant", "1234"))
	mustRun(t, "user", "create", "--database-url", db, "--username", "bob", "--tenant", "1234", "--role", "lbaas:observer")
	if _, err := run(t, "user", "create", "--database-url", db, "--username", "eve", "--tenant", "1234", "--role", "lbaas:root"); err == nil {
		t.Error("an unknown role was accepted")
	}
	if _, err := run(t, "user", "create", "--database-url", db, "--username", "eve", "--tenant", "1234", "--role", "identity:user-admin"); err == nil {
		t.Error("a second account owner was created")
	}
	list := mustRun(t, "user", "list", "--database-url", db, "--tenant", "1234")
	for _, want := range []string{"alice     1234    identity:user-admin", "bob       1234    lbaas:observer"} {
		if !strings.Contains(list, want) {
			t.Errorf("user list:\n%s\nwant a line with %q", list, want)
		}
	}
	mustRun(t, "user", "set-roles", "--database-url", db, "--username", "bob", "--role", "lbaas:creator,observer")
	newKey := strings.TrimSpace(mustRun(t, "user", "rotate-key", "--database-url", db, "--username", "alice"))
	mustRun(t, "user", "delete", "--database-url", db, "--username", "bob")
	if _, err := run(t, "user", "delete", "--database-url", db, "--username", "bob"); err == nil || !strings.Contains(err.Error(), `no user "bob"`) {
		t.Errorf("deleting a missing user: %v", err)
	}

	mustRun(t, "limits", "set", "--database-url", db, "--account", "1234", "--method", "post", "--unit", "second", "--value", "20")
	if _, err := run(t, "limits", "set", "--database-url", db, "--account", "1234", "--method", "PATCH", "--unit", "SECOND", "--value", "2"); err == nil {
		t.Error("a limit of PATCH was accepted")
	}
	if _, err := run(t, "limits", "set", "--database-url", db, "--account", "1234", "--method", "GET", "--unit", "SECOND", "--value", "0"); err == nil {
		t.Error("a limit of 0 was accepted")
	}
	if show := mustRun(t, "limits", "show", "--database-url", db, "--account", "1234"); !strings.Contains(show, "POST    20     SECOND") ||
		!strings.Contains(show, "POST    300    MINUTE") {
		t.Errorf("limits show:\n%s", show)
	}

	st, err := store.Open(ctx, store.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := auth.New(st, 0, nil)
	if _, err := a.IssueToken(ctx, auth.Credentials{Username: "alice", APIKey: key}); err == nil {
		t.Error("alice's old key still works after rotate-key")
	}
	if _, err := a.IssueToken(ctx, auth.Credentials{Username: "alice", APIKey: newKey}); err != nil {
		t.Errorf("alice's new key: %v", err)
	}
	users, err := a.Users(ctx, "")
	if err != nil || len(users) != 1 || users[0].Username != "alice" {
		t.Errorf("users after deleting bob: %+v, %v", users, err)
	}
	if rows, err := st.AccountRateLimits(ctx); err != nil || len(rows) != 1 || rows[0].Value != 20 || rows[0].Verb != "POST" {
		t.Errorf("rate limits stored: %+v, %v", rows, err)
	}
	mustRun(t, "limits", "reset", "--database-url", db, "--account", "1234")
	if rows, err := st.AccountRateLimits(ctx); err != nil || len(rows) != 0 {
		t.Errorf("rate limits after reset: %+v, %v", rows, err)
	}
}
