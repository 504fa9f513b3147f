package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A SQLite connection keeps the statements it ran, across transactions,
// and still answers right when a kept statement is run again while a
// result set of it is open, after its transaction rolled back, and for
// what it must not keep (RETURNING through Exec, several statements).
func TestSQLiteKeepsStatements(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(sqliteDSN(filepath.Join(t.TempDir(), "kept.db"), DefaultTimeout))
	defer db.Close()
	db.SetMaxOpenConns(1)
	mustExec := func(tx interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, q string, args ...any) sql.Result {
		t.Helper()
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res
	}
	mustExec(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")

	const insert, sel = "INSERT INTO items (name) VALUES (?)", "SELECT id, name FROM items WHERE id >= ? ORDER BY id"
	for i, name := range []string{"a", "b", "c"} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := mustExec(tx, insert, name).RowsAffected(); n != 1 {
			t.Fatalf("insert %s affected %d rows", name, n)
		}
		if _, err := tx.ExecContext(ctx, insert, name); err == nil {
			t.Fatalf("a duplicate name was inserted")
		}
		// The same query again while its result set is open.
		rows, err := tx.QueryContext(ctx, sel, 1)
		if err != nil {
			t.Fatal(err)
		}
		var outer, inner int
		for rows.Next() {
			outer++
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ("+sel+")", 1).Scan(&n); err != nil {
				t.Fatal(err)
			}
			again, err := tx.QueryContext(ctx, sel, 1)
			if err != nil {
				t.Fatal(err)
			}
			for again.Next() {
				inner++
			}
			if err := again.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if outer != i+1 || inner != outer*outer {
			t.Fatalf("round %d: %d rows, %d inside", i, outer, inner)
		}
		// RETURNING through Exec leaves no statement active: the
		// transaction commits.
		mustExec(tx, "UPDATE items SET name = name || '' WHERE id = ? RETURNING id", 1)
		mustExec(tx, "UPDATE items SET name = name WHERE id = 1; UPDATE items SET name = name WHERE id = 2")
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	// A rolled back insert leaves nothing, and the statement runs again.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(tx, insert, "rolled back")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustExec(db, insert, "d")
	var names []string
	rows, err := db.QueryContext(ctx, sel, 1)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(names) != 4 || names[3] != "d" {
		t.Fatalf("names = %q", names)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		kept := dc.(*stmtConn).stmts
		for _, q := range []string{insert, sel} {
			if !kept.Contains(q) {
				t.Errorf("%q is not kept", q)
			}
		}
		if kept.Contains("UPDATE items SET name = name || '' WHERE id = ? RETURNING id") {
			t.Error("an Exec with RETURNING is kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
