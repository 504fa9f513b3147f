package store

// Transaction vocabulary of the load balancer features that live in rows of
// their own (the access list). The features kept in the load balancer's own
// columns (throttle, persistence, logging, caching, error page) change with
// SaveLoadBalancer.

// AddNetworkItems appends items to lb's access list and marks lb changed.
// The items get their ids.
func (tx *Tx) AddNetworkItems(lb *LoadBalancer, items []NetworkItem) error {
	if len(items) == 0 {
		return nil
	}
	for i := range items {
		items[i].ID = 0
		items[i].LoadBalancerID = lb.ID
	}
	if err := tx.db.Create(&items).Error; err != nil {
		return err
	}
	lb.AccessList = append(lb.AccessList, items...)
	tx.touch(lb)
	return nil
}

// DeleteNetworkItems removes the access list items with these ids from lb
// and marks lb changed. Ids that are not lb's are ignored.
func (tx *Tx) DeleteNetworkItems(lb *LoadBalancer, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	if err := tx.db.Where("load_balancer_id = ? AND id IN ?", lb.ID, ids).Delete(&NetworkItem{}).Error; err != nil {
		return err
	}
	lb.AccessList = without(lb.AccessList, ids, func(n NetworkItem) uint32 { return n.ID })
	tx.touch(lb)
	return nil
}

// ClearAccessList removes every item of lb's access list and marks lb changed.
func (tx *Tx) ClearAccessList(lb *LoadBalancer) error {
	if err := tx.db.Where("load_balancer_id = ?", lb.ID).Delete(&NetworkItem{}).Error; err != nil {
		return err
	}
	lb.AccessList = nil
	tx.touch(lb)
	return nil
}
