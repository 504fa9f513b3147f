// Package store persists load balancers with gorm on SQLite (the embedded
// default) or PostgreSQL. It knows nothing of Envoy or HTTP.
//
// Every mutation runs in one transaction that ends by bumping the global
// revision (a single row), which orders commits. On PostgreSQL mutations of
// one account are serialised by an advisory lock (Tx.LockAccount), which is
// what makes limit checks and port checks race-free; virtual IP addresses
// are unique by index. On SQLite the store writes through a single
// connection, which serialises all writers.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/openlbaas/lbaas/internal/logutil"
)

// Sentinel errors; anything else from the store means the database failed.
var (
	ErrNotFound         = errors.New("store: not found")
	ErrOutOfVirtualIPs  = errors.New("store: out of virtual IPs")
	ErrNoPool           = errors.New("store: no address pool for this virtual IP type and version")
	ErrDuplicateAddress = errors.New("store: address already allocated")
)

// Store is the persistence layer.
type Store struct {
	db *gorm.DB
	// read serves the queries that change nothing: on SQLite a pool of
	// its own, so that reads run beside the one writer connection (WAL);
	// on PostgreSQL the same pool as db.
	read *gorm.DB
	// writes, reads and scans admit calls to db and read in arrival order,
	// as many at a time as each pool has connections (one gate on
	// PostgreSQL, whose pools are one). On SQLite the read pool has two
	// lanes: reads of a row or a few (a load balancer, a token), and scans
	// of many (lists, the data plane's batches, usage), so that the first
	// never wait behind the second.
	writes, reads, scans *gate
	// writeCap (PostgreSQL only) admits writes to at most all but one of
	// the shared gate's turns: writes waiting there for an account's lock
	// never hold every turn, so reads go on.
	writeCap *gate
	dialect  string
	pools    []Pool
	log      *slog.Logger
	// timeout bounds the database work of each call (see Options.Timeout).
	timeout time.Duration
	// host is the callbackHost of the node service events (Options.Host).
	host string
	now  func() time.Time // Options.Now
	// timeouts counts the calls whose timeout passed.
	timeouts atomic.Uint64

	mu        sync.Mutex
	subs      map[chan int64]struct{}
	published int64 // the newest revision subscribers were told of

	// stopListening ends the PostgreSQL LISTEN loop (nil on SQLite).
	stopListening context.CancelFunc
	listening     sync.WaitGroup
}

// notifyChannel carries committed revisions between replicas sharing a
// PostgreSQL database.
const notifyChannel = "lbaas_revisions"

// Options configures Open.
type Options struct {
	// URL is postgres://... for PostgreSQL; anything else is a SQLite file
	// path, optionally prefixed with sqlite://.
	URL    string
	Pools  []Pool
	Logger *slog.Logger
	// Timeout bounds the database work of each call of the store (a query,
	// or a whole transaction): past it the call fails, its connection is
	// dropped, and callers answer "service unavailable". On PostgreSQL it
	// also sets the connections' statement_timeout, lock_timeout,
	// idle_in_transaction_session_timeout and connect timeout; on SQLite,
	// how long a writer waits for another process's lock (busy_timeout).
	// Zero means DefaultTimeout. Migrations in Open are not bounded by it.
	Timeout time.Duration
	// Host names this replica in the node service events it writes (their
	// callbackHost: where the health checks ran). Default: os.Hostname.
	Host string
	// Now is the clock of the usage events it writes (time.Now when nil;
	// tests set it).
	Now func() time.Time
	// Connections is the size of the PostgreSQL connection pool, or of
	// the SQLite read pool beside its one writer (zero:
	// DefaultConnections).
	Connections int
}

// DefaultConnections is Options.Connections when it is zero, for a
// database of dialect ("postgres" or "sqlite").
//
// PostgreSQL: one per core this process may use, at least four (pgxpool's
// default). A connection in use is a request either running on one of the
// cores or waiting for the database; more of them only add PostgreSQL
// backends competing for cores. Measured on 2 cores shared with
// PostgreSQL and wrk: GET p99 31 ms with 20 connections, 11-12 ms with 8,
// 8.8 ms with 4, at the same rate or better. Give more when PostgreSQL is
// far away: a connection then spends most of a write waiting for round
// trips.
//
// SQLite readers: one per core, at least two, half of them for scans
// (Store.scans). A SQLite query runs on a thread of its own outside the Go
// scheduler's cores (cgo), so readers beyond the cores only make threads
// compete for them: on 2 cores with wrk, a GET's p99 was 20-23 ms with two
// readers serving GETs and 8-9 ms with one; a list's p99 67-101 ms with
// four readers, 45-52 ms with two and 37-38 ms with one. The lanes give
// each kind of read one reader there, and keep a GET from waiting behind
// a list or a batch of the data plane.
func DefaultConnections(dialect string) int {
	if dialect == "sqlite" {
		return max(2, runtime.GOMAXPROCS(0))
	}
	return max(4, runtime.GOMAXPROCS(0))
}

