package store

import (
	"context"
	"errors"
	"net/netip"
)

// What the control plane's resolver of node names reads and writes.

// NodeNames returns, for every node name (a node address that is not an IP
// address) of a load balancer that is not being deleted, the ids of the
// load balancers using it.
func (s *Store) NodeNames(ctx context.Context) (map[string][]uint32, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var rows []struct {
		Address        string
		LoadBalancerID uint32
	}
	err := db.Model(&Node{}).Distinct("nodes.address", "nodes.load_balancer_id").
		Joins("JOIN load_balancers ON load_balancers.id = nodes.load_balancer_id").
		Where("load_balancers.status NOT IN ?", []string{StatusDeleted, StatusPendingDelete}).
		Order("nodes.address").Order("nodes.load_balancer_id").
		Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := map[string][]uint32{}
	for _, r := range rows {
		if _, err := netip.ParseAddr(r.Address); err == nil {
			continue
		}
		out[r.Address] = append(out[r.Address], r.LoadBalancerID)
	}
	return out, nil
}

// TouchLoadBalancers records a change of the given load balancers (those
// not being deleted) without changing their status, so that the data plane
// republishes them: what a node name resolves to changed. It returns the
// revision, or 0 when none of them is live.
func (s *Store) TouchLoadBalancers(ctx context.Context, ids []uint32) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rev, err := s.Update(ctx, func(tx *Tx) error {
		var lbs []LoadBalancer
		err := tx.db.Select("id", "fleet").
			Where("id IN ? AND status NOT IN ?", ids, []string{StatusDeleted, StatusPendingDelete}).
			Find(&lbs).Error
		if err != nil {
			return err
		}
		if len(lbs) == 0 {
			return errUnchanged
		}
		live := make([]uint32, len(lbs))
		for i := range lbs {
			tx.touch(&lbs[i])
			live[i] = lbs[i].ID
		}
		return tx.lockRows(live)
	})
	if errors.Is(err, errUnchanged) {
		return 0, nil
	}
	return rev, err
}
