package store

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// What the data-plane publisher reads and reports back.

// ChangesSince lists the changes committed after revision since, oldest first.
func (s *Store) ChangesSince(ctx context.Context, since int64) ([]Change, error) {
	db, cancel := s.boundedRead(ctx)
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
	db, cancel := s.boundedRead(ctx)
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
		db, cancel := s.boundedRead(ctx)
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
		changed, err = s.settle(db, lbs)
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
	db, cancel := s.bounded(ctx)
	defer cancel()
	q := db.Model(&LoadBalancer{}).
		Where("id = ? AND status NOT IN ?", id, []string{StatusDeleted, StatusPendingDelete})
	if revision != 0 {
		q = q.Where("revision = ?", revision)
	}
	res := q.Updates(map[string]any{"status": StatusError, "status_description": message, "updated_at": s.db.NowFunc()})
	return res.RowsAffected > 0, res.Error
}
