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

// SetApplied records that every client of the load balancer's fleet runs
// its change at revision: BUILD and PENDING_UPDATE become ACTIVE,
// PENDING_DELETE becomes DELETED (and gives back its virtual IPs). It does
// nothing when the load balancer has changed since. It reports whether the
// status changed.
func (s *Store) SetApplied(ctx context.Context, id uint32, revision int64) (bool, error) {
	changed := false
	err := s.db.WithContext(ctx).Transaction(func(db *gorm.DB) error {
		if err := s.lockWriters(db); err != nil {
			return err
		}
		var lb LoadBalancer
		err := db.Select("id", "status", "revision").Where("id = ? AND revision = ?", id, revision).First(&lb).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.db.NowFunc()
		switch lb.Status {
		case StatusBuild, StatusPendingUpdate:
			changed = true
			return db.Model(&LoadBalancer{}).Where("id = ?", id).
				Updates(map[string]any{"status": StatusActive, "status_description": "", "updated_at": now}).Error
		case StatusPendingDelete:
			changed = true
			return s.finishDelete(db, []uint32{id}, now)
		}
		return nil
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
