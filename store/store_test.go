package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// forEachBackend runs test once on SQLite and once on PostgreSQL. Within a
// subtest, every call of open opens a new Store on the same, initially
// empty, database; the stores are closed when the subtest ends.
func forEachBackend(t *testing.T, test func(t *testing.T, open func(pools []Pool) *Store)) {
	t.Helper()
	backends := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "lbaas.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			test(t, func(pools []Pool) *Store {
				t.Helper()
				s, err := Open(context.Background(), Options{URL: url, Pools: pools, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
				if s.Dialect() != b.name {
					t.Fatalf("Dialect() = %q, want %q", s.Dialect(), b.name)
				}
				return s
			})
		})
	}
}

// Helpers.

var errBoom = errors.New("boom")

func mustUpdate(t *testing.T, s *Store, fn func(*Tx) error) int64 {
	t.Helper()
	rev, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

func newLB(account, name string, nodes ...Node) *LoadBalancer {
	return &LoadBalancer{
		Account: account, Name: name, Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
		Status: StatusBuild, Timeout: 30, Fleet: "default", Nodes: nodes,
	}
}

func newNode(address string, port uint32, meta ...NodeMeta) Node {
	return Node{Address: address, Port: port, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Status: "ONLINE", Metadata: meta}
}

// createLB creates lb in its own revision and returns that revision.
func createLB(t *testing.T, s *Store, lb *LoadBalancer) int64 {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error { return tx.CreateLoadBalancer(lb) })
}

// setStatus moves a load balancer to status in a revision of its own.
func setStatus(t *testing.T, s *Store, lb *LoadBalancer, status string) int64 {
	t.Helper()
	return mustUpdate(t, s, func(tx *Tx) error {
		lb.Status = status
		return tx.SaveLoadBalancer(lb)
	})
}

func count(t *testing.T, db *gorm.DB, table string, where string, args ...any) int64 {
	t.Helper()
	var n int64
	q := db.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func ids(lbs []ListedLoadBalancer) []uint32 {
	out := []uint32{}
	for _, lb := range lbs {
		out = append(out, lb.ID)
	}
	return out
}

func sorted(ids []uint32) []uint32 {
	out := append([]uint32{}, ids...)
	slices.Sort(out)
	return out
}

func pool(typ, prefix string) Pool {
	return Pool{Type: typ, Prefix: netip.MustParsePrefix(prefix)}
}

// 1. Schema.

func TestMigrationsMatchModels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		models := []any{
			&LoadBalancer{}, &Node{}, &VirtualIP{}, &NetworkItem{}, &LoadBalancerMeta{}, &NodeMeta{}, &NodeEvent{},
			&User{}, &Token{}, &Change{}, &revisionRow{}, &vipPool{}, &AccountRateLimit{},
			&Replica{}, &ReplicaFleet{}, &ReplicaVerdict{}, &AcceptedConfig{},
			&UsageSample{}, &UsageEvent{}, &UsageGauge{}, &UsageReplica{},
		}
		cache := &sync.Map{}
		for _, model := range models {
			sch, err := schema.Parse(model, cache, s.db.NamingStrategy)
			if err != nil {
				t.Fatalf("parse %T: %v", model, err)
			}
			checkTableMatches(t, s.db, sch.Table, sch.Fields)
		}

		lbSchema, err := schema.Parse(&LoadBalancer{}, cache, s.db.NamingStrategy)
		if err != nil {
			t.Fatal(err)
		}
		rel := lbSchema.Relationships.Relations["VirtualIPs"]
		if rel == nil || rel.JoinTable == nil {
			t.Fatal("LoadBalancer.VirtualIPs is not a many2many relationship")
		}
		if rel.JoinTable.Table != "load_balancer_virtual_ips" {
			t.Errorf("join table is %q, want load_balancer_virtual_ips", rel.JoinTable.Table)
		}
		checkTableMatches(t, s.db, rel.JoinTable.Table, rel.JoinTable.Fields)

		// Opening the database again migrates nothing and keeps the data.
		rev := createLB(t, s, newLB("acc", "web"))
		again := open(nil)
		if got, err := again.Revision(context.Background()); err != nil || got != rev {
			t.Errorf("Revision after reopening = %d, %v; want %d", got, err, rev)
		}
		if n := count(t, again.db, "schema_migrations", ""); n != int64(len(migrations)) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(migrations))
		}
		if n := count(t, again.db, "revisions", ""); n != 1 {
			t.Errorf("revisions has %d rows, want 1", n)
		}
		if n := count(t, again.db, "load_balancers", ""); n != 1 {
			t.Errorf("load_balancers has %d rows after reopening, want 1", n)
		}
	})
}

// checkTableMatches fails unless table has exactly the columns of fields,
// NOT NULL where the model says so.
func checkTableMatches(t *testing.T, db *gorm.DB, table string, fields []*schema.Field) {
	t.Helper()
	m := db.Migrator()
	if !m.HasTable(table) {
		t.Errorf("table %s does not exist", table)
		return
	}
	cols, err := m.ColumnTypes(table)
	if err != nil {
		t.Fatalf("column types of %s: %v", table, err)
	}
	inDB := map[string]gorm.ColumnType{}
	for _, c := range cols {
		inDB[c.Name()] = c
	}
	inModel := map[string]bool{}
	for _, f := range fields {
		if f.DBName == "" {
			continue
		}
		inModel[f.DBName] = true
		if !m.HasColumn(table, f.DBName) {
			t.Errorf("%s.%s (field %s) does not exist in the database", table, f.DBName, f.Name)
			continue
		}
		if c, ok := inDB[f.DBName]; ok && f.NotNull {
			if nullable, ok := c.Nullable(); ok && nullable {
				t.Errorf("%s.%s is nullable; the model says NOT NULL", table, f.DBName)
			}
		}
	}
	for name := range inDB {
		if !inModel[name] {
			t.Errorf("%s.%s exists in the database but in no field of the model", table, name)
		}
	}
}

// 2. Revisions.