// DefaultTimeout is Options.Timeout when none is given.
const DefaultTimeout = 5 * time.Second

// Open connects to the database and runs pending migrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var (
		dialector gorm.Dialector
		dialect   string
		pgConfig  *pgx.ConnConfig
	)
	if isPostgres(opts.URL) {
		var err error
		if pgConfig, err = postgresConfig(opts.URL, timeout); err != nil {
			return nil, fmt.Errorf("open postgres database: %w", err)
		}
		dialector, dialect = postgres.New(postgres.Config{Conn: stdlib.OpenDB(*pgConfig)}), "postgres"
	} else {
		dialector, dialect = sqlite.New(sqlite.Config{Conn: openSQLite(sqliteDSN(opts.URL, timeout))}), "sqlite"
	}
	db, err := openGorm(dialector, dialect)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	conns := cmp.Or(opts.Connections, DefaultConnections(dialect))
	writers := conns
	if dialect == "sqlite" {
		// One connection serialises writers (see the package comment);
		// conns are the readers.
		writers = 1
		sqlDB.SetMaxOpenConns(writers)
	} else {
		// One more connection than the gate admits calls: the health
		// prober's session keeps one for its advisory locks
		// (AdvisoryLocks).
		sqlDB.SetMaxOpenConns(writers + 1)
		// As many kept as open: a pool that closes its spare connections
		// after a burst opens them again in the next one (a PostgreSQL
		// backend process each), which under load cost more CPU than the
		// queries.
		sqlDB.SetMaxIdleConns(writers + 1)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	host := opts.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	s := &Store{db: db, read: db, writes: newGate(writers), dialect: dialect, pools: opts.Pools, log: log, timeout: timeout, host: host, now: opts.Now,
		subs: map[chan int64]struct{}{}}
	if s.now == nil {
		s.now = time.Now
	}
	s.reads, s.scans = s.writes, s.writes
	if dialect == "postgres" {
		s.writeCap = newGate(max(1, writers-1))
	}
	if err := errors.Join(s.migrate(ctx), s.addPools(ctx)); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if dialect == "sqlite" {
		// Readers of a WAL database run beside the writer, each on a
		// snapshot of the last commit.
		if s.read, err = openGorm(sqlite.New(sqlite.Config{Conn: openSQLite(sqliteDSN(opts.URL, timeout))}), dialect); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		readDB, err := s.read.DB()
		if err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
		readDB.SetMaxOpenConns(conns)
		readDB.SetMaxIdleConns(conns)
		s.reads = newGate(conns - conns/2)
		s.scans = s.reads
		if conns > 1 {
			s.scans = newGate(conns / 2)
		}
	}
	if dialect == "postgres" {
		listenCtx, cancel := context.WithCancel(context.Background())
		s.stopListening = cancel
		s.listening.Add(1)
		go s.listen(listenCtx, pgConfig)
	}
	return s, nil
}

func openGorm(dialector gorm.Dialector, dialect string) (*gorm.DB, error) {
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		TranslateError:         true,
		// Statements are kept by the connections: pgx's cache, and on
		// SQLite stmtConn's (sqlitestmts.go).
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	return db, nil
}

// bounded returns the database handle for one call's work, which must end
// within the store's timeout; call cancel when the work is done. Every
// method of the store that touches the database goes through it (or
// through Update), so no request or background job waits on the database
// for longer than that.
//
// The call waits for its turn at the pool's gate (within the timeout) and
// holds it until cancel: a call must not take a second turn at the same
// gate while it holds one.
func (s *Store) bounded(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	return s.turn(ctx, s.db, s.writeCap, s.writes)
}

// boundedRead is bounded for work that changes nothing and reads a row or
// a few.
func (s *Store) boundedRead(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	return s.turn(ctx, s.read, s.reads)
}

// boundedScan is bounded for work that changes nothing and reads many
// rows.
func (s *Store) boundedScan(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	return s.turn(ctx, s.read, s.scans)
}

