package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// What the health monitor prober reads and writes.

// The node service event of a measured status change.
const (
	NodeEventType     = "UPDATE_NODE"
	NodeEventCategory = "UPDATE"
	NodeEventSeverity = "INFO"
	NodeEventTitle    = "Node Status Updated"
)

// maxEventDetail bounds NodeEvent.DetailedMessage (its column's size).
const maxEventDetail = 4000

// SetNodeStatus writes a node's measured status and records the node
// service event of the change. It marks lb changed (its revision, so that
// the data plane republishes the node's health) without changing lb's
// status or its updated time: health is not a customer's change.
func (tx *Tx) SetNodeStatus(lb *LoadBalancer, n *Node, status, detail string) error {
	if len(detail) > maxEventDetail {
		detail = detail[:maxEventDetail]
	}
	if err := tx.db.Model(&Node{}).Where("id = ?", n.ID).Updates(map[string]any{"status": status}).Error; err != nil {
		return err
	}
	n.Status = status
	ev := NodeEvent{
		LoadBalancerID: lb.ID, NodeID: n.ID, Account: lb.Account,
		Type: NodeEventType, Category: NodeEventCategory, Severity: NodeEventSeverity, Title: NodeEventTitle,
		Description:     fmt.Sprintf("Node '%d' status changed to '%s' for load balancer '%d'", n.ID, status, lb.ID),
		DetailedMessage: detail, CallbackHost: tx.store.host,
	}
	if err := tx.db.Create(&ev).Error; err != nil {
		return err
	}
	tx.touch(lb)
	return tx.lockRows([]uint32{lb.ID})
}

// errUnchanged rolls back an Update that turned out to change nothing.
var errUnchanged = errors.New("store: unchanged")