func TestUpdateRevisions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24")})

		if rev, err := s.Revision(ctx); err != nil || rev != 0 {
			t.Fatalf("Revision of a new store = %d, %v; want 0", rev, err)
		}

		t.Run("strictly increasing", func(t *testing.T) {
			var last int64
			for i := range 5 {
				rev := mustUpdate(t, s, func(tx *Tx) error { return nil })
				if rev <= last {
					t.Errorf("update %d returned revision %d after %d", i, rev, last)
				}
				if cur, err := s.Revision(ctx); err != nil || cur != rev {
					t.Errorf("Revision() = %d, %v after Update returned %d", cur, err, rev)
				}
				last = rev
			}
		})

		t.Run("failing fn rolls back", func(t *testing.T) {
			before, _ := s.Revision(ctx)
			rev, err := s.Update(ctx, func(tx *Tx) error {
				vip, err := tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4")
				if err != nil {
					return err
				}
				lb := newLB("acc", "doomed", newNode("10.1.0.1", 80, NodeMeta{Key: "k", Value: "v"}))
				lb.VirtualIPs = []VirtualIP{*vip}
				lb.Metadata = []LoadBalancerMeta{{Key: "k", Value: "v"}}
				lb.AccessList = []NetworkItem{{Address: "10.0.0.0/8", Type: "ALLOW"}}
				if err := tx.CreateLoadBalancer(lb); err != nil {
					return err
				}
				return fmt.Errorf("refused: %w", errBoom)
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Update error = %v, want the error fn returned", err)
			}
			if rev != 0 {
				t.Errorf("failed Update returned revision %d, want 0", rev)
			}
			if after, _ := s.Revision(ctx); after != before {
				t.Errorf("revision moved from %d to %d on a failed Update", before, after)
			}
			for _, table := range []string{"load_balancers", "nodes", "node_meta", "load_balancer_meta",
				"network_items", "virtual_ips", "load_balancer_virtual_ips", "changes"} {
				if n := count(t, s.db, table, ""); n != 0 {
					t.Errorf("%s has %d rows after a failed Update, want 0", table, n)
				}
			}

		})

		t.Run("changes per touched load balancer", func(t *testing.T) {
			a, b := newLB("acc", "a"), newLB("acc", "b")
			b.Fleet = "other"
			rev := mustUpdate(t, s, func(tx *Tx) error {
				if err := tx.CreateLoadBalancer(a); err != nil {
					return err
				}
				return tx.CreateLoadBalancer(b)
			})
			checkChanges(t, s, rev, []Change{{rev, a.ID, "default"}, {rev, b.ID, "other"}})
			for _, lb := range []*LoadBalancer{a, b} {
				got, err := s.GetLoadBalancer(ctx, "acc", lb.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Revision != rev {
					t.Errorf("load balancer %d has revision %d, want %d", lb.ID, got.Revision, rev)
				}
			}

			// Touching a load balancer twice records it once.
			rev = mustUpdate(t, s, func(tx *Tx) error {
				if err := tx.AddNodes(a, []Node{newNode("10.9.9.9", 80)}); err != nil {
					return err
				}
				a.Name = "a2"
				return tx.SaveLoadBalancer(a)
			})
			checkChanges(t, s, rev, []Change{{rev, a.ID, "default"}})

			// An update that touches nothing records nothing.
			rev = mustUpdate(t, s, func(*Tx) error { return nil })
			checkChanges(t, s, rev, nil)
		})

		t.Run("subscribe", func(t *testing.T) {
			ch, stop := s.Subscribe()
			var last int64
			for range 3 {
				last = mustUpdate(t, s, func(*Tx) error { return nil })
			}
			select {
			case got := <-ch:
				if got != last {
					t.Errorf("subscriber received %d, want the latest revision %d", got, last)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("subscriber received nothing")
			}
			if _, err := s.Update(ctx, func(*Tx) error { return errBoom }); !errors.Is(err, errBoom) {
				t.Fatalf("Update error = %v", err)
			}
			select {
			case got := <-ch:
				t.Errorf("subscriber received %d after a failed Update", got)
			default:
			}
			stop()
			mustUpdate(t, s, func(*Tx) error { return nil })
			select {
			case got := <-ch:
				t.Errorf("subscriber received %d after ending the subscription", got)
			default:
			}
		})
	})
}

func checkChanges(t *testing.T, s *Store, rev int64, want []Change) {
	t.Helper()
	var got []Change
	if err := s.db.Where("revision = ?", rev).Order("load_balancer_id").Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes of revision %d = %+v, want %+v", rev, got, want)
	}
}

// 3. Create and get.