// turn waits for a turn at each of gates (nil ones skipped), in order.
func (s *Store) turn(ctx context.Context, db *gorm.DB, gates ...*gate) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := s.deadline(ctx)
	var leave []func()
	for _, g := range gates {
		if g != nil {
			leave = append(leave, g.enter(ctx))
		}
	}
	return db.WithContext(ctx), func() {
		for i := len(leave) - 1; i >= 0; i-- {
			leave[i]()
		}
		cancel()
	}
}

// deadline bounds one call's database work by the store's timeout. Its
// cancel counts the call in Timeouts when the timeout passed (and not the
// caller's own deadline).
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	end, _ := bounded.Deadline()
	return bounded, func() {
		// The deadline passed, whether or not the context's timer has
		// fired yet: under load, pgx's socket deadline (the same instant)
		// can end a query before the timer closes Done.
		passed := errors.Is(bounded.Err(), context.DeadlineExceeded) || !time.Now().Before(end)
		if passed && ctx.Err() == nil {
			if parent, ok := ctx.Deadline(); !ok || parent.After(end) {
				s.timeouts.Add(1)
			}
		}
		cancel()
	}
}

// Waiting returns how many calls wait for a database connection now.
func (s *Store) Waiting() int64 {
	var n int64
	seen := map[*gate]bool{}
	for _, g := range []*gate{s.writeCap, s.writes, s.reads, s.scans} {
		if g != nil && !seen[g] {
			seen[g] = true
			n += g.waiting.Load()
		}
	}
	return n
}

// Timeouts returns how many calls of the store ran out of time: the
// database did not answer within the timeout.
func (s *Store) Timeouts() uint64 { return s.timeouts.Load() }

func isPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Keep-alive probes on PostgreSQL connections: a server host that vanished
// (no reset ever comes) is noticed within idle + interval*count.
var pgKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// postgresConfig parses a postgres:// URL and bounds what a connection may
// wait for: connecting (connect_timeout, unless the URL sets it), and on
// the server side a statement, a lock and a transaction left idle
// (statement_timeout, lock_timeout, idle_in_transaction_session_timeout,
// unless the URL sets them) — so that a transaction whose client has given
// up holds no lock past the timeout, even when the client could not tell
// the server. TCP keep-alive finds connections to a host that is gone.
func postgresConfig(url string, timeout time.Duration) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = timeout
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAliveConfig: pgKeepAlive}
	cfg.DialFunc = dialer.DialContext
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	for _, param := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
		if _, set := cfg.RuntimeParams[param]; !set {
			cfg.RuntimeParams[param] = ms
		}
	}
	return cfg, nil
}

// Retrying the LISTEN connection: capped exponential backoff with jitter,
// so that an outage is neither hammered nor waited out for long after it
// ends.
const (
	listenRetryFirst = 100 * time.Millisecond
	listenRetryMax   = 10 * time.Second
)

func listenBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval: listenRetryFirst, MaxInterval: listenRetryMax,
		Multiplier: 2, RandomizationFactor: 0.5,
	}
}

// listenCheck is how long the LISTEN connection may stay silent before it
// is pinged: a server that froze, or a connection that died without a
// word, is noticed within listenCheck plus the store's timeout. (A
// variable for tests.)
var listenCheck = 30 * time.Second

// listen relays the revisions other replicas commit (PostgreSQL NOTIFY,
// sent by Update inside its transaction, so delivered at commit) to this
// store's subscribers, reconnecting after errors with a capped exponential
// backoff and a rate-limited warning.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer s.listening.Done()
	retry := listenBackoff()
	warn := logutil.NewLimited(s.log, logutil.Interval)
	for {
		err := s.listenOnce(ctx, cfg, func() {
			retry.Reset()
			warn.Recovered(ctx, "store: listening for other replicas' commits again")
		})
		if ctx.Err() != nil {
			return
		}
		wait := retry.NextBackOff()
		warn.Warn(ctx, "store: listening for other replicas' commits", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listenOnce connects, listens, tells the subscribers of the revision
// committed while it was not listening, calls listening, and relays
// notifications until the connection fails; it always returns an error.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, listening func()) error {
	setup, cancel := s.deadline(ctx)
	conn, err := pgx.ConnectConfig(setup, cfg)
	if err != nil {
		cancel()
		return err
	}
	defer func() {
		closing, cancel := s.deadline(context.Background())
		defer cancel()
		_ = conn.Close(closing)
	}()
	var rev int64
	_, err = conn.Exec(setup, "LISTEN "+notifyChannel)
	if err == nil {
		err = conn.QueryRow(setup, "SELECT value FROM revisions WHERE id = 1").Scan(&rev)
	}
	cancel()
	if err != nil {
		return err
	}
	listening()
	s.publish(rev)
	for {
		wait, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wait)
		silent := wait.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
				s.publish(rev)
			}
		case silent:
			ping, cancel := s.deadline(ctx)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return fmt.Errorf("ping the listening connection: %w", err)
			}
		default:
			return err
		}
	}
}

