package store

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// What the data-plane publisher reads and reports back.

func withConfig(db *gorm.DB) *gorm.DB {
	return db.Preload("Nodes", orderByID).Preload("VirtualIPs", orderByID).
		Preload("AccessList", orderByID).Preload("Metadata", orderByID)
}

// ChangesSince lists the changes committed after revision since, oldest first.
func (s *Store) ChangesSince(ctx context.Context, since int64) ([]Change, error) {
	var out []Change
	err := s.db.WithContext(ctx).Where("revision > ?", since).Order("revision, load_balancer_id").Find(&out).Error
	return out, err
}

// LoadBalancerByID loads any load balancer, whatever its account or status.
func (s *Store) LoadBalancerByID(ctx context.Context, id uint32) (*LoadBalancer, error) {
	var lb LoadBalancer
	err := withConfig(s.db.WithContext(ctx)).First(&lb, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &lb, err
}

// LiveLoadBalancers calls fn for every load balancer not yet DELETED, in
// id order and in batches, with what the data plane needs of it.
func (s *Store) LiveLoadBalancers(ctx context.Context, fn func([]LoadBalancer) error) error {
	var batch []LoadBalancer
	return withConfig(s.db.WithContext(ctx)).Where("status <> ?", StatusDeleted).Order("id").
		FindInBatches(&batch, 1000, func(*gorm.DB, int) error { return fn(batch) }).Error
}

// Applied names a load balancer change the data plane applied.
type Applied struct {
	ID       uint32
	Revision int64
}

// SetApplied records, in one transaction, that every client of their
// fleets runs these changes: BUILD and PENDING_UPDATE become ACTIVE,
// PENDING_DELETE becomes DELETED (and gives back its virtual IPs). A load
// balancer that has changed since (another revision) is left alone. It
// returns the ids whose status changed.
func (s *Store) SetApplied(ctx context.Context, applied []Applied) ([]uint32, error) {
	var changed []uint32
	err := s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		if err := s.lockWriters(db); err != nil {
			return err
		}
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
		changed, err = s.settle(db, current)
		return err
	})
	return changed, err
}

// SetRejected puts a load balancer in ERROR with the data plane's message,
// unless it has changed since revision (0: whatever its revision) or is
// being deleted. It reports whether the status changed.
func (s *Store) SetRejected(ctx context.Context, id uint32, revision int64, message string) (bool, error) {
	if len(message) > 4000 {
		message = message[:4000]
	}
	q := s.db.WithContext(ctx).Model(&LoadBalancer{}).
		Where("id = ? AND status NOT IN ?", id, []string{StatusDeleted, StatusPendingDelete})
	if revision != 0 {
		q = q.Where("revision = ?", revision)
	}
	res := q.Updates(map[string]any{"status": StatusError, "status_description": message, "updated_at": s.db.NowFunc()})
	return res.RowsAffected > 0, res.Error
}

// lockWriters waits for running mutations on PostgreSQL (see Update).
func (s *Store) lockWriters(db *gorm.DB) error {
	if s.dialect != "postgres" {
		return nil
	}
	return db.Exec("SELECT 1 FROM revisions WHERE id = 1 FOR UPDATE").Error
}