func TestCreateAndGetLoadBalancer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24"), pool("PUBLIC", "fd24:f480:ce44:91bc::/64")})

		hm := &HealthMonitor{Type: "HTTP", Delay: 10, Timeout: 5, AttemptsBeforeDeactivation: 3,
			Path: "/health", StatusRegex: "^2..$", BodyRegex: "ok", HostHeader: "example.com"}
		sp := &SessionPersistence{PersistenceType: "HTTP_COOKIE"}
		ct := &ConnectionThrottle{MaxConnections: 100, MinConnections: 10, MaxConnectionRate: 50, RateInterval: 60}

		var lb, bare *LoadBalancer
		var v4, v6 *VirtualIP
		rev := mustUpdate(t, s, func(tx *Tx) error {
			var err error
			if v4, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			if v6, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV6"); err != nil {
				return err
			}
			// Children get explicit ids in an order other than their
			// insertion order (which PostgreSQL returns them in unless
			// told otherwise), so that id order must be asked for.
			withID := func(n Node, id uint32) Node { n.ID = id; return n }
			lb = newLB("acc", "web",
				withID(newNode("10.1.0.1", 8080, NodeMeta{ID: 2002, Key: "rack", Value: "r1"}, NodeMeta{ID: 2001, Key: "zone", Value: "a"}), 1003),
				withID(newNode("10.1.0.2", 8081), 1001),
				withID(newNode("10.1.0.3", 8082, NodeMeta{ID: 2003, Key: "rack", Value: "r3"}), 1002),
			)
			lb.Protocol, lb.Port, lb.Algorithm, lb.Timeout = "HTTPS", 443, "ROUND_ROBIN", 90
			lb.StatusDescription = "being built"
			lb.HalfClosed, lb.HTTPSRedirect, lb.ConnectionLogging, lb.ContentCaching = true, true, true, true
			lb.Fleet = "edge"
			lb.HealthMonitor, lb.SessionPersistence, lb.ConnectionThrottle = hm, sp, ct
			lb.AccessList = []NetworkItem{{ID: 3002, Address: "192.168.0.0/16", Type: "ALLOW"}, {ID: 3001, Address: "0.0.0.0/0", Type: "DENY"}}
			lb.Metadata = []LoadBalancerMeta{{ID: 4002, Key: "owner", Value: "alice"}, {ID: 4001, Key: "env", Value: "prod"}}
			// Linked in the reverse of id order.
			lb.VirtualIPs = []VirtualIP{*v6, *v4}
			if err := tx.CreateLoadBalancer(lb); err != nil {
				return err
			}
			bare = newLB("acc", "bare")
			return tx.CreateLoadBalancer(bare)
		})

		mustUpdate(t, s, func(tx *Tx) error {
			n := lb.Nodes[0]
			n.Weight = 7
			return tx.SaveNode(&n)
		})

		got, err := s.GetLoadBalancer(ctx, "acc", lb.ID)
		if err != nil {
			t.Fatalf("GetLoadBalancer: %v", err)
		}
		type scalars struct {
			ID                                               uint32
			Account, Name, Protocol, Algorithm, Status, Desc string
			Port, Timeout                                    uint32
			HalfClosed, HTTPSRedirect, Logging, Caching      bool
			Fleet                                            string
			Revision                                         int64
			Deleted                                          bool
		}
		scalarsOf := func(lb *LoadBalancer) scalars {
			return scalars{lb.ID, lb.Account, lb.Name, lb.Protocol, lb.Algorithm, lb.Status, lb.StatusDescription,
				lb.Port, lb.Timeout, lb.HalfClosed, lb.HTTPSRedirect, lb.ConnectionLogging, lb.ContentCaching,
				lb.Fleet, lb.Revision, lb.DeletedAt != nil}
		}
		want := scalars{lb.ID, "acc", "web", "HTTPS", "ROUND_ROBIN", StatusBuild, "being built",
			443, 90, true, true, true, true, "edge", rev, false}
		if g := scalarsOf(got); g != want {
			t.Errorf("load balancer =\n %+v\nwant\n %+v", g, want)
		}
		if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
			t.Errorf("timestamps not set: created %v, updated %v", got.CreatedAt, got.UpdatedAt)
		}
		if got.HealthMonitor == nil || *got.HealthMonitor != *hm {
			t.Errorf("HealthMonitor = %+v, want %+v", got.HealthMonitor, hm)
		}
		if got.SessionPersistence == nil || *got.SessionPersistence != *sp {
			t.Errorf("SessionPersistence = %+v, want %+v", got.SessionPersistence, sp)
		}
		if got.ConnectionThrottle == nil || *got.ConnectionThrottle != *ct {
			t.Errorf("ConnectionThrottle = %+v, want %+v", got.ConnectionThrottle, ct)
		}

		type nodeView struct {
			ID, LB       uint32
			Address      string
			Port, Weight uint32
			Condition    string
			Type, Status string
			Meta         []string
		}
		var nodes []nodeView
		for _, n := range got.Nodes {
			v := nodeView{n.ID, n.LoadBalancerID, n.Address, n.Port, n.Weight, n.Condition, n.Type, n.Status, nil}
			for _, m := range n.Metadata {
				if m.NodeID != n.ID {
					t.Errorf("node %d has metadata %d of node %d", n.ID, m.ID, m.NodeID)
				}
				v.Meta = append(v.Meta, m.Key+"="+m.Value)
			}
			nodes = append(nodes, v)
		}
		wantNodes := []nodeView{
			{1001, lb.ID, "10.1.0.2", 8081, 1, "ENABLED", "PRIMARY", "ONLINE", nil},
			{1002, lb.ID, "10.1.0.3", 8082, 1, "ENABLED", "PRIMARY", "ONLINE", []string{"rack=r3"}},
			{1003, lb.ID, "10.1.0.1", 8080, 7, "ENABLED", "PRIMARY", "ONLINE", []string{"zone=a", "rack=r1"}},
		}
		if !reflect.DeepEqual(nodes, wantNodes) {
			t.Errorf("nodes =\n %+v\nwant\n %+v", nodes, wantNodes)
		}

		var access, meta []string
		for _, a := range got.AccessList {
			access = append(access, a.Type+" "+a.Address)
		}
		for _, m := range got.Metadata {
			meta = append(meta, m.Key+"="+m.Value)
		}
		if want := []string{"DENY 0.0.0.0/0", "ALLOW 192.168.0.0/16"}; !reflect.DeepEqual(access, want) {
			t.Errorf("access list = %q, want %q", access, want)
		}
		if want := []string{"env=prod", "owner=alice"}; !reflect.DeepEqual(meta, want) {
			t.Errorf("metadata = %q, want %q", meta, want)
		}

		var vips []string
		for _, v := range got.VirtualIPs {
			vips = append(vips, fmt.Sprintf("%d %s %s %s %s", v.ID, v.Account, v.Type, v.IPVersion, v.Address))
		}
		wantVIPs := []string{
			fmt.Sprintf("%d acc PUBLIC IPV4 10.0.0.1", v4.ID),
			fmt.Sprintf("%d acc PUBLIC IPV6 fd24:f480:ce44:91bc:0000:0000:0000:0001", v6.ID),
		}
		if v4.ID > v6.ID {
			t.Fatalf("virtual IP ids %d, %d not in allocation order", v4.ID, v6.ID)
		}
		if !reflect.DeepEqual(vips, wantVIPs) {
			t.Errorf("virtual IPs = %q, want %q", vips, wantVIPs)
		}

		gotBare, err := s.GetLoadBalancer(ctx, "acc", bare.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gotBare.HealthMonitor != nil || gotBare.SessionPersistence != nil || gotBare.ConnectionThrottle != nil {
			t.Errorf("load balancer without options came back with %+v, %+v, %+v",
				gotBare.HealthMonitor, gotBare.SessionPersistence, gotBare.ConnectionThrottle)
		}
		if len(gotBare.Nodes)+len(gotBare.VirtualIPs)+len(gotBare.AccessList)+len(gotBare.Metadata) != 0 {
			t.Errorf("load balancer without children came back with some: %+v", gotBare)
		}

		// Inside a transaction, the same view.
		mustUpdate(t, s, func(tx *Tx) error {
			inTx, err := tx.LoadBalancer("acc", lb.ID)
			if err != nil {
				return err
			}
			if len(inTx.Nodes) != 3 || len(inTx.VirtualIPs) != 2 || inTx.HealthMonitor == nil {
				t.Errorf("tx.LoadBalancer = %+v, want the full load balancer", inTx)
			}
			if n, err := tx.CountLoadBalancers("acc"); err != nil || n != 2 {
				t.Errorf("CountLoadBalancers = %d, %v; want 2", n, err)
			}
			return nil
		})

		for _, c := range []struct {
			account string
			id      uint32
		}{{"other", lb.ID}, {"acc", bare.ID + 100}} {
			if _, err := s.GetLoadBalancer(ctx, c.account, c.id); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetLoadBalancer(%q, %d) error = %v, want ErrNotFound", c.account, c.id, err)
			}
		}
		mustUpdate(t, s, func(tx *Tx) error {
			if _, err := tx.LoadBalancer("other", lb.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("tx.LoadBalancer of another account: error = %v, want ErrNotFound", err)
			}
			if _, err := tx.VirtualIP("other", v4.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("tx.VirtualIP of another account: error = %v, want ErrNotFound", err)
			}
			return nil
		})
	})
}

