package store

import (
	"database/sql"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// What load balancers own is read here for a whole batch of load
// balancers at once, in at most three plain queries scanned without
// reflection: nodes; virtual IPs through their link table; and the access
// list, load balancer metadata and node metadata, which share one shape
// (id, owner, two strings), in one UNION ALL. gorm's preloads cost a query
// per association and link table, and most of a request's CPU time.

// childSet selects which parts loadChildren reads.
type childSet struct {
	nodes, nodeMeta, vips, accessList, meta bool
}

var (
	allChildren    = childSet{nodes: true, nodeMeta: true, vips: true, accessList: true, meta: true}
	configChildren = childSet{nodes: true, vips: true, accessList: true, meta: true}
)

// loadChildren fills the parts of lbs that want selects, in id order.
func loadChildren(db *gorm.DB, lbs []*LoadBalancer, want childSet) error {
	if len(lbs) == 0 {
		return nil
	}
	ids := make([]uint32, len(lbs))
	byID := make(map[uint32]*LoadBalancer, len(lbs))
	for i, lb := range lbs {
		ids[i] = lb.ID
		byID[lb.ID] = lb
		lb.Nodes, lb.VirtualIPs, lb.AccessList, lb.Metadata = nil, nil, nil, nil
	}
	nodes := map[uint32]*Node{}
	if want.nodes {
		if err := loadNodes(db, ids, byID); err != nil {
			return err
		}
		for _, lb := range lbs {
			for i := range lb.Nodes {
				nodes[lb.Nodes[i].ID] = &lb.Nodes[i]
			}
		}
	}
	if want.vips {
		if err := loadVirtualIPs(db, ids, byID); err != nil {
			return err
		}
	}
	want.nodeMeta = want.nodeMeta && len(nodes) > 0
	return loadItems(db, ids, byID, nodes, want)
}

func loadNodes(db *gorm.DB, ids []uint32, byID map[uint32]*LoadBalancer) error {
	return eachRow(db, `SELECT id, load_balancer_id, address, port, "condition", type, weight, status, created_at, updated_at
		FROM nodes WHERE load_balancer_id IN ? ORDER BY id`, []any{ids}, func(rows *sql.Rows) error {
		var n Node
		var created, updated sql.NullTime
		if err := rows.Scan(&n.ID, &n.LoadBalancerID, &n.Address, &n.Port, &n.Condition, &n.Type, &n.Weight, &n.Status, &created, &updated); err != nil {
			return err
		}
		n.CreatedAt, n.UpdatedAt = created.Time, updated.Time
		lb := byID[n.LoadBalancerID]
		lb.Nodes = append(lb.Nodes, n)
		return nil
	})
}

func loadVirtualIPs(db *gorm.DB, ids []uint32, byID map[uint32]*LoadBalancer) error {
	return eachRow(db, `SELECT l.load_balancer_id, v.id, v.account, v.address, v.type, v.ip_version, v.created_at, v.released_by
		FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
		WHERE l.load_balancer_id IN ? ORDER BY v.id`, []any{ids}, func(rows *sql.Rows) error {
		var lbID uint32
		var v VirtualIP
		var created sql.NullTime
		var released sql.NullInt64
		if err := rows.Scan(&lbID, &v.ID, &v.Account, &v.Address, &v.Type, &v.IPVersion, &created, &released); err != nil {
			return err
		}
		v.CreatedAt = created.Time
		if released.Valid {
			r := uint32(released.Int64)
			v.ReleasedBy = &r
		}
		lb := byID[lbID]
		lb.VirtualIPs = append(lb.VirtualIPs, v)
		return nil
	})
}

// The kinds of rows of loadItems' query.
const (
	kindAccess   = "a"
	kindMeta     = "m"
	kindNodeMeta = "n"
)

// loadItems reads the access lists and metadata wanted in one query.
func loadItems(db *gorm.DB, ids []uint32, byID map[uint32]*LoadBalancer, nodes map[uint32]*Node, want childSet) error {
	var parts []string
	var args []any
	if want.accessList {
		parts = append(parts, `SELECT '`+kindAccess+`' AS kind, id, load_balancer_id AS owner, address AS a, type AS b FROM network_items WHERE load_balancer_id IN ?`)
		args = append(args, ids)
	}
	if want.meta {
		parts = append(parts, `SELECT '`+kindMeta+`', id, load_balancer_id, "key", "value" FROM load_balancer_meta WHERE load_balancer_id IN ?`)
		args = append(args, ids)
	}
	if want.nodeMeta {
		parts = append(parts, `SELECT '`+kindNodeMeta+`', id, node_id, "key", "value" FROM node_meta
			WHERE node_id IN (SELECT id FROM nodes WHERE load_balancer_id IN ?)`)
		args = append(args, ids)
	}
	if len(parts) == 0 {
		return nil
	}
	return eachRow(db, strings.Join(parts, " UNION ALL ")+" ORDER BY 1, 2", args, func(rows *sql.Rows) error {
		var kind, a, b string
		var id, owner uint32
		if err := rows.Scan(&kind, &id, &owner, &a, &b); err != nil {
			return err
		}
		switch kind {
		case kindAccess:
			lb := byID[owner]
			lb.AccessList = append(lb.AccessList, NetworkItem{ID: id, LoadBalancerID: owner, Address: a, Type: b})
		case kindMeta:
			lb := byID[owner]
			lb.Metadata = append(lb.Metadata, LoadBalancerMeta{ID: id, LoadBalancerID: owner, Key: a, Value: b})
		case kindNodeMeta:
			if n := nodes[owner]; n != nil {
				n.Metadata = append(n.Metadata, NodeMeta{ID: id, NodeID: owner, Key: a, Value: b})
			}
		default:
			return fmt.Errorf("store: unknown item kind %q", kind)
		}
		return nil
	})
}

func pointers(lbs []LoadBalancer) []*LoadBalancer {
	out := make([]*LoadBalancer, len(lbs))
	for i := range lbs {
		out[i] = &lbs[i]
	}
	return out
}

// eachRow runs a query and calls scan for each row.
func eachRow(db *gorm.DB, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.Raw(query, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
