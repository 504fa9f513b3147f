package store

import (
	"errors"
	"slices"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Tx is one mutation in progress. Its methods are the vocabulary the API
// layer composes its rules from; all of them run in the same transaction.
type Tx struct {
	db    *gorm.DB
	store *Store
	// touched are the load balancers changed in this transaction, by id;
	// each is locked (written) before the revision is taken.
	touched map[uint32]*LoadBalancer
	// created are those of them it created: they have no usage event yet.
	created map[uint32]bool
}

// touch records that lb changed in this transaction. Its row must be
// written in the transaction (SaveLoadBalancer, or lockRows) before the
// commit takes the revision: holding the revision row, a writer must not
// wait for a load balancer's row.
func (tx *Tx) touch(lb *LoadBalancer) {
	tx.touched[lb.ID] = lb
}

// LockAccount serialises this transaction with every other one that locks
// the account, until the commit: mutations of an account read, check and
// write its load balancers as if alone. (A no-op on SQLite, which has one
// writer.)
func (tx *Tx) LockAccount(account string) error {
	if tx.store.dialect != "postgres" {
		return nil
	}
	return tx.db.Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", accountLockSpace, account).Error
}

// accountLockSpace is the first key of the accounts' advisory locks.
const accountLockSpace = 0x6c626173 // "lbas"

// commitRevision takes the next revision for this transaction, stamps it
// on the touched load balancers and records a Change for each: on
// PostgreSQL in one statement (with the NOTIFY the other replicas hear at
// commit), so the revision row is held for one round trip and the commit.
func (tx *Tx) commitRevision() (int64, error) {
	ids := make([]uint32, 0, len(tx.touched))
	for id := range tx.touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var rev int64
	if tx.store.dialect == "postgres" {
		if len(ids) == 0 {
			ids = append(ids, 0) // no load balancer has id 0
		}
		err := tx.db.Raw(`WITH r AS (UPDATE revisions SET value = value + 1 WHERE id = 1 RETURNING value),
			u AS (UPDATE load_balancers SET revision = (SELECT value FROM r) WHERE id IN ? RETURNING id, fleet),
			c AS (INSERT INTO changes (revision, load_balancer_id, fleet) SELECT (SELECT value FROM r), id, fleet FROM u)
			SELECT r.value FROM r CROSS JOIN LATERAL (SELECT pg_notify(?, r.value::text)) AS n`,
			ids, notifyChannel).Scan(&rev).Error
		return rev, err
	}
	if err := tx.db.Raw("UPDATE revisions SET value = value + 1 WHERE id = 1 RETURNING value").Scan(&rev).Error; err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return rev, nil
	}
	if err := tx.db.Model(&LoadBalancer{}).Where("id IN ?", ids).UpdateColumn("revision", rev).Error; err != nil {
		return 0, err
	}
	changes := make([]Change, len(ids))
	for i, id := range ids {
		changes[i] = Change{Revision: rev, LoadBalancerID: id, Fleet: tx.touched[id].Fleet}
	}
	return rev, tx.db.Create(&changes).Error
}

// lockRows writes (so locks) the rows of load balancers to touch.
func (tx *Tx) lockRows(ids []uint32) error {
	return tx.db.Exec("UPDATE load_balancers SET revision = revision WHERE id IN ?", ids).Error
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
	if err := tx.db.Omit("VirtualIPs", "Nodes.Metadata").Create(lb).Error; err != nil {
		return err
	}
	for i := range lb.Nodes {
		if err := tx.createNodeMeta(&lb.Nodes[i]); err != nil {
			return err
		}
	}
	if err := tx.linkVirtualIPs(lb.ID, lb.VirtualIPs...); err != nil {
		return err
	}
	tx.touch(lb)
	if tx.created == nil {
		tx.created = map[uint32]bool{}
	}
	tx.created[lb.ID] = true
	return nil
}

// SaveLoadBalancer writes lb's own columns (not what it owns) and marks it changed.
func (tx *Tx) SaveLoadBalancer(lb *LoadBalancer) error {
	tx.touch(lb)
	return tx.db.Omit(clause.Associations).Save(lb).Error
}

// AddNodes inserts nodes (with their metadata) into lb and marks lb
// changed; the caller saves lb (a change moves its status).
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
	tx.touch(lb)
	return nil
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

// AttachVirtualIP links an existing virtual IP to lb and marks lb
// changed; the caller saves lb (a change moves its status).
func (tx *Tx) AttachVirtualIP(lb *LoadBalancer, vip *VirtualIP) error {
	if err := tx.linkVirtualIPs(lb.ID, *vip); err != nil {
		return err
	}
	lb.VirtualIPs = append(lb.VirtualIPs, *vip)
	tx.touch(lb)
	delete(tx.created, lb.ID) // its usage event counts its addresses in the database
	return nil
}

// linkVirtualIPs links vips to load balancer lbID, in one statement.
func (tx *Tx) linkVirtualIPs(lbID uint32, vips ...VirtualIP) error {
	if len(vips) == 0 {
		return nil
	}
	values := make([]string, len(vips))
	args := make([]any, 0, 2*len(vips))
	for i, vip := range vips {
		values[i] = "(?, ?)"
		args = append(args, lbID, vip.ID)
	}
	return tx.db.Exec("INSERT INTO load_balancer_virtual_ips (load_balancer_id, virtual_ip_id) VALUES "+
		strings.Join(values, ", "), args...).Error
}

// DetachVirtualIPs unlinks virtual IPs from lb. An address no load
// balancer uses any more goes back to the pool when the change is applied
// (see settle), not before: a proxy may still listen on it until then.
func (tx *Tx) DetachVirtualIPs(lb *LoadBalancer, ids []uint32) error {
	if err := tx.db.Exec("DELETE FROM load_balancer_virtual_ips WHERE load_balancer_id = ? AND virtual_ip_id IN ?", lb.ID, ids).Error; err != nil {
		return err
	}
	if err := tx.db.Exec(`UPDATE virtual_ips SET released_by = ? WHERE id IN ? AND NOT EXISTS
		(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`, lb.ID, ids).Error; err != nil {
		return err
	}
	lb.VirtualIPs = without(lb.VirtualIPs, ids, func(v VirtualIP) uint32 { return v.ID })
	delete(tx.created, lb.ID) // its usage event counts its addresses in the database
	return nil
}

// releaseUnused deletes the virtual IPs among ids that no load balancer links to.
func (tx *Tx) releaseUnused(ids []uint32) error {
	return tx.db.Exec(`DELETE FROM virtual_ips WHERE id IN ? AND NOT EXISTS
		(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`, ids).Error
}