// 4. Virtual IP allocation.

func allocate(s *Store, account, typ, version string) (*VirtualIP, error) {
	var vip *VirtualIP
	_, err := s.Update(context.Background(), func(tx *Tx) error {
		var err error
		vip, err = tx.AllocateVirtualIP(account, typ, version)
		return err
	})
	return vip, err
}

func TestVirtualIPAllocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		v4 := pool("PUBLIC", "10.0.0.0/30") // two usable addresses
		v6 := pool("PUBLIC", "fd24:f480:ce44:91bc::/64")
		s := open([]Pool{v4, v6})

		t.Run("IPv6 in full form", func(t *testing.T) {
			seen := map[string]bool{}
			for i := range 3 {
				vip, err := allocate(s, "acc", "PUBLIC", "IPV6")
				if err != nil {
					t.Fatal(err)
				}
				addr, err := netip.ParseAddr(vip.Address)
				if err != nil || !v6.Prefix.Contains(addr) {
					t.Errorf("address %q is not in %s", vip.Address, v6.Prefix)
					continue
				}
				if vip.Address != addr.StringExpanded() {
					t.Errorf("address %q is not in full form %q", vip.Address, addr.StringExpanded())
				}
				if vip.IPVersion != "IPV6" || vip.Type != "PUBLIC" || vip.Account != "acc" || vip.ID == 0 {
					t.Errorf("virtual IP = %+v", vip)
				}
				if seen[vip.Address] {
					t.Errorf("address %s allocated twice", vip.Address)
				}
				seen[vip.Address] = true
				if i == 0 && vip.Address != "fd24:f480:ce44:91bc:0000:0000:0000:0001" {
					t.Errorf("first address = %s", vip.Address)
				}
			}
		})

		var a, b *LoadBalancer
		var first, second *VirtualIP
		t.Run("small IPv4 pool runs out", func(t *testing.T) {
			mustUpdate(t, s, func(tx *Tx) error {
				var err error
				if first, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
					return err
				}
				if second, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
					return err
				}
				a, b = newLB("acc", "a"), newLB("acc", "b")
				a.VirtualIPs, b.VirtualIPs = []VirtualIP{*first}, []VirtualIP{*second}
				if err := tx.CreateLoadBalancer(a); err != nil {
					return err
				}
				return tx.CreateLoadBalancer(b)
			})
			got := []string{first.Address, second.Address}
			slices.Sort(got)
			if want := []string{"10.0.0.1", "10.0.0.2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("addresses = %q, want %q", got, want)
			}
			if first.IPVersion != "IPV4" {
				t.Errorf("IPVersion = %q", first.IPVersion)
			}
			if _, err := allocate(s, "acc", "PUBLIC", "IPV4"); !errors.Is(err, ErrOutOfVirtualIPs) {
				t.Errorf("third address: error = %v, want ErrOutOfVirtualIPs", err)
			}
		})
		if t.Failed() {
			return
		}

		t.Run("no pool", func(t *testing.T) {
			if _, err := allocate(s, "acc", "SERVICENET", "IPV4"); !errors.Is(err, ErrNoPool) {
				t.Errorf("SERVICENET IPV4: error = %v, want ErrNoPool", err)
			}
			v6only := open([]Pool{pool("SERVICENET", "fd00::/120")})
			if _, err := allocate(v6only, "acc", "SERVICENET", "IPV4"); !errors.Is(err, ErrNoPool) {
				t.Errorf("SERVICENET IPV4 with only an IPv6 pool: error = %v, want ErrNoPool", err)
			}
		})

		t.Run("shared address is kept while in use", func(t *testing.T) {
			c := newLB("acc", "c")
			c.Port = 8080
			c.VirtualIPs = []VirtualIP{*second}
			createLB(t, s, c)
			mustUpdate(t, s, func(tx *Tx) error {
				ls, err := tx.Listeners(second.ID)
				if err != nil {
					return err
				}
				want := []Listener{{b.ID, 80, "HTTP", false}, {c.ID, 8080, "HTTP", false}}
				if !reflect.DeepEqual(ls, want) {
					t.Errorf("Listeners = %+v, want %+v", ls, want)
				}
				return tx.DetachVirtualIPs(b, []uint32{second.ID})
			})
			if len(b.VirtualIPs) != 0 {
				t.Errorf("b still has virtual IPs %+v after detaching", b.VirtualIPs)
			}
			if n := count(t, s.db, "virtual_ips", "id = ?", second.ID); n != 1 {
				t.Errorf("virtual IP still used by another load balancer was released")
			}
			if _, err := allocate(s, "acc", "PUBLIC", "IPV4"); !errors.Is(err, ErrOutOfVirtualIPs) {
				t.Errorf("allocation while both addresses are used: error = %v, want ErrOutOfVirtualIPs", err)
			}
		})

		t.Run("released address is reused once the change is applied", func(t *testing.T) {
			rev := mustUpdate(t, s, func(tx *Tx) error { return tx.DetachVirtualIPs(a, []uint32{first.ID}) })
			// A proxy may still listen on it until the change is applied.
			if n := count(t, s.db, "virtual_ips", "id = ?", first.ID); n != 1 {
				t.Errorf("virtual IP %d was released before the change was applied", first.ID)
			}
			if _, err := s.MarkApplied(context.Background(), "default", rev); err != nil {
				t.Fatal(err)
			}
			if n := count(t, s.db, "virtual_ips", "id = ?", first.ID); n != 0 {
				t.Errorf("unused virtual IP %d was not released once applied", first.ID)
			}
			vip, err := allocate(s, "other", "PUBLIC", "IPV4")
			if err != nil {
				t.Fatalf("allocation after release: %v", err)
			}
			if vip.Address != first.Address || vip.Account != "other" {
				t.Errorf("allocated %s for %s, want the released %s", vip.Address, vip.Account, first.Address)
			}
		})
	})
}

