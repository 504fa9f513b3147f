package store

// Metadata items of load balancers and nodes are the client's own notes:
// they are not data-plane configuration, so these methods change neither
// the load balancer's status nor its revision, and record no Change.

// AddLoadBalancerMeta inserts metadata items into lb.
func (tx *Tx) AddLoadBalancerMeta(lb *LoadBalancer, items []LoadBalancerMeta) error {
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
	lb.Metadata = append(lb.Metadata, items...)
	return nil
}

// SaveLoadBalancerMeta writes a load balancer metadata item's value (its
// key is immutable).
func (tx *Tx) SaveLoadBalancerMeta(m *LoadBalancerMeta) error {
	return tx.db.Model(&LoadBalancerMeta{}).
		Where("id = ? AND load_balancer_id = ?", m.ID, m.LoadBalancerID).
		Update("value", m.Value).Error
}

// DeleteLoadBalancerMeta removes metadata items from lb.
func (tx *Tx) DeleteLoadBalancerMeta(lb *LoadBalancer, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	if err := tx.db.Where("load_balancer_id = ? AND id IN ?", lb.ID, ids).Delete(&LoadBalancerMeta{}).Error; err != nil {
		return err
	}
	lb.Metadata = without(lb.Metadata, ids, func(m LoadBalancerMeta) uint32 { return m.ID })
	return nil
}

// AddNodeMeta inserts metadata items into node n.
func (tx *Tx) AddNodeMeta(n *Node, items []NodeMeta) error {
	if len(items) == 0 {
		return nil
	}
	for i := range items {
		items[i].ID = 0
		items[i].NodeID = n.ID
	}
	if err := tx.db.Create(&items).Error; err != nil {
		return err
	}
	n.Metadata = append(n.Metadata, items...)
	return nil
}

// SaveNodeMeta writes a node metadata item's value (its key is immutable).
func (tx *Tx) SaveNodeMeta(m *NodeMeta) error {
	return tx.db.Model(&NodeMeta{}).
		Where("id = ? AND node_id = ?", m.ID, m.NodeID).
		Update("value", m.Value).Error
}

// DeleteNodeMeta removes metadata items from node n.
func (tx *Tx) DeleteNodeMeta(n *Node, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	if err := tx.db.Where("node_id = ? AND id IN ?", n.ID, ids).Delete(&NodeMeta{}).Error; err != nil {
		return err
	}
	n.Metadata = without(n.Metadata, ids, func(m NodeMeta) uint32 { return m.ID })
	return nil
}
