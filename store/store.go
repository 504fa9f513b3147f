// Package store persists load balancers with gorm on SQLite (the embedded
// default) or PostgreSQL. It knows nothing of Envoy or HTTP.
//
// Every mutation runs in one transaction that first bumps the global
// revision (a single row). On PostgreSQL the row lock taken by that bump
// serialises writers, which is what makes limit checks and VIP/port
// allocation race-free without further locking; on SQLite the store uses a
// single connection, which serialises them the same way.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
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
	db      *gorm.DB
	dialect string
	pools   []Pool
	log     *slog.Logger

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
}

// Open connects to the database and runs pending migrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dialector, dialect := dialectorFor(opts.URL)
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		TranslateError:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if dialect == "sqlite" {
		// One connection serialises writers (see the package comment).
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, dialect: dialect, pools: opts.Pools, log: log, subs: map[chan int64]struct{}{}}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if dialect == "postgres" {
		listenCtx, cancel := context.WithCancel(context.Background())
		s.stopListening = cancel
		s.listening.Add(1)
		go s.listen(listenCtx, opts.URL)
	}
	return s, nil
}

// listen relays the revisions other replicas commit (PostgreSQL NOTIFY,
// sent by Update inside its transaction, so delivered at commit) to this
// store's subscribers, reconnecting after errors.
func (s *Store) listen(ctx context.Context, url string) {
	defer s.listening.Done()
	for ctx.Err() == nil {
		if err := s.listenOnce(ctx, url); err != nil && ctx.Err() == nil {
			s.log.Warn("store: listening for other replicas' commits", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			s.publish(rev)
		}
	}
}

func dialectorFor(url string) (gorm.Dialector, string) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return postgres.Open(url), "postgres"
	}
	path := strings.TrimPrefix(url, "sqlite://")
	if path == "" {
		path = "lbaasd.db"
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	dsn := path + sep + "_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_txlock=immediate"
	return sqlite.Open(dsn), "sqlite"
}

func (s *Store) migrate(ctx context.Context) error {
	m := gormigrate.New(s.db.WithContext(ctx), &gormigrate.Options{
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

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
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
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Revision returns the current global revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var row revisionRow
	err := s.db.WithContext(ctx).First(&row, 1).Error
	return row.Value, err
}

// Update runs fn in one transaction that bumps the global revision, and
// returns that revision. Subscribers hear of it after the commit.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) (int64, error) {
	var rev int64
	err := s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		if err := db.Raw("UPDATE revisions SET value = value + 1 WHERE id = 1 RETURNING value").Scan(&rev).Error; err != nil {
			return err
		}
		tx := &Tx{db: db, store: s, rev: rev, touched: map[uint32]string{}}
		if err := fn(tx); err != nil {
			return err
		}
		if s.dialect == "postgres" {
			// Delivered to the other replicas when (and only if) we commit.
			if err := db.Exec("SELECT pg_notify(?, ?)", notifyChannel, strconv.FormatInt(rev, 10)).Error; err != nil {
				return err
			}
		}
		return tx.recordChanges()
	})
	if err != nil {
		return 0, err
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