// An address detached from a load balancer is freed when that load
// balancer's change is applied, not when any other change is.
func TestDetachedAddressWaitsForItsOwnChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/29")})
		ctx := context.Background()
		var x, y *VirtualIP
		a, b := newLB("acc", "a"), newLB("acc", "b")
		mustUpdate(t, s, func(tx *Tx) error {
			var err error
			if x, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			if y, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			a.VirtualIPs = []VirtualIP{*x, *y}
			if err := tx.CreateLoadBalancer(a); err != nil {
				return err
			}
			return tx.CreateLoadBalancer(b)
		})
		if _, err := s.SetApplied(ctx, []Applied{{ID: a.ID, Revision: a.Revision}, {ID: b.ID, Revision: b.Revision}}); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, func(tx *Tx) error {
			a.Status = StatusPendingUpdate
			if err := tx.DetachVirtualIPs(a, []uint32{x.ID}); err != nil {
				return err
			}
			return tx.SaveLoadBalancer(a)
		})
		setStatus(t, s, b, StatusPendingUpdate)
		if _, err := s.SetApplied(ctx, []Applied{{ID: b.ID, Revision: b.Revision}}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s.db, "virtual_ips", "id = ?", x.ID); n != 1 {
			t.Fatalf("address %s detached by a pending change was freed by another load balancer's change", x.Address)
		}
		if _, err := s.SetApplied(ctx, []Applied{{ID: a.ID, Revision: a.Revision}}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s.db, "virtual_ips", "id = ?", x.ID); n != 0 {
			t.Errorf("address %s still held once the change detaching it was applied", x.Address)
		}
		if n := count(t, s.db, "virtual_ips", "id = ?", y.ID); n != 1 {
			t.Errorf("address %s, still in use, was freed", y.Address)
		}
	})
}

// 5. Concurrency.

// concurrently runs fn for 0..n-1 in n goroutines released at once.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestConcurrentUpdatesAreSerialised(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		const workers = 20
		pools := []Pool{pool("PUBLIC", "10.20.0.0/27"), pool("SERVICENET", "10.30.0.0/28")}
		s := open(pools)
		ctx := context.Background()

		for _, p := range pools {
			t.Run("allocate from "+p.Prefix.String(), func(t *testing.T) {
				var mu sync.Mutex
				revs := map[int64]bool{}
				errs := concurrently(workers, func(i int) error {
					rev, err := s.Update(ctx, func(tx *Tx) error {
						vip, err := tx.AllocateVirtualIP("acc", p.Type, "IPV4")
						if err != nil {
							return err
						}
						lb := newLB("acc", fmt.Sprintf("%s-%d", p.Type, i))
						lb.VirtualIPs = []VirtualIP{*vip}
						return tx.CreateLoadBalancer(lb)
					})
					if err == nil {
						mu.Lock()
						if revs[rev] {
							t.Errorf("revision %d returned twice", rev)
						}
						revs[rev] = true
						mu.Unlock()
					}
					return err
				})
				ok := 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, ErrOutOfVirtualIPs):
						t.Errorf("unexpected error: %v", err)
					}
				}
				want := min(workers, int(p.size()))
				if ok != want {
					t.Errorf("%d allocations succeeded, want %d", ok, want)
				}
				var vips []VirtualIP
				if err := s.db.Where("type = ?", p.Type).Find(&vips).Error; err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				for _, v := range vips {
					addr, err := netip.ParseAddr(v.Address)
					if err != nil || !p.Prefix.Contains(addr) || addr == p.Prefix.Addr() {
						t.Errorf("address %s is not a usable address of %s", v.Address, p.Prefix)
					}
					if seen[v.Address] {
						t.Errorf("address %s allocated twice", v.Address)
					}
					seen[v.Address] = true
				}
				if len(vips) != want {
					t.Errorf("%d virtual IPs stored, want %d", len(vips), want)
				}
				if n := count(t, s.db, "load_balancers", "name LIKE ?", p.Type+"-%"); n != int64(want) {
					t.Errorf("%d load balancers stored, want %d", n, want)
				}
			})
		}

		t.Run("limit check", func(t *testing.T) {
			const limit = 5
			errLimit := errors.New("limit reached")
			errs := concurrently(workers, func(i int) error {
				_, err := s.Update(ctx, func(tx *Tx) error {
					if err := tx.LockAccount("limited"); err != nil {
						return err
					}
					n, err := tx.CountLoadBalancers("limited")
					if err != nil {
						return err
					}
					if n >= limit {
						return errLimit
					}
					return tx.CreateLoadBalancer(newLB("limited", fmt.Sprint(i)))
				})
				return err
			})
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, errLimit):
					t.Errorf("unexpected error: %v", err)
				}
			}
			if ok != limit {
				t.Errorf("%d creations succeeded, want %d", ok, limit)
			}
			if n := count(t, s.db, "load_balancers", "account = ?", "limited"); n != limit {
				t.Errorf("account has %d load balancers, limit is %d", n, limit)
			}
		})
	})
}

// 6. Listing.

