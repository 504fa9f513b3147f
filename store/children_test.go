package store

import (
	"context"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"
)

// countStatements counts the statements run through db from now on.
func countStatements(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	n := &atomic.Int64{}
	inc := func(*gorm.DB) { n.Add(1) }
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("test:count", inc),
		cb.Row().Before("gorm:row").Register("test:count", inc),
		cb.Raw().Before("gorm:raw").Register("test:count", inc),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// Reading a load balancer with all it owns takes two queries (its row,
// then one for nodes, virtual IPs, access list and both kinds of metadata),
// a page of a list two, and the data plane's batches two each: a round
// trip each to PostgreSQL.
func TestReadQueryCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24")})
		var lbs []*LoadBalancer
		for i := range 3 {
			lb := newLB("acc", "web",
				newNode("10.1.0.1", 8080, NodeMeta{Key: "rack", Value: "r1"}),
				newNode("10.1.0.2", 8081))
			lb.AccessList = []NetworkItem{{Address: "10.0.0.0/8", Type: "ALLOW"}}
			lb.Metadata = []LoadBalancerMeta{{Key: "k", Value: "v"}}
			mustUpdate(t, s, func(tx *Tx) error {
				vip, err := tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4")
				if err != nil {
					return err
				}
				lb.VirtualIPs = []VirtualIP{*vip}
				if i == 0 {
					lb.VirtualIPs = nil // one without a virtual IP
				}
				return tx.CreateLoadBalancer(lb)
			})
			lbs = append(lbs, lb)
		}
		n := countStatements(t, s.read)

		got, err := s.GetLoadBalancer(ctx, "acc", lbs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Nodes) != 2 || len(got.Nodes[0].Metadata) != 1 || len(got.VirtualIPs) != 1 ||
			len(got.AccessList) != 1 || len(got.Metadata) != 1 {
			t.Fatalf("GetLoadBalancer read %+v", got)
		}
		if c := n.Swap(0); c != 2 {
			t.Errorf("GetLoadBalancer ran %d statements, want 2", c)
		}

		listed, err := s.ListLoadBalancers(ctx, ListFilter{Account: "acc", Limit: 100})
		if err != nil || len(listed) != 3 || len(listed[0].VirtualIPs) != 0 || len(listed[2].VirtualIPs) != 1 || listed[2].NodeCount != 2 {
			t.Fatalf("ListLoadBalancers = %+v, %v", listed, err)
		}
		if c := n.Swap(0); c != 2 {
			t.Errorf("ListLoadBalancers ran %d statements, want 2", c)
		}

		byID, err := s.LoadBalancersByID(ctx, []uint32{lbs[0].ID, lbs[1].ID, lbs[2].ID})
		if err != nil || len(byID) != 3 || len(byID[2].Nodes) != 2 || len(byID[2].VirtualIPs) != 1 {
			t.Fatalf("LoadBalancersByID = %v, %v", byID, err)
		}
		if c := n.Swap(0); c != 2 {
			t.Errorf("LoadBalancersByID ran %d statements, want 2", c)
		}
	})
}
