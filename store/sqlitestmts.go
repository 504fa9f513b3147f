package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/mattn/go-sqlite3"
)

// go-sqlite3 compiles every statement it runs anew, and gorm's prepared
// statements do not outlive a transaction (database/sql prepares a
// transaction's statements again in the next one): compiling was a sixth
// of a write's CPU time. A SQLite connection here keeps the statements it
// compiled, by their text, and runs them again.

// sqliteConnector opens SQLite connections that keep their statements.
type sqliteConnector struct {
	dsn    string
	driver *sqlite3.SQLiteDriver
}

func openSQLite(dsn string) *sql.DB {
	return sql.OpenDB(&sqliteConnector{dsn: dsn, driver: &sqlite3.SQLiteDriver{}})
}

func (c *sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	cache, err := lru.NewWithEvict(keptStatements, func(_ string, s *keptStmt) { s.evict() })
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &stmtConn{SQLiteConn: conn.(*sqlite3.SQLiteConn), stmts: cache}, nil
}

func (c *sqliteConnector) Driver() driver.Driver { return c.driver }

// keptStatements bounds the statements a connection keeps (the least
// recently used go first), and keptLength the length of their text: the
// long ones are batches of many ids, each length a statement of its own,
// whose compiling costs little beside their work.
const (
	keptStatements = 128
	keptLength     = 4096
)

// stmtConn is a SQLite connection that keeps its statements. database/sql
// uses a connection from one goroutine at a time.
type stmtConn struct {
	*sqlite3.SQLiteConn
	stmts *lru.Cache[string, *keptStmt]
}

// keptStmt is a kept statement; busy while a result set of it is open.
type keptStmt struct {
	mu      sync.Mutex
	stmt    *sqlite3.SQLiteStmt
	busy    bool
	evicted bool
}

func (k *keptStmt) evict() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.evicted = true
	if !k.busy {
		_ = k.stmt.Close()
	}
}

// release ends a use of the statement.
func (k *keptStmt) release() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.busy = false
	if k.evicted {
		_ = k.stmt.Close()
	}
}

// statement returns the kept statement of query, compiling and keeping it
// the first time, marked busy; or nil when query is not one to keep: more
// than one statement (go-sqlite3 runs those one by one), too long, or in
// use by an open result set.
func (c *stmtConn) statement(ctx context.Context, query string) (*keptStmt, error) {
	if len(query) > keptLength || strings.Contains(query, ";") {
		return nil, nil
	}
	if k, ok := c.stmts.Get(query); ok {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.busy {
			return nil, nil
		}
		k.busy = true
		return k, nil
	}
	s, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	k := &keptStmt{stmt: s.(*sqlite3.SQLiteStmt), busy: true}
	c.stmts.Add(query, k)
	return k, nil
}

// ExecContext runs a kept statement for an INSERT, UPDATE or DELETE that
// returns no rows; anything else as go-sqlite3 does. (A statement left
// with a row pending stays active, and its transaction cannot commit:
// only closing a result set resets a statement.)
func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	var k *keptStmt
	var err error
	if writesOnly(query) {
		k, err = c.statement(ctx, query)
	}
	if err != nil {
		return nil, err
	}
	if k == nil {
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	defer k.release()
	return k.stmt.ExecContext(ctx, args)
}

// writesOnly tells an INSERT, UPDATE or DELETE without RETURNING.
func writesOnly(query string) bool {
	q := strings.TrimSpace(query)
	verb, _, _ := strings.Cut(q, " ")
	switch strings.ToUpper(verb) {
	case "INSERT", "UPDATE", "DELETE":
		return !strings.Contains(strings.ToUpper(q), "RETURNING")
	}
	return false
}

// QueryContext runs a kept statement; closing the result set resets it.
func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	k, err := c.statement(ctx, query)
	if err != nil || k == nil {
		if err == nil {
			return c.SQLiteConn.QueryContext(ctx, query, args)
		}
		return nil, err
	}
	rows, err := k.stmt.QueryContext(ctx, args)
	if err != nil {
		k.release()
		return nil, err
	}
	return &keptRows{SQLiteRows: rows.(*sqlite3.SQLiteRows), kept: k}, nil
}

// Close closes the kept statements, then the connection.
func (c *stmtConn) Close() error {
	c.stmts.Purge()
	return c.SQLiteConn.Close()
}

// keptRows is a result set of a kept statement.
type keptRows struct {
	*sqlite3.SQLiteRows
	kept *keptStmt
	once sync.Once
}

func (r *keptRows) Close() error {
	err := r.SQLiteRows.Close()
	r.once.Do(r.kept.release)
	return err
}
