package store

import (
	"context"
	"database/sql"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// countStatements counts the statements run through db's connection pool
// from now on, whether gorm builds them or the store writes them.
func countStatements(t *testing.T, db *gorm.DB) *atomic.Int64 {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	n := &atomic.Int64{}
	db.Statement.ConnPool = &countingPool{ConnPool: db.Statement.ConnPool, db: sqlDB, n: n}
	return n
}

// countingPool counts the queries run through a pool.
type countingPool struct {
	gorm.ConnPool
	db *sql.DB
	n  *atomic.Int64
}

func (p *countingPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.n.Add(1)
	return p.ConnPool.QueryContext(ctx, query, args...)
}

func (p *countingPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.n.Add(1)
	return p.ConnPool.QueryRowContext(ctx, query, args...)
}

func (p *countingPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// Reading a load balancer with all it owns takes two queries (its row,
// then one for nodes, virtual IPs, access list and both kinds of metadata),
// a page of a list two (its rows, then their virtual IPs), and the data plane's batches two each: a round
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

// The plain read of a load balancer's row reads every column of the model,
// and what gorm reads: a column added to the model must be added to it.
func TestLoadBalancerColumns(t *testing.T) {
	sch, err := schema.Parse(&LoadBalancer{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	var model []string
	for _, f := range sch.Fields {
		if f.DBName != "" {
			model = append(model, f.DBName)
		}
	}
	var read []string
	for _, c := range strings.Split(lbColumns, ",") {
		read = append(read, strings.TrimSpace(c))
	}
	slices.Sort(model)
	slices.Sort(read)
	if !slices.Equal(model, read) {
		t.Fatalf("lbColumns has %v, the model %v", read, model)
	}

	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		deleted := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		lb := &LoadBalancer{Account: "acc", Name: "every column", Protocol: "HTTP", Port: 81, Algorithm: "RANDOM",
			Status: StatusError, StatusDescription: "why", Timeout: 42, HalfClosed: true, HTTPSRedirect: true,
			ConnectionLogging: true, ContentCaching: true, ErrorPage: "<html/>", CheckPassive: true,
			ClientKeepAliveTimeout: 9, BackendKeepAlive: true, Fleet: "f1", DeletedAt: &deleted,
			SSLTermination: &SSLTermination{Certificate: "c", SealedKey: []byte{1, 2}, Enabled: true, SecurePort: 443,
				Mappings: []CertificateMapping{{ID: 1, HostName: "h"}}, LastMappingID: 1},
			HealthMonitor:      &HealthMonitor{Type: "HTTP", Delay: 10, Timeout: 5, AttemptsBeforeDeactivation: 2, Path: "/"},
			SessionPersistence: &SessionPersistence{PersistenceType: "HTTP_COOKIE"},
			ConnectionThrottle: &ConnectionThrottle{MaxConnections: 7},
		}
		createLB(t, s, lb)
		var want LoadBalancer
		if err := s.read.Take(&want, lb.ID).Error; err != nil {
			t.Fatal(err)
		}
		got, err := s.GetLoadBalancer(context.Background(), "acc", lb.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.Nodes = nil
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("read\\n%+v\\ngorm reads\\n%+v", *got, want)
		}
		if got.Revision == 0 || got.CreatedAt.IsZero() || got.DeletedAt == nil || !got.DeletedAt.Equal(deleted) {
			t.Errorf("read %+v", *got)
		}

		// A JSON column holding the JSON null reads as none, as gorm reads it.
		if err := s.db.Exec("UPDATE load_balancers SET health_monitor = 'null' WHERE id = ?", lb.ID).Error; err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetLoadBalancer(context.Background(), "acc", lb.ID); err != nil || got.HealthMonitor != nil {
			t.Errorf("a health monitor of JSON null read as %+v, %v", got.HealthMonitor, err)
		}

		plain := &LoadBalancer{Account: "acc", Name: "none", Protocol: "HTTP", Port: 82, Algorithm: "RANDOM", Status: StatusActive, Fleet: "f1"}
		createLB(t, s, plain)
		got, err = s.GetLoadBalancer(context.Background(), "acc", plain.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SSLTermination != nil || got.HealthMonitor != nil || got.SessionPersistence != nil || got.ConnectionThrottle != nil || got.DeletedAt != nil {
			t.Errorf("a load balancer without features read as %+v", *got)
		}
	})
}

// The queries written for both dialects bring in their parameters $1 to
// $n in order of first appearance, which is how SQLite numbers them.
func TestPlaceholdersInOrder(t *testing.T) {
	param := regexp.MustCompile(`\$(\d+)`)
	for _, n := range []int{1, 2, 10, 100, 300} {
		for name, q := range map[string]string{
			"children":      childQuery(allChildren, n),
			"config":        childQuery(configChildren, n),
			"list's VIPs":   listVIPQuery(n),
			"load balancer": loadBalancerQuery,
		} {
			next := 1
			for _, m := range param.FindAllStringSubmatch(q, -1) {
				k, _ := strconv.Atoi(m[1])
				switch {
				case k == next:
					next++
				case k > next:
					t.Fatalf("%s query for %d: $%d comes before $%d", name, n, k, next)
				}
			}
		}
	}
}
