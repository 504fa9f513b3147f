package store

import (
	"errors"
	"sort"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Tx is one mutation in progress. Its methods are the vocabulary the API
// layer composes its rules from; all of them run in the same transaction.
type Tx struct {
	db      *gorm.DB
	store   *Store
	rev     int64
	touched map[uint32]string // load balancer id -> fleet
}

// Revision is the revision this transaction commits as.
func (tx *Tx) Revision() int64 { return tx.rev }

// touch records that lb changed in this revision.
func (tx *Tx) touch(lb *LoadBalancer) {
	lb.Revision = tx.rev
	tx.touched[lb.ID] = lb.Fleet
}

func (tx *Tx) recordChanges() error {
	if len(tx.touched) == 0 {
		return nil
	}
	ids := make([]uint32, 0, len(tx.touched))
	for id := range tx.touched {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	changes := make([]Change, len(ids))
	for i, id := range ids {
		changes[i] = Change{Revision: tx.rev, LoadBalancerID: id, Fleet: tx.touched[id]}
	}
	return tx.db.Create(&changes).Error
}

// LoadBalancer loads a live (not deleted) load balancer of the account with
// everything it owns.
func (tx *Tx) LoadBalancer(account string, id uint32) (*LoadBalancer, error) {
	return loadBalancer(tx.db, account, id)
}

// CountLoadBalancers counts the account's load balancers that are not deleted.
func (tx *Tx) CountLoadBalancers(account string) (int64, error) {
	var n int64
	err := tx.db.Model(&LoadBalancer{}).Where("account = ? AND status <> ?", account, StatusDeleted).Count(&n).Error
	return n, err
}

// CreateLoadBalancer inserts lb with its nodes, access list and metadata,
// and links it to lb.VirtualIPs, which must exist already.
func (tx *Tx) CreateLoadBalancer(lb *LoadBalancer) error {
	lb.Revision = tx.rev
	if err := tx.db.Omit("VirtualIPs", "Nodes.Metadata").Create(lb).Error; err != nil {
		return err
	}
	for i := range lb.Nodes {
		if err := tx.createNodeMeta(&lb.Nodes[i]); err != nil {
			return err
		}
	}
	for _, vip := range lb.VirtualIPs {
		if err := tx.linkVirtualIP(lb.ID, vip.ID); err != nil {
			return err
		}
	}
	tx.touch(lb)
	return nil
}

// SaveLoadBalancer writes lb's own columns (not what it owns) and marks it changed.
func (tx *Tx) SaveLoadBalancer(lb *LoadBalancer) error {
	tx.touch(lb)
	return tx.db.Omit(clause.Associations).Save(lb).Error
}

// AddNodes inserts nodes (with their metadata) into lb and marks lb changed.
func (tx *Tx) AddNodes(lb *LoadBalancer, nodes []Node) error {
	for i := range nodes {
		nodes[i].LoadBalancerID = lb.ID
		if err := tx.db.Omit("Metadata").Create(&nodes[i]).Error; err != nil {
			return err
		}
		if err := tx.createNodeMeta(&nodes[i]); err != nil {
			return err
		}
	}
	lb.Nodes = append(lb.Nodes, nodes...)
	return tx.SaveLoadBalancer(lb)
}

func (tx *Tx) createNodeMeta(n *Node) error {
	if len(n.Metadata) == 0 {
		return nil
	}
	for i := range n.Metadata {
		n.Metadata[i].NodeID = n.ID
	}
	return tx.db.Create(&n.Metadata).Error
}

// SaveNode writes a node's own columns.
func (tx *Tx) SaveNode(n *Node) error {
	return tx.db.Omit(clause.Associations).Save(n).Error
}

// DeleteNodes removes nodes (and their metadata) from lb.
func (tx *Tx) DeleteNodes(lb *LoadBalancer, ids []uint32) error {
	if err := tx.db.Where("node_id IN ?", ids).Delete(&NodeMeta{}).Error; err != nil {
		return err
	}
	if err := tx.db.Where("load_balancer_id = ? AND id IN ?", lb.ID, ids).Delete(&Node{}).Error; err != nil {
		return err
	}
	lb.Nodes = without(lb.Nodes, ids, func(n Node) uint32 { return n.ID })
	return nil
}

// without returns items less those whose id is in ids.
func without[T any](items []T, ids []uint32, id func(T) uint32) []T {
	gone := map[uint32]bool{}
	for _, i := range ids {
		gone[i] = true
	}
	kept := items[:0]
	for _, item := range items {
		if !gone[id(item)] {
			kept = append(kept, item)
		}
	}
	return kept
}

// VirtualIP returns one of the account's virtual IPs.
func (tx *Tx) VirtualIP(account string, id uint32) (*VirtualIP, error) {
	var vip VirtualIP
	err := tx.db.Where("account = ? AND id = ?", account, id).First(&vip).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &vip, err
}

// Listener is a live load balancer listening on a virtual IP.
type Listener struct {
	LoadBalancerID uint32
	Port           uint32
	Protocol       string
	HTTPSRedirect  bool `gorm:"column:https_redirect"`
}

// Listeners returns the live load balancers that use a virtual IP.
func (tx *Tx) Listeners(vipID uint32) ([]Listener, error) {
	var out []Listener
	err := tx.db.Table("load_balancers AS lb").
		Select("lb.id AS load_balancer_id, lb.port, lb.protocol, lb.https_redirect").
		Joins("JOIN load_balancer_virtual_ips AS l ON l.load_balancer_id = lb.id").
		Where("l.virtual_ip_id = ? AND lb.status <> ?", vipID, StatusDeleted).
		Order("lb.id").Scan(&out).Error
	return out, err
}

// AttachVirtualIP links an existing virtual IP to lb.
func (tx *Tx) AttachVirtualIP(lb *LoadBalancer, vip *VirtualIP) error {
	if err := tx.linkVirtualIP(lb.ID, vip.ID); err != nil {
		return err
	}
	lb.VirtualIPs = append(lb.VirtualIPs, *vip)
	return tx.SaveLoadBalancer(lb)
}

func (tx *Tx) linkVirtualIP(lbID, vipID uint32) error {
	return tx.db.Exec("INSERT INTO load_balancer_virtual_ips (load_balancer_id, virtual_ip_id) VALUES (?, ?)", lbID, vipID).Error
}

// DetachVirtualIPs unlinks virtual IPs from lb. An address no load
// balancer uses any more goes back to the pool when the change is applied
// (see settle), not before: a proxy may still listen on it until then.
func (tx *Tx) DetachVirtualIPs(lb *LoadBalancer, ids []uint32) error {
	if err := tx.db.Exec("DELETE FROM load_balancer_virtual_ips WHERE load_balancer_id = ? AND virtual_ip_id IN ?", lb.ID, ids).Error; err != nil {
		return err
	}
	lb.VirtualIPs = without(lb.VirtualIPs, ids, func(v VirtualIP) uint32 { return v.ID })
	return nil
}

// releaseUnused deletes the virtual IPs among ids that no load balancer links to.
func (tx *Tx) releaseUnused(ids []uint32) error {
	return tx.db.Exec(`DELETE FROM virtual_ips WHERE id IN ? AND NOT EXISTS
		(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`, ids).Error
}