// SetNodeStatus records a measured node status in one Update (see
// Tx.SetNodeStatus). It reports false, and commits nothing, when the node
// already has that status or is gone, or its load balancer is being
// deleted or no longer has a health monitor (a probe that raced with the
// monitor's removal).
func (s *Store) SetNodeStatus(ctx context.Context, lbID, nodeID uint32, status, detail string) (bool, error) {
	_, err := s.Update(ctx, func(tx *Tx) error {
		var lb LoadBalancer
		err := tx.db.Preload("Nodes", "id = ?", nodeID).
			Where("id = ? AND status NOT IN ?", lbID, []string{StatusDeleted, StatusPendingDelete}).
			First(&lb).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && len(lb.Nodes) == 0) {
			return errUnchanged
		}
		if err != nil {
			return err
		}
		n := &lb.Nodes[0]
		if n.Status == status || lb.HealthMonitor == nil {
			return errUnchanged
		}
		return tx.SetNodeStatus(&lb, n, status, detail)
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return err == nil, err
}

// MonitoredLoadBalancers lists the load balancers with a health monitor
// whose configuration is published (every one not being deleted), in id
// order, with their nodes (without metadata).
func (s *Store) MonitoredLoadBalancers(ctx context.Context) ([]LoadBalancer, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var lbs []LoadBalancer
	err := db.Preload("Nodes", orderByID).
		Select("id", "account", "fleet", "status", "protocol", "health_monitor").
		Where("health_monitor IS NOT NULL AND health_monitor <> '' AND health_monitor <> 'null'").
		Where("status NOT IN ?", []string{StatusDeleted, StatusPendingDelete}).
		Order("id").Find(&lbs).Error
	if err != nil {
		return nil, err
	}
	out := lbs[:0]
	for _, lb := range lbs {
		if lb.HealthMonitor != nil {
			out = append(out, lb)
		}
	}
	return out, nil
}

// EventPage selects a page of a load balancer's node service events.
type EventPage struct {
	LoadBalancerID uint32
	// Marker is the id the page starts with; 0 means from the start.
	Marker uint32
	Offset int
	// Limit is the page size; 0 means no limit.
	Limit int
}

// ListNodeEvents returns a page of a load balancer's node service events,
// oldest first (the reference's order).
func (s *Store) ListNodeEvents(ctx context.Context, p EventPage) ([]NodeEvent, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	q := db.Where("load_balancer_id = ?", p.LoadBalancerID)
	if p.Marker > 0 {
		q = q.Where("id >= ?", p.Marker)
	}
	if p.Offset > 0 {
		q = q.Offset(p.Offset)
	}
	if p.Limit > 0 {
		q = q.Limit(p.Limit)
	}
	var out []NodeEvent
	err := q.Order("id").Find(&out).Error
	return out, err
}

// PruneNodeEvents deletes the node service events created before t (the
// reference keeps them 90 days) and returns how many went.
func (s *Store) PruneNodeEvents(ctx context.Context, before time.Time) (int64, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	res := db.Where("created_at < ?", before.UTC()).Delete(&NodeEvent{})
	return res.RowsAffected, res.Error
}

// AdvisoryLocks are PostgreSQL session advisory locks held on one
// connection of its own (one session however many keys it holds). On
// SQLite (one process owns the database) they hold nothing and every key
// is granted.
type AdvisoryLocks struct {
	conn  *sql.Conn
	store *Store
	held  map[int64]bool
}

// AdvisoryLocks opens a session for advisory locks. When idle is positive,
// PostgreSQL ends the session after it has been idle that long
// (idle_session_timeout): a holder cut off from the database, which can
// neither use nor release its locks, loses them then. Close it when done.
func (s *Store) AdvisoryLocks(ctx context.Context, idle time.Duration) (*AdvisoryLocks, error) {
	l := &AdvisoryLocks{store: s, held: map[int64]bool{}}
	if s.dialect != "postgres" {
		return l, nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	if l.conn, err = sqlDB.Conn(ctx); err != nil {
		return nil, err
	}
	if idle > 0 {
		if _, err := l.conn.ExecContext(ctx, "SELECT set_config('idle_session_timeout', $1, false)",
			strconv.FormatInt(idle.Milliseconds(), 10)); err != nil {
			_ = l.conn.Close()
			return nil, err
		}
	}
	return l, nil
}

// TryLock takes the lock key without waiting; it reports whether it got it.
func (l *AdvisoryLocks) TryLock(ctx context.Context, key int64) (bool, error) {
	if l.conn != nil {
		ctx, cancel := l.store.deadline(ctx)
		defer cancel()
		var got bool
		if err := l.conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
			return false, err
		}
	}
	l.held[key] = true
	return true, nil
}

// Unlock gives a lock back.
func (l *AdvisoryLocks) Unlock(ctx context.Context, key int64) error {
	if !l.held[key] {
		return nil
	}
	delete(l.held, key)
	if l.conn == nil {
		return nil
	}
	ctx, cancel := l.store.deadline(ctx)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", key)
	return err
}

// Held reports whether the lock key was taken (and not given back).
func (l *AdvisoryLocks) Held(key int64) bool { return l.held[key] }

// Check tells whether every lock taken is still held: PostgreSQL releases
// a session's locks when its connection ends, so a dead connection means
// another replica may hold them now.
func (l *AdvisoryLocks) Check(ctx context.Context) error {
	if l.conn == nil {
		return nil
	}
	ctx, cancel := l.store.deadline(ctx)
	defer cancel()
	keys := make([]int64, 0, len(l.held))
	for k := range l.held {
		keys = append(keys, k)
	}
	var n int
	err := l.conn.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND pid = pg_backend_pid() AND granted AND ((classid::bigint << 32) | objid::bigint) = ANY($1)`, keys).Scan(&n)
	if err != nil {
		return err
	}
	if n != len(keys) {
		return errors.New("store: advisory lock lost")
	}
	return nil
}

// Close gives every lock back and returns the connection to the pool.
func (l *AdvisoryLocks) Close() error {
	l.held = map[int64]bool{}
	if l.conn == nil {
		return nil
	}
	ctx, cancel := l.store.deadline(context.Background())
	defer cancel()
	_, err := l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock_all(), set_config('idle_session_timeout', '0', false)")
	if err != nil {
		// Never hand a session that may still hold locks back to the pool.
		_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return errors.Join(err, l.conn.Close())
}