// sqliteDSN is the go-sqlite3 DSN of a SQLite file path (optionally
// prefixed with sqlite://). A writer waits at most timeout for another
// process's write lock (busy_timeout). WAL with synchronous=NORMAL (what
// SQLite recommends for WAL) syncs at checkpoints, not at every commit:
// a commit survives lbaasd crashing, and a power loss may undo the last
// commits but never corrupts the database.
func sqliteDSN(url string, timeout time.Duration) string {
	path := strings.TrimPrefix(url, "sqlite://")
	if path == "" {
		path = "lbaasd.db"
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + fmt.Sprintf("_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=%d&_foreign_keys=on&_txlock=immediate", timeout.Milliseconds())
}

// migrationLock is the PostgreSQL advisory lock key migrations hold.
const migrationLock = 0x6c62616173 // "lbaas"

// migrate applies pending migrations. A migration may rightly take longer
// than a request (rewriting a big table), so on PostgreSQL it runs on a
// connection of its own without the session timeouts of postgresConfig,
// bounded by ctx only.
func (s *Store) migrate(ctx context.Context) error {
	run := func(db *gorm.DB) error {
		m := gormigrate.New(db, &gormigrate.Options{
			TableName:                 "schema_migrations",
			IDColumnName:              "id",
			IDColumnSize:              255,
			UseTransaction:            s.dialect == "postgres",
			ValidateUnknownMigrations: true,
		}, migrations)
		if err := m.Migrate(); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
		return nil
	}
	if s.dialect != "postgres" {
		return run(s.db.WithContext(ctx))
	}
	return s.db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0").Error; err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
		// Back to the connection's own settings before the pool reuses it.
		defer conn.Exec("RESET ALL")
		// Replicas starting together on a new database migrate one at a
		// time: the others then find the migrations done.
		if err := conn.Exec("SELECT pg_advisory_lock(?)", migrationLock).Error; err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", migrationLock)
		return run(conn)
	})
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the database connections.
func (s *Store) Close() error {
	if s.stopListening != nil {
		s.stopListening()
		s.listening.Wait()
		s.stopListening = nil
	}
	var errs []error
	for _, db := range []*gorm.DB{s.read, s.db} {
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		errs = append(errs, err)
		if s.read == s.db {
			break
		}
	}
	return errors.Join(errs...)
}

// Revision returns the current global revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var row revisionRow
	err := db.First(&row, 1).Error
	return row.Value, err
}

// Update runs fn in one transaction, then gives the transaction the next
// global revision, and returns it. Subscribers hear of it after the commit.
// The whole transaction, fn included, must end within the store's timeout.
//
// The revision is taken last, just before the commit: the row lock that
// taking it holds until the commit orders revisions as commits, so a
// reader of the changes after a revision never misses one that commits
// later, and only that last step is serialised between writers. What fn
// must be serialised for takes a lock of its own (Tx.LockAccount).
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) (int64, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var rev int64
	tx := &Tx{store: s, touched: map[uint32]*LoadBalancer{}}
	err := db.Transaction(func(db *gorm.DB) error {
		tx.db = db
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.recordUsageEvents(); err != nil {
			return err
		}
		var err error
		rev, err = tx.commitRevision()
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, lb := range tx.touched {
		lb.Revision = rev
	}
	s.publish(rev)
	return rev, nil
}

// Subscribe returns a channel that receives the latest committed revision
// after every commit (intermediate revisions may be skipped), and a
// function that ends the subscription.
func (s *Store) Subscribe() (<-chan int64, func()) {
	ch := make(chan int64, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// publish tells subscribers of a committed revision; revisions only go
// forward (a replica's echo of our own commit, or a late notification, is
// dropped).
func (s *Store) publish(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev <= s.published {
		return
	}
	s.published = rev
	for ch := range s.subs {
		select {
		case ch <- rev:
		default:
			// The subscriber has not read the previous value yet: replace it
			// so that it sees the newest revision.
			select {
			case <-ch:
			default:
			}
			ch <- rev
		}
	}
}