func TestListLoadBalancers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24")})

		web := newLB("acc", "web", newNode("10.1.1.1", 80), newNode("10.1.1.2", 80))
		api := newLB("acc", "api", newNode("10.1.1.1", 81))
		web2 := newLB("acc", "web")
		gone := newLB("acc", "gone", newNode("10.1.1.1", 82))
		foreign := newLB("other", "web", newNode("10.1.1.1", 80))
		var vip *VirtualIP
		mustUpdate(t, s, func(tx *Tx) error {
			var err error
			if vip, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			web.VirtualIPs = []VirtualIP{*vip}
			for _, lb := range []*LoadBalancer{web, api, web2, gone, foreign} {
				if err := tx.CreateLoadBalancer(lb); err != nil {
					return err
				}
			}
			return nil
		})
		setStatus(t, s, api, StatusActive)
		setStatus(t, s, web2, StatusError)
		setStatus(t, s, gone, StatusDeleted)

		// Pin updated_at, newest first: on PostgreSQL this also stores the
		// rows in reverse id order, so id order must be asked for.
		day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
		for _, u := range []struct {
			lb *LoadBalancer
			at time.Time
		}{{gone, day(5)}, {web2, day(3)}, {api, day(2)}, {web, day(1)}} {
			if err := s.db.Model(&LoadBalancer{}).Where("id = ?", u.lb.ID).UpdateColumn("updated_at", u.at).Error; err != nil {
				t.Fatal(err)
			}
		}

		all := []uint32{web.ID, api.ID, web2.ID}
		for _, c := range []struct {
			name string
			f    ListFilter
			want []uint32
		}{
			{"default excludes deleted", ListFilter{}, all},
			{"status", ListFilter{Status: StatusActive}, []uint32{api.ID}},
			{"status deleted", ListFilter{Status: StatusDeleted}, []uint32{gone.ID}},
			{"name", ListFilter{Name: "web"}, []uint32{web.ID, web2.ID}},
			{"unknown name", ListFilter{Name: "nope"}, []uint32{}},
			{"node address", ListFilter{NodeAddress: "10.1.1.1"}, []uint32{web.ID, api.ID}},
			{"node address wins over name", ListFilter{NodeAddress: "10.1.1.2", Name: "api"}, []uint32{web.ID}},
			{"changes since", ListFilter{ChangesSince: day(2)}, []uint32{api.ID, web2.ID}},
			{"changes since in another zone", ListFilter{ChangesSince: day(2).In(time.FixedZone("UTC+9", 9*3600))}, []uint32{api.ID, web2.ID}},
			{"changes since with status", ListFilter{ChangesSince: day(2), Status: StatusDeleted}, []uint32{gone.ID}},
			{"marker is inclusive", ListFilter{Marker: api.ID}, []uint32{api.ID, web2.ID}},
			{"offset", ListFilter{Offset: 1}, []uint32{api.ID, web2.ID}},
			{"limit", ListFilter{Limit: 2}, []uint32{web.ID, api.ID}},
			{"marker and limit", ListFilter{Marker: api.ID, Limit: 1}, []uint32{api.ID}},
			{"offset and limit", ListFilter{Offset: 1, Limit: 1}, []uint32{api.ID}},
			{"marker and offset", ListFilter{Marker: api.ID, Offset: 1}, []uint32{web2.ID}},
		} {
			t.Run(c.name, func(t *testing.T) {
				f := c.f
				f.Account = "acc"
				got, err := s.ListLoadBalancers(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ids(got), c.want) {
					t.Errorf("ids = %v, want %v", ids(got), c.want)
				}
			})
		}

		got, err := s.ListLoadBalancers(ctx, ListFilter{Account: "acc"})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[uint32]uint32{}
		for _, lb := range got {
			counts[lb.ID] = lb.NodeCount
			if lb.ID == web.ID {
				if len(lb.VirtualIPs) != 1 || lb.VirtualIPs[0].Address != vip.Address {
					t.Errorf("listed virtual IPs of web = %+v, want %s", lb.VirtualIPs, vip.Address)
				}
				if lb.Name != "web" || lb.Protocol != "HTTP" || lb.Status != StatusBuild {
					t.Errorf("listed load balancer = %+v", lb.LoadBalancer)
				}
			}
		}
		if want := map[uint32]uint32{web.ID: 2, api.ID: 1, web2.ID: 0}; !reflect.DeepEqual(counts, want) {
			t.Errorf("node counts = %v, want %v", counts, want)
		}
	})
}

// 7. MarkApplied.

func TestMarkApplied(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24")})

		building := newLB("acc", "building")
		updating := newLB("acc", "updating")
		deleting := newLB("acc", "deleting")
		sharing := newLB("acc", "sharing")
		otherFleet := newLB("acc", "other fleet")
		otherFleet.Fleet = "f2"
		failed := newLB("acc", "failed")
		failed.Status = StatusError
		for _, lb := range []*LoadBalancer{building, updating, deleting, sharing, failed} {
			lb.Fleet = "f1"
		}
		var own, shared *VirtualIP
		mustUpdate(t, s, func(tx *Tx) error {
			var err error
			if own, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			if shared, err = tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4"); err != nil {
				return err
			}
			deleting.VirtualIPs = []VirtualIP{*own, *shared}
			sharing.VirtualIPs = []VirtualIP{*shared}
			for _, lb := range []*LoadBalancer{building, updating, deleting, sharing, otherFleet, failed} {
				if err := tx.CreateLoadBalancer(lb); err != nil {
					return err
				}
			}
			return nil
		})
		setStatus(t, s, sharing, StatusActive)
		mustUpdate(t, s, func(tx *Tx) error {
			updating.Status, updating.StatusDescription = StatusPendingUpdate, "applying"
			return tx.SaveLoadBalancer(updating)
		})
		upTo := setStatus(t, s, deleting, StatusPendingDelete)
		later := newLB("acc", "later")
		later.Fleet = "f1"
		createLB(t, s, later)

		if fleets, err := s.Fleets(ctx); err != nil || !reflect.DeepEqual(fleets, []string{"f1", "f2"}) {
			t.Errorf("Fleets = %q, %v; want [f1 f2]", fleets, err)
		}

		changed, err := s.MarkApplied(ctx, "f1", upTo)
		if err != nil {
			t.Fatalf("MarkApplied: %v", err)
		}
		if want := sorted([]uint32{building.ID, updating.ID, deleting.ID}); !reflect.DeepEqual(sorted(changed), want) {
			t.Errorf("MarkApplied changed %v, want %v", changed, want)
		}

		status := func(lb *LoadBalancer) *LoadBalancer {
			t.Helper()
			var row LoadBalancer
			if err := s.db.First(&row, lb.ID).Error; err != nil {
				t.Fatal(err)
			}
			return &row
		}
		for _, c := range []struct {
			lb     *LoadBalancer
			status string
		}{
			{building, StatusActive}, {updating, StatusActive}, {deleting, StatusDeleted},
			{sharing, StatusActive}, {otherFleet, StatusBuild}, {failed, StatusError}, {later, StatusBuild},
		} {
			row := status(c.lb)
			if row.Status != c.status {
				t.Errorf("%s: status %s, want %s", row.Name, row.Status, c.status)
			}
			if (row.DeletedAt != nil) != (c.status == StatusDeleted) {
				t.Errorf("%s: deleted_at = %v in status %s", row.Name, row.DeletedAt, row.Status)
			}
		}
		if row := status(updating); row.StatusDescription != "" {
			t.Errorf("status description %q kept after activation", row.StatusDescription)
		}
		if row := status(deleting); row.DeletedAt != nil && row.DeletedAt.Before(row.CreatedAt) {
			t.Errorf("deleted_at %v before created_at %v", row.DeletedAt, row.CreatedAt)
		}
		if _, err := s.GetLoadBalancer(ctx, "acc", deleting.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetLoadBalancer of a deleted load balancer: error = %v, want ErrNotFound", err)
		}
		if n := count(t, s.db, "load_balancer_virtual_ips", "load_balancer_id = ?", deleting.ID); n != 0 {
			t.Errorf("deleted load balancer still linked to %d virtual IPs", n)
		}
		if n := count(t, s.db, "virtual_ips", "id = ?", own.ID); n != 0 {
			t.Errorf("virtual IP of the deleted load balancer was not released")
		}
		if n := count(t, s.db, "virtual_ips", "id = ?", shared.ID); n != 1 {
			t.Errorf("virtual IP still used by another load balancer was released")
		}

		if again, err := s.MarkApplied(ctx, "f1", upTo); err != nil || len(again) != 0 {
			t.Errorf("MarkApplied again = %v, %v; want nothing changed", again, err)
		}
		if changed, err := s.MarkApplied(ctx, "f2", upTo+100); err != nil || !reflect.DeepEqual(changed, []uint32{otherFleet.ID}) {
			t.Errorf("MarkApplied(f2) = %v, %v; want [%d]", changed, err, otherFleet.ID)
		}
		if fleets, err := s.Fleets(ctx); err != nil || !reflect.DeepEqual(fleets, []string{"f1"}) {
			t.Errorf("Fleets = %q, %v; want [f1]", fleets, err)
		}
	})
}

