package store

import (
	"context"
	"errors"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// What the data-plane publisher reads and reports back.

func withConfig(db *gorm.DB) *gorm.DB {
	return db.Preload("Nodes", orderByID).Preload("VirtualIPs", orderByID).
		Preload("AccessList", orderByID).Preload("Metadata", orderByID)
}

// ChangesSince lists the changes committed after revision since, oldest first.
func (s *Store) ChangesSince(ctx context.Context, since int64) ([]Change, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var out []Change
	err := db.Where("revision > ?", since).Order("revision, load_balancer_id").Find(&out).Error
	return out, err
}

// LoadBalancerByID loads any load balancer, whatever its account or status.
func (s *Store) LoadBalancerByID(ctx context.Context, id uint32) (*LoadBalancer, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var lb LoadBalancer
	err := withConfig(db).First(&lb, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &lb, err
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
		db, cancel := s.bounded(ctx)
		err := withConfig(db).Where("status <> ? AND id > ?", StatusDeleted, after).
			Order("id").Limit(liveBatch).Find(&batch).Error
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
	var changed []uint32
	err := s.writeLocked(ctx, func(db *gorm.DB) error {
		want := map[uint32]int64{}
		ids := make([]uint32, 0, len(applied))
		for _, a := range applied {
			want[a.ID] = a.Revision
			ids = append(ids, a.ID)
		}
		var lbs []LoadBalancer
		if err := db.Select("id", "status", "revision").Where("id IN ?", ids).Find(&lbs).Error; err != nil {
			return err
		}
		var current []LoadBalancer
		for _, lb := range lbs {
			if lb.Revision == want[lb.ID] {
				current = append(current, lb)
			}
		}
		var err error
		if changed, err = s.settle(db, current); err != nil {
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

// writeLocked runs fn in a transaction holding the writers' lock, within
// the store's timeout.
func (s *Store) writeLocked(ctx context.Context, fn func(*gorm.DB) error) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		if err := s.lockWriters(db); err != nil {
			return err
		}
		return fn(db)
	})
}

// lockWriters waits for running mutations on PostgreSQL (see Update).
func (s *Store) lockWriters(db *gorm.DB) error {
	if s.dialect != "postgres" {
		return nil
	}
	return db.Exec("SELECT 1 FROM revisions WHERE id = 1 FOR UPDATE").Error
}
