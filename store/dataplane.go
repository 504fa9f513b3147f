package store

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// What the data-plane publisher reads and reports back.

// ChangesSince lists the changes committed after revision since, oldest first.
func (s *Store) ChangesSince(ctx context.Context, since int64) ([]Change, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var out []Change
	err := db.Where("revision > ?", since).Order("revision, load_balancer_id").Find(&out).Error
	return out, err
}

// LoadBalancerByID loads any load balancer, whatever its account or status.
func (s *Store) LoadBalancerByID(ctx context.Context, id uint32) (*LoadBalancer, error) {
	lbs, err := s.LoadBalancersByID(ctx, []uint32{id})
	if err != nil {
		return nil, err
	}
	return lbs[0], nil
}

// LoadBalancersByID loads load balancers, whatever their account or
// status, with what the data plane needs of them, in batches; one that
// does not exist is ErrNotFound.
func (s *Store) LoadBalancersByID(ctx context.Context, ids []uint32) ([]*LoadBalancer, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	out := make([]*LoadBalancer, 0, len(ids))
	for batch := range slices.Chunk(ids, liveBatch) {
		var lbs []LoadBalancer
		if err := db.Where("id IN ?", batch).Find(&lbs).Error; err != nil {
			return nil, err
		}
		if len(lbs) != len(batch) {
			return nil, fmt.Errorf("load balancers %v: %w", batch, ErrNotFound)
		}
		if err := loadChildren(db, pointers(lbs), configChildren); err != nil {
			return nil, err
		}
		for i := range lbs {
			out = append(out, &lbs[i])
		}
	}
	return out, nil
}

// liveBatch is how many load balancers LiveLoadBalancers reads at once.
const liveBatch = 1000

// LiveLoadBalancers calls fn for every load balancer not yet DELETED, in
// id order and in batches, with what the data plane needs of it. Each
// batch is read within the store's timeout (fn's own time does not count).
func (s *Store) LiveLoadBalancers(ctx context.Context, fn func([]LoadBalancer) error) error {
	var after uint32
	for {
		var batch []LoadBalancer
		db, cancel := s.boundedScan(ctx)
		err := db.Where("status <> ? AND id > ?", StatusDeleted, after).
			Order("id").Limit(liveBatch).Find(&batch).Error
		if err == nil {
			err = loadChildren(db, pointers(batch), configChildren)
		}
		cancel()
		if err != nil || len(batch) == 0 {
			return err
		}
		if err := fn(batch); err != nil {
			return err
		}
		if len(batch) < liveBatch {
			return nil
		}
		after = batch[len(batch)-1].ID
	}
}

// Applied names a load balancer change the data plane applied.
type Applied struct {
	ID       uint32
	Revision int64
	// Description, when set, becomes the status description of the load
	// balancer the change makes ACTIVE (what applying it did, e.g. that
	// the proxies drain the connections opened before it); else it is
	// cleared.
	Description string
}

// SetApplied records, in one transaction, that every client of their
// fleets runs these changes: BUILD and PENDING_UPDATE become ACTIVE,
// PENDING_DELETE becomes DELETED (and gives back its virtual IPs). A load
// balancer that has changed since (another revision) is left alone. It
// returns the ids whose status changed.
func (s *Store) SetApplied(ctx context.Context, applied []Applied) ([]uint32, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	lbs := make([]LoadBalancer, len(applied))
	for i, a := range applied {
		lbs[i] = LoadBalancer{ID: a.ID, Revision: a.Revision}
	}
	var changed []uint32
	err := db.Transaction(func(db *gorm.DB) error {
		var err error
		if changed, err = s.settle(db, lbs); err != nil {
			return err
		}
		return describeApplied(db, applied)
	})
	return changed, err
}

// describeApplied sets the status description of the load balancers the
// changes applied made ACTIVE, where the change says what applying it did.
func describeApplied(db *gorm.DB, applied []Applied) error {
	for _, a := range applied {
		if a.Description == "" {
			continue
		}
		if err := db.Model(&LoadBalancer{}).Where("id = ? AND revision = ? AND status = ?", a.ID, a.Revision, StatusActive).
			Update("status_description", a.Description).Error; err != nil {
			return err
		}
	}
	return nil
}

// SetRejected puts a load balancer in ERROR with the data plane's message,
// unless it has changed since revision (0: whatever its revision) or is
// being deleted. It reports whether the status changed. When it did, the
// configurations given (what each kind of data plane keeps running
// instead) are kept with it, in the same transaction, until it is applied
// again.
func (s *Store) SetRejected(ctx context.Context, id uint32, revision int64, message string, keep ...AcceptedConfig) (bool, error) {
	if len(message) > 4000 {
		message = message[:4000]
	}
	db, cancel := s.bounded(ctx)
	defer cancel()
	var changed bool
	err := db.Transaction(func(db *gorm.DB) error {
		q := db.Model(&LoadBalancer{}).
			Where("id = ? AND status NOT IN ?", id, []string{StatusDeleted, StatusPendingDelete})
		if revision != 0 {
			q = q.Where("revision = ?", revision)
		}
		res := q.Updates(map[string]any{"status": StatusError, "status_description": message, "updated_at": s.db.NowFunc()})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		changed = true
		if len(keep) == 0 {
			return nil
		}
		for i := range keep {
			keep[i].LoadBalancerID = id
			if keep[i].Config == nil {
				keep[i].Config = []byte{}
			}
		}
		return db.Clauses(clause.OnConflict{UpdateAll: true}).Create(&keep).Error
	})
	return changed, err
}

// verdictsLocked runs fn in a transaction holding the verdicts' lock,
// within the store's timeout: replicas recording their clients' verdicts
// and settling on them take turns, so of two recording at once the second
// sees the first's verdict (each alone could miss the other's and neither
// settle). Writers of load balancers are not locked out: settle moves a
// row only if it is still at the revision applied. A no-op lock on SQLite
// (one process).
func (s *Store) verdictsLocked(ctx context.Context, fn func(*gorm.DB) error) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := db.Exec("SELECT pg_advisory_xact_lock(?, 0)", verdictsLockSpace).Error; err != nil {
				return err
			}
		}
		return fn(db)
	})
}

// verdictsLockSpace is the first key of the verdicts' advisory lock.
const verdictsLockSpace = 0x6c627664 // "lbvd"
