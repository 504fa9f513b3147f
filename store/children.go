package store

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// What load balancers own is read here for a whole batch of load
// balancers at once, in one plain query scanned without reflection: a
// UNION ALL of their nodes, virtual IPs (through their link table),
// access lists, metadata and node metadata, as rows of one shape (a kind,
// an id, the owner's id, then strings, numbers and times that each kind
// uses as it needs). gorm's preloads cost a query per association and
// link table, and most of a request's CPU time; one query is one round
// trip to PostgreSQL.

// childSet selects which parts loadChildren reads.
type childSet struct {
	nodes, nodeMeta, vips, accessList, meta bool
}

var (
	allChildren    = childSet{nodes: true, nodeMeta: true, vips: true, accessList: true, meta: true}
	configChildren = childSet{nodes: true, vips: true, accessList: true, meta: true}
)

// The kinds of rows of loadChildren's query, in the order they come.
const (
	kindNode = iota + 1
	kindVIP
	kindAccess
	kindMeta
	kindNodeMeta
)

// childParts are the parts of loadChildren's query; each selects the rows
// of the owners in $IDS (the load balancers' ids, $1 to $n). The typed
// columns (numbers and times) are those of the first parts: PostgreSQL
// settles the type of a UNION's column pairwise from the left, so a column
// of NULLs must not come before its typed values.
var childParts = []struct {
	kind  int
	query string
	want  func(childSet) bool
}{
	{kindNode, `SELECT 1 AS kind, id, load_balancer_id AS owner, address AS s1, "condition" AS s2, type AS s3, status AS s4,
		port AS n1, weight AS n2, created_at AS t1, updated_at AS t2 FROM nodes WHERE load_balancer_id IN ($IDS)`,
		func(w childSet) bool { return w.nodes }},
	{kindVIP, `SELECT 2, v.id, l.load_balancer_id, v.address, v.type, v.ip_version, v.account, v.released_by, NULL, v.created_at, NULL
		FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id WHERE l.load_balancer_id IN ($IDS)`,
		func(w childSet) bool { return w.vips }},
	{kindAccess, `SELECT 3, id, load_balancer_id, address, type, NULL, NULL, NULL, NULL, NULL, NULL FROM network_items WHERE load_balancer_id IN ($IDS)`,
		func(w childSet) bool { return w.accessList }},
	{kindMeta, `SELECT 4, id, load_balancer_id, "key", "value", NULL, NULL, NULL, NULL, NULL, NULL FROM load_balancer_meta WHERE load_balancer_id IN ($IDS)`,
		func(w childSet) bool { return w.meta }},
	{kindNodeMeta, `SELECT 5, id, node_id, "key", "value", NULL, NULL, NULL, NULL, NULL, NULL FROM node_meta
		WHERE node_id IN (SELECT id FROM nodes WHERE load_balancer_id IN ($IDS))`,
		func(w childSet) bool { return w.nodeMeta }},
}

// queryTexts keeps the text of the plain queries built for a number of
// ids (up to keptQueryIDs ids), by a key naming the query and the number:
// building it is most of what gorm spent on such a query.
var queryTexts sync.Map // key → string

const keptQueryIDs = 128

// queryText returns the text build writes for key, a query of n ids, from
// queryTexts when it is kept there.
func queryText(key any, n int, build func() string) string {
	if q, ok := queryTexts.Load(key); ok {
		return q.(string)
	}
	q := build()
	if n <= keptQueryIDs {
		queryTexts.Store(key, q)
	}
	return q
}

type childQueryKey struct {
	want childSet
	n    int
}

// childQuery is the query of the parts want selects for n owners, or ""
// when want selects none. The ids are parameters $1 to $n, which every
// part refers to. (PostgreSQL numbers $k parameters by k; SQLite, for
// which $k is a name, numbers them in the order they first appear, so a
// query written for both must bring in $1 to $n in that order:
// TestPlaceholdersInOrder.)
func childQuery(want childSet, n int) string {
	return queryText(childQueryKey{want, n}, n, func() string {
		ids := placeholders(n)
		var parts []string
		for _, p := range childParts {
			if p.want(want) {
				parts = append(parts, strings.ReplaceAll(p.query, "$IDS", ids))
			}
		}
		if len(parts) == 0 {
			return ""
		}
		return strings.Join(parts, " UNION ALL ") + " ORDER BY 1, 2"
	})
}

// placeholders lists the parameters $1 to $n.
func placeholders(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("$" + strconv.Itoa(i+1))
	}
	return b.String()
}

// loadChildren fills the parts of lbs that want selects, each in id order.
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
	query := childQuery(want, len(ids))
	if query == "" {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = int64(id)
	}
	var nodeMeta []NodeMeta
	err := eachRow(db, query, args, func(rows *sql.Rows) error {
		var (
			kind           int
			id, owner      uint32
			s1, s2, s3, s4 sql.NullString
			n1, n2         sql.NullInt64
			t1, t2         sql.NullTime
		)
		if err := rows.Scan(&kind, &id, &owner, &s1, &s2, &s3, &s4, &n1, &n2, &t1, &t2); err != nil {
			return err
		}
		if kind == kindNodeMeta {
			nodeMeta = append(nodeMeta, NodeMeta{ID: id, NodeID: owner, Key: s1.String, Value: s2.String})
			return nil
		}
		lb := byID[owner]
		if lb == nil {
			return fmt.Errorf("store: a part of load balancer %d, which was not asked for", owner)
		}
		switch kind {
		case kindNode:
			lb.Nodes = append(lb.Nodes, Node{ID: id, LoadBalancerID: owner, Address: s1.String, Condition: s2.String,
				Type: s3.String, Status: s4.String, Port: uint32(n1.Int64), Weight: uint32(n2.Int64),
				CreatedAt: t1.Time, UpdatedAt: t2.Time})
		case kindVIP:
			v := VirtualIP{ID: id, Address: s1.String, Type: s2.String, IPVersion: s3.String, Account: s4.String, CreatedAt: t1.Time}
			if n1.Valid {
				r := uint32(n1.Int64)
				v.ReleasedBy = &r
			}
			lb.VirtualIPs = append(lb.VirtualIPs, v)
		case kindAccess:
			lb.AccessList = append(lb.AccessList, NetworkItem{ID: id, LoadBalancerID: owner, Address: s1.String, Type: s2.String})
		case kindMeta:
			lb.Metadata = append(lb.Metadata, LoadBalancerMeta{ID: id, LoadBalancerID: owner, Key: s1.String, Value: s2.String})
		default:
			return fmt.Errorf("store: unknown part kind %d", kind)
		}
		return nil
	})
	if err != nil || len(nodeMeta) == 0 {
		return err
	}
	// The nodes are all read now: their addresses are settled.
	nodes := map[uint32]*Node{}
	for _, lb := range lbs {
		for i := range lb.Nodes {
			nodes[lb.Nodes[i].ID] = &lb.Nodes[i]
		}
	}
	for _, m := range nodeMeta {
		if n := nodes[m.NodeID]; n != nil {
			n.Metadata = append(n.Metadata, m)
		}
	}
	return nil
}

func pointers(lbs []LoadBalancer) []*LoadBalancer {
	out := make([]*LoadBalancer, len(lbs))
	for i := range lbs {
		out[i] = &lbs[i]
	}
	return out
}

// eachRow runs a query, written for both dialects, on db's connection (or
// transaction) and calls scan for each row. It goes around gorm, whose
// statement building cost more than the query.
func eachRow(db *gorm.DB, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, query, args...)
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
