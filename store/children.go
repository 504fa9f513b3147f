package store

import (
	"database/sql"

	"gorm.io/gorm"
)

// What load balancers own is read here with one plain query per kind of
// part for a whole batch of load balancers (virtual IPs through their
// link table in one join), scanned without reflection: gorm's preloads
// cost a query per association and link table and most of a request's
// CPU time.

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
	if want.nodes {
		if err := loadNodes(db, ids, byID, want.nodeMeta); err != nil {
			return err
		}
	}
	if want.vips {
		err := eachRow(db, `SELECT l.load_balancer_id, v.id, v.account, v.address, v.type, v.ip_version, v.created_at, v.released_by
			FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
			WHERE l.load_balancer_id IN ? ORDER BY v.id`, ids, func(rows *sql.Rows) error {
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
		if err != nil {
			return err
		}
	}
	if want.accessList {
		err := eachRow(db, "SELECT id, load_balancer_id, address, type FROM network_items WHERE load_balancer_id IN ? ORDER BY id",
			ids, func(rows *sql.Rows) error {
				var n NetworkItem
				if err := rows.Scan(&n.ID, &n.LoadBalancerID, &n.Address, &n.Type); err != nil {
					return err
				}
				lb := byID[n.LoadBalancerID]
				lb.AccessList = append(lb.AccessList, n)
				return nil
			})
		if err != nil {
			return err
		}
	}
	if want.meta {
		err := eachRow(db, `SELECT id, load_balancer_id, "key", "value" FROM load_balancer_meta WHERE load_balancer_id IN ? ORDER BY id`,
			ids, func(rows *sql.Rows) error {
				var m LoadBalancerMeta
				if err := rows.Scan(&m.ID, &m.LoadBalancerID, &m.Key, &m.Value); err != nil {
					return err
				}
				lb := byID[m.LoadBalancerID]
				lb.Metadata = append(lb.Metadata, m)
				return nil
			})
		if err != nil {
			return err
		}
	}
	return nil
}

func loadNodes(db *gorm.DB, ids []uint32, byID map[uint32]*LoadBalancer, withMeta bool) error {
	err := eachRow(db, `SELECT id, load_balancer_id, address, port, "condition", type, weight, status, created_at, updated_at
		FROM nodes WHERE load_balancer_id IN ? ORDER BY id`, ids, func(rows *sql.Rows) error {
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
	if err != nil || !withMeta {
		return err
	}
	// Metadata goes to its node by position: nodes are few per load balancer.
	where := map[uint32]*Node{}
	for _, lb := range byID {
		for i := range lb.Nodes {
			where[lb.Nodes[i].ID] = &lb.Nodes[i]
		}
	}
	if len(where) == 0 {
		return nil
	}
	return eachRow(db, `SELECT id, node_id, "key", "value" FROM node_meta
		WHERE node_id IN (SELECT id FROM nodes WHERE load_balancer_id IN ?) ORDER BY id`, ids, func(rows *sql.Rows) error {
		var m NodeMeta
		if err := rows.Scan(&m.ID, &m.NodeID, &m.Key, &m.Value); err != nil {
			return err
		}
		if n := where[m.NodeID]; n != nil {
			n.Metadata = append(n.Metadata, m)
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
func eachRow(db *gorm.DB, query string, ids []uint32, scan func(*sql.Rows) error) error {
	rows, err := db.Raw(query, ids).Rows()
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