// A load balancer changed by an Update that commits while MarkApplied runs
// must not be marked ACTIVE on the strength of an older revision.
func TestMarkAppliedConcurrentUpdate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open(nil)
		if s.Dialect() == "sqlite" {
			t.Skip("SQLite runs one transaction at a time: MarkApplied cannot interleave with Update")
		}
		lb := newLB("acc", "web")
		applied := createLB(t, s, lb)

		type result struct {
			ids []uint32
			err error
		}
		done := make(chan result, 1)
		finished := make(chan struct{})
		rev := mustUpdate(t, s, func(tx *Tx) error {
			lb.Status, lb.Port = StatusPendingUpdate, 8080
			if err := tx.SaveLoadBalancer(lb); err != nil {
				return err
			}
			go func() {
				defer close(finished)
				ids, err := s.MarkApplied(ctx, "default", applied)
				done <- result{ids, err}
			}()
			// Commit only once MarkApplied waits for a lock this
			// transaction holds.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var waiting int64
				if err := s.db.Raw(`SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting).Error; err != nil {
					return err
				}
				if waiting > 0 {
					return nil
				}
				select {
				case <-finished:
					return nil
				case <-time.After(5 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					return errors.New("MarkApplied neither finished nor waited for a lock")
				}
			}
		})
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("MarkApplied did not return")
		}
		if r.err != nil {
			t.Fatalf("MarkApplied: %v", r.err)
		}
		if len(r.ids) != 0 {
			t.Errorf("MarkApplied(%d) changed %v, which were changed again in revision %d", applied, r.ids, rev)
		}
		var row LoadBalancer
		if err := s.db.First(&row, lb.ID).Error; err != nil {
			t.Fatal(err)
		}
		if row.Status != StatusPendingUpdate || row.Revision != rev || row.Port != 8080 {
			t.Errorf("load balancer = status %s, revision %d, port %d; want %s, %d, 8080",
				row.Status, row.Revision, row.Port, StatusPendingUpdate, rev)
		}
	})
}

// 8. Users and tokens.

func TestUsersAndTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open(nil)

		alice := &User{Username: "alice", Tenant: "acc", APIKeyHash: "key-hash", Roles: "lbaas:observer"}
		if err := s.CreateUser(ctx, alice); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if alice.ID == 0 {
			t.Error("CreateUser did not set the id")
		}
		if err := s.CreateUser(ctx, &User{Username: "alice", Tenant: "other", APIKeyHash: "x"}); !errors.Is(err, ErrUserExists) {
			t.Errorf("duplicate CreateUser: error = %v, want ErrUserExists", err)
		}
		if err := s.CreateUser(ctx, &User{Username: "bob", Tenant: "acc", APIKeyHash: "y"}); err != nil {
			t.Errorf("CreateUser(bob): %v", err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 2 {
			t.Errorf("CountUsers = %d, %v; want 2", n, err)
		}
		if u, err := s.UserByName(ctx, "alice"); err != nil || u.ID != alice.ID || u.Tenant != "acc" || u.APIKeyHash != "key-hash" {
			t.Errorf("UserByName(alice) = %+v, %v", u, err)
		}
		if _, err := s.UserByName(ctx, "carol"); !errors.Is(err, ErrNotFound) {
			t.Errorf("UserByName(carol): error = %v, want ErrNotFound", err)
		}

		now := time.Now()
		behind := time.FixedZone("UTC-10", -10*3600)
		ahead := time.FixedZone("UTC+10", 10*3600)
		save := func(hash string, expires time.Time) {
			t.Helper()
			if err := s.SaveToken(ctx, &Token{Hash: hash, UserID: alice.ID, Tenant: "acc", ExpiresAt: expires}); err != nil {
				t.Fatalf("SaveToken(%s): %v", hash, err)
			}
		}
		stored := func(hash string) bool {
			t.Helper()
			return count(t, s.db, "tokens", "hash = ?", hash) == 1
		}
		valid := map[string]time.Time{
			"valid":             now.Add(time.Hour).UTC(),
			"valid-zone-behind": now.Add(time.Hour).In(behind),
		}
		checkValid := func() {
			t.Helper()
			for hash, expires := range valid {
				got, err := s.GrantOf(ctx, hash)
				if err != nil {
					t.Errorf("GrantOf(%s): %v", hash, err)
				} else if got.Roles != "lbaas:observer" || got.Tenant != "acc" || got.ExpiresAt.Sub(expires).Abs() >= time.Microsecond {
					t.Errorf("GrantOf(%s) = %+v, want roles lbaas:observer, expiry %v", hash, got, expires)
				}
			}
		}
		checkExpired := func(hash string) {
			t.Helper()
			if got, err := s.GrantOf(ctx, hash); !errors.Is(err, ErrNotFound) {
				t.Errorf("GrantOf(%s) of an expired token = %+v, %v; want ErrNotFound", hash, got, err)
			}
		}
		for hash, expires := range valid {
			save(hash, expires)
		}
		checkValid()

		// An expired token saved last stays in the table (SaveToken drops
		// expired tokens before inserting): GrantOf must ignore it.
		save("expired-zone-ahead", now.Add(-time.Hour).In(ahead))
		if !stored("expired-zone-ahead") {
			t.Fatal("the expired token was not stored")
		}
		checkExpired("expired-zone-ahead")

		// The next SaveToken drops it, and keeps the valid ones.
		save("expired", now.Add(-time.Minute).UTC())
		if stored("expired-zone-ahead") {
			t.Error("SaveToken did not drop an expired token")
		}
		for hash := range valid {
			if !stored(hash) {
				t.Errorf("SaveToken dropped the unexpired token %s", hash)
			}
		}
		checkExpired("expired")
		checkValid()
		checkExpired("unknown")

		// Roles change what the tokens allow at once; a new API key
		// revokes them; so does deleting the user.
		if err := s.UpdateUser(ctx, "alice", "", "lbaas:creator"); err != nil {
			t.Fatalf("UpdateUser(roles): %v", err)
		}
		if g, err := s.GrantOf(ctx, "valid"); err != nil || g.Roles != "lbaas:creator" {
			t.Errorf("GrantOf after a role change = %+v, %v; want lbaas:creator", g, err)
		}
		if err := s.UpdateUser(ctx, "alice", "new-hash", ""); err != nil {
			t.Fatalf("UpdateUser(key): %v", err)
		}
		checkExpired("valid")
		if u, err := s.UserByName(ctx, "alice"); err != nil || u.APIKeyHash != "new-hash" || u.Roles != "lbaas:creator" {
			t.Errorf("alice after a new key = %+v, %v", u, err)
		}
		save("again", now.Add(time.Hour))
		users, err := s.Users(ctx, "acc")
		if err != nil || len(users) != 2 || users[0].Username != "alice" || users[1].Username != "bob" {
			t.Errorf("Users(acc) = %+v, %v; want alice, bob", users, err)
		}
		if all, err := s.Users(ctx, ""); err != nil || len(all) != 2 {
			t.Errorf("Users() = %d users, %v; want 2", len(all), err)
		}
		if err := s.DeleteUser(ctx, "alice"); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		checkExpired("again")
		if stored("again") {
			t.Error("DeleteUser left the user's token")
		}
		for _, err := range []error{s.DeleteUser(ctx, "alice"), s.UpdateUser(ctx, "alice", "h", "")} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("changing a deleted user: error = %v, want ErrNotFound", err)
			}
		}
	})
}

// Users created before roles existed had full access to their account:
// the migration keeps that (lbaas:admin).
func TestRolesMigrationKeepsExistingUsersAdmins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		all := migrations
		t.Cleanup(func() { migrations = all })
		i := slices.IndexFunc(all, func(m *gormigrate.Migration) bool { return m.ID == "202611300002_roles_and_rate_limits" })
		if i < 0 {
			t.Fatal("no roles migration")
		}
		migrations = all[:i]
		old := open(nil)
		if err := old.db.Exec("INSERT INTO users (username, tenant, api_key_hash, password_hash) VALUES ('old', 'acc', 'h', '')").Error; err != nil {
			t.Fatal(err)
		}
		migrations = all
		s := open(nil)
		if u, err := s.UserByName(context.Background(), "old"); err != nil || u.Roles != "lbaas:admin" {
			t.Errorf("user from before the migration = %+v, %v; want roles lbaas:admin", u, err)
		}
	})
}

func TestAccountRateLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		ctx := context.Background()
		s := open(nil)
		set := func(l AccountRateLimit) {
			t.Helper()
			if err := s.SetAccountRateLimit(ctx, l); err != nil {
				t.Fatalf("SetAccountRateLimit(%+v): %v", l, err)
			}
		}
		set(AccountRateLimit{Account: "a", Verb: "POST", Unit: "SECOND", Value: 50})
		set(AccountRateLimit{Account: "a", Verb: "POST", Unit: "SECOND", Value: 60}) // replaces
		set(AccountRateLimit{Account: "a", Verb: "GET", Unit: "MINUTE", Value: 1000})
		set(AccountRateLimit{Account: "b", Verb: "GET", Unit: "MINUTE", Value: 7})
		want := []AccountRateLimit{
			{Account: "a", Verb: "GET", Unit: "MINUTE", Value: 1000},
			{Account: "a", Verb: "POST", Unit: "SECOND", Value: 60},
			{Account: "b", Verb: "GET", Unit: "MINUTE", Value: 7},
		}
		if got, err := s.AccountRateLimits(ctx); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("AccountRateLimits = %+v, %v; want %+v", got, err, want)
		}
		if err := s.ResetAccountRateLimits(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AccountRateLimits(ctx); err != nil || !reflect.DeepEqual(got, want[2:]) {
			t.Errorf("AccountRateLimits after resetting a = %+v, %v; want %+v", got, err, want[2:])
		}
	})
}

// Replicas sharing a PostgreSQL database hear of each other's commits at
// once (LISTEN/NOTIFY), not at their next poll.
func TestReplicasHearEachOthersCommits(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	open := func() *Store {
		s, err := Open(context.Background(), Options{URL: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	revs, stop := b.Subscribe()
	defer stop()
	deadline := time.After(10 * time.Second)
	for {
		rev := mustUpdate(t, a, func(*Tx) error { return nil })
		select {
		case got := <-revs:
			// b commits nothing itself: whatever it hears is a's.
			if got < 1 || got > rev {
				t.Fatalf("replica b heard revision %d, a committed up to %d", got, rev)
			}
			return
		case <-time.After(500 * time.Millisecond):
			// b may not be listening yet: commit again.
		case <-deadline:
			t.Fatal("replica b never heard of replica a's commits")
		}
	}
}
