package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
)

func loadBalancer(db *gorm.DB, account string, id uint32) (*LoadBalancer, error) {
	var lb LoadBalancer
	err := db.Preload("Nodes", orderByID).Preload("Nodes.Metadata", orderByID).
		Preload("VirtualIPs", orderByID).Preload("AccessList", orderByID).Preload("Metadata", orderByID).
		Where("account = ? AND id = ? AND status <> ?", account, id, StatusDeleted).
		First(&lb).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &lb, nil
}

func orderByID(db *gorm.DB) *gorm.DB { return db.Order("id") }

// GetLoadBalancer returns a live load balancer of the account with
// everything it owns, or ErrNotFound.
func (s *Store) GetLoadBalancer(ctx context.Context, account string, id uint32) (*LoadBalancer, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return loadBalancer(db, account, id)
}

// ListFilter selects load balancers of one account.
type ListFilter struct {
	Account string
	// Status selects one status; empty means every status but DELETED.
	Status       string
	Name         string
	NodeAddress  string
	ChangesSince time.Time
	// Marker is the id the page starts with; 0 means from the start.
	Marker uint32
	Offset int
	// Limit is the page size; 0 means no limit.
	Limit int
}

// ListedLoadBalancer is a load balancer as lists show it.
type ListedLoadBalancer struct {
	LoadBalancer
	NodeCount uint32
}

// ListLoadBalancers returns one page of the account's load balancers in id
// order, with their virtual IPs and node counts.
func (s *Store) ListLoadBalancers(ctx context.Context, f ListFilter) ([]ListedLoadBalancer, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	q := db.Model(&LoadBalancer{}).Where("account = ?", f.Account)
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	} else {
		q = q.Where("status <> ?", StatusDeleted)
	}
	switch {
	case f.NodeAddress != "":
		q = q.Where("id IN (?)", db.Model(&Node{}).Select("load_balancer_id").Where("address = ?", f.NodeAddress))
	case f.Name != "":
		q = q.Where("name = ?", f.Name)
	}
	if !f.ChangesSince.IsZero() {
		q = q.Where("updated_at >= ?", f.ChangesSince.UTC())
	}
	if f.Marker > 0 {
		q = q.Where("id >= ?", f.Marker)
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit) // gorm renders Limit(0) as LIMIT 0
	}
	var lbs []LoadBalancer
	err := q.Preload("VirtualIPs", orderByID).Order("id").Offset(f.Offset).Find(&lbs).Error
	if err != nil {
		return nil, err
	}
	counts, err := s.nodeCounts(db, lbs)
	if err != nil {
		return nil, err
	}
	out := make([]ListedLoadBalancer, len(lbs))
	for i, lb := range lbs {
		out[i] = ListedLoadBalancer{LoadBalancer: lb, NodeCount: counts[lb.ID]}
	}
	return out, nil
}

func (s *Store) nodeCounts(db *gorm.DB, lbs []LoadBalancer) (map[uint32]uint32, error) {
	counts := map[uint32]uint32{}
	if len(lbs) == 0 {
		return counts, nil
	}
	ids := make([]uint32, len(lbs))
	for i, lb := range lbs {
		ids[i] = lb.ID
	}
	var rows []struct {
		LoadBalancerID uint32
		N              uint32
	}
	err := db.Model(&Node{}).Select("load_balancer_id, count(*) AS n").
		Where("load_balancer_id IN ?", ids).Group("load_balancer_id").Scan(&rows).Error
	for _, r := range rows {
		counts[r.LoadBalancerID] = r.N
	}
	return counts, err
}

// MarkApplied records that the data plane of a fleet runs every change up
// to and including revision upTo: load balancers waiting for such a change
// become ACTIVE, and those being deleted become DELETED and give back
// their virtual IPs. It returns the ids whose status changed.
func (s *Store) MarkApplied(ctx context.Context, fleet string, upTo int64) ([]uint32, error) {
	var changed []uint32
	// Under the writers' lock (see Update): otherwise an Update committing
	// between the SELECT and the UPDATEs below has its newer revision
	// marked as applied.
	err := s.writeLocked(ctx, func(db *gorm.DB) error {
		var waiting []LoadBalancer
		err := db.Select("id", "status").
			Where("fleet = ? AND revision <= ? AND status IN ?", fleet, upTo,
				[]string{StatusBuild, StatusPendingUpdate, StatusPendingDelete}).
			Order("id").Find(&waiting).Error
		if err != nil || len(waiting) == 0 {
			return err
		}
		changed, err = s.settle(db, waiting)
		return err
	})
	return changed, err
}

// settle moves waiting load balancers on: BUILD and PENDING_UPDATE to
// ACTIVE, PENDING_DELETE to DELETED. It returns the ids it moved.
func (s *Store) settle(db *gorm.DB, lbs []LoadBalancer) ([]uint32, error) {
	var active, deleted []uint32
	for _, lb := range lbs {
		switch lb.Status {
		case StatusBuild, StatusPendingUpdate:
			active = append(active, lb.ID)
		case StatusPendingDelete:
			deleted = append(deleted, lb.ID)
		}
	}
	now := s.db.NowFunc()
	if len(active) > 0 {
		if err := db.Model(&LoadBalancer{}).Where("id IN ?", active).
			Updates(map[string]any{"status": StatusActive, "status_description": "", "updated_at": now}).Error; err != nil {
			return nil, err
		}
	}
	if len(deleted) > 0 {
		if err := s.finishDelete(db, deleted, now); err != nil {
			return nil, err
		}
		// Gone from the data plane: no replica's verdict matters any more.
		if err := db.Where("load_balancer_id IN ?", deleted).Delete(&ReplicaVerdict{}).Error; err != nil {
			return nil, err
		}
	}
	// Applied again: nothing refused is kept running in its place.
	if ids := append(active, deleted...); len(ids) > 0 {
		if err := db.Where("load_balancer_id IN ?", ids).Delete(&AcceptedConfig{}).Error; err != nil {
			return nil, err
		}
	}
	// Addresses detached by the changes just applied are free now.
	if err := db.Exec(`DELETE FROM virtual_ips WHERE NOT EXISTS
		(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`).Error; err != nil {
		return nil, err
	}
	return append(active, deleted...), nil
}

func (s *Store) finishDelete(db *gorm.DB, ids []uint32, now time.Time) error {
	var vipIDs []uint32
	if err := db.Table("load_balancer_virtual_ips").Where("load_balancer_id IN ?", ids).
		Pluck("virtual_ip_id", &vipIDs).Error; err != nil {
		return err
	}
	if err := db.Exec("DELETE FROM load_balancer_virtual_ips WHERE load_balancer_id IN ?", ids).Error; err != nil {
		return err
	}
	if len(vipIDs) > 0 {
		tx := &Tx{db: db, store: s}
		if err := tx.releaseUnused(vipIDs); err != nil {
			return err
		}
	}
	return db.Model(&LoadBalancer{}).Where("id IN ?", ids).
		Updates(map[string]any{"status": StatusDeleted, "updated_at": now, "deleted_at": now}).Error
}

// Fleets lists the fleets that have load balancers waiting for the data plane.
func (s *Store) Fleets(ctx context.Context) ([]string, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var fleets []string
	err := db.Model(&LoadBalancer{}).Distinct("fleet").
		Where("status IN ?", []string{StatusBuild, StatusPendingUpdate, StatusPendingDelete}).
		Order("fleet").Pluck("fleet", &fleets).Error
	return fleets, err
}
