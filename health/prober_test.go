package health

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	if url == "" {
		url = "sqlite://" + filepath.Join(t.TempDir(), "lbaas.db")
	}
	st, err := store.Open(context.Background(), store.Options{URL: url, Logger: slog.New(slog.DiscardHandler), Host: "prober-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func node(address string, port uint32) store.Node {
	return store.Node{Address: address, Port: port, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Status: Online}
}

func createLB(t *testing.T, st *store.Store, hm *store.HealthMonitor, nodes ...store.Node) *store.LoadBalancer {
	t.Helper()
	lb := &store.LoadBalancer{Account: "1234", Name: "lb", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
		Status: store.StatusActive, Timeout: 30, Fleet: "default", HealthMonitor: hm, Nodes: nodes}
	update(t, st, func(tx *store.Tx) error { return tx.CreateLoadBalancer(lb) })
	return lb
}

func update(t *testing.T, st *store.Store, fn func(*store.Tx) error) {
	t.Helper()
	if _, err := st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func loadLB(t *testing.T, st *store.Store, id uint32) *store.LoadBalancer {
	t.Helper()
	lb, err := st.LoadBalancerByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return lb
}

func nodeStatus(t *testing.T, st *store.Store, lbID, nodeID uint32) string {
	t.Helper()
	for _, n := range loadLB(t, st, lbID).Nodes {
		if n.ID == nodeID {
			return n.Status
		}
	}
	t.Fatalf("node %d is gone", nodeID)
	return ""
}

func events(t *testing.T, st *store.Store, lbID uint32) []store.NodeEvent {
	t.Helper()
	evs, err := st.ListNodeEvents(context.Background(), store.EventPage{LoadBalancerID: lbID})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// waitFor polls cond for 10 s at most.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startProber runs a prober whose delays count in tenths of a second; it
// is stopped, and must return, when the test ends.
func startProber(t *testing.T, st *store.Store, opts Options) *Prober {
	t.Helper()
	if opts.Poll == 0 {
		opts.Poll = 50 * time.Millisecond
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	p := New(st, opts)
	p.unit = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		if n := p.Targets(); n != 0 {
			t.Errorf("%d probes left running after Run returned", n)
		}
	})
	return p
}

// backend is an HTTP node whose answer the test sets.
type backend struct {
	*httptest.Server
	code     atomic.Int32
	requests atomic.Int32
	failures atomic.Int32
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.code.Store(200)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		code := int(b.code.Load())
		if code != 200 {
			b.failures.Add(1)
		}
		w.WriteHeader(code)
		fmt.Fprint(w, "it works")
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) node(t *testing.T) store.Node {
	address, port := hostPort(t, b.URL)
	return node(address, port)
}

// A failing node goes OFFLINE after attemptsBeforeDeactivation consecutive
// failures and back ONLINE after one success; each change is one event and
// one change of the load balancer that leaves its status alone.
func TestProberMarksNodesOfflineAndOnline(t *testing.T) {
	st := openStore(t, "")
	good, flaky := newBackend(t), newBackend(t)
	hm := &store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 3,
		Path: "/health", StatusRegex: "^2[0-9][0-9]$", CheckBody: "it works"}
	lb := createLB(t, st, hm, good.node(t), flaky.node(t))
	goodID, flakyID := lb.Nodes[0].ID, lb.Nodes[1].ID
	startProber(t, st, Options{})

	waitFor(t, "both nodes probed twice", func() bool { return good.requests.Load() >= 2 && flaky.requests.Load() >= 2 })
	if evs := events(t, st, lb.ID); len(evs) != 0 {
		t.Fatalf("healthy nodes got events: %+v", evs)
	}
	before := loadLB(t, st, lb.ID)

	flaky.code.Store(500)
	waitFor(t, "the flaky node OFFLINE", func() bool { return nodeStatus(t, st, lb.ID, flakyID) == Offline })
	if n := flaky.failures.Load(); n < 3 {
		t.Errorf("OFFLINE after %d failed checks, want attemptsBeforeDeactivation = 3", n)
	}
	if s := nodeStatus(t, st, lb.ID, goodID); s != Online {
		t.Errorf("the good node is %s", s)
	}
	evs := events(t, st, lb.ID)
	if len(evs) != 1 {
		t.Fatalf("events %+v, want one", evs)
	}
	ev := evs[0]
	want := store.NodeEvent{ID: ev.ID, LoadBalancerID: lb.ID, NodeID: flakyID, Account: "1234", Type: "UPDATE_NODE",
		Category: "UPDATE", Severity: "INFO", Title: "Node Status Updated",
		Description:     fmt.Sprintf("Node '%d' status changed to 'OFFLINE' for load balancer '%d'", flakyID, lb.ID),
		DetailedMessage: "Status code 500 did not match statusRegex '^2[0-9][0-9]$'", CallbackHost: "prober-1", CreatedAt: ev.CreatedAt}
	if ev != want {
		t.Errorf("event\n %+v, want\n %+v", ev, want)
	}
	after := loadLB(t, st, lb.ID)
	if after.Status != store.StatusActive || !after.UpdatedAt.Equal(before.UpdatedAt) || after.Revision <= before.Revision {
		t.Errorf("load balancer went from %s/%v/rev %d to %s/%v/rev %d; want the status and updated time kept, a newer revision",
			before.Status, before.UpdatedAt, before.Revision, after.Status, after.UpdatedAt, after.Revision)
	}
	changes, err := st.ChangesSince(context.Background(), before.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || changes[0].LoadBalancerID != lb.ID {
		t.Errorf("changes since %d: %+v, want one for the load balancer (the publisher's cue)", before.Revision, changes)
	}

	flaky.code.Store(200)
	waitFor(t, "the flaky node ONLINE", func() bool { return nodeStatus(t, st, lb.ID, flakyID) == Online })
	evs = events(t, st, lb.ID)
	if len(evs) != 2 || !strings.Contains(evs[1].Description, "to 'ONLINE'") || evs[1].DetailedMessage != "Node is working" {
		t.Errorf("events after recovery: %+v", evs)
	}
}

// A node is checked as soon as it appears, not a delay later.
func TestProberChecksAddedNodesAtOnce(t *testing.T) {
	st := openStore(t, "")
	b := newBackend(t)
	// One probe an hour and three attempts: only the check at addition can
	// take the new node out, and it must (a new node serves only once checked).
	hm := &store.HealthMonitor{Type: "CONNECT", Delay: 3600, Timeout: 1, AttemptsBeforeDeactivation: 3}
	lb := createLB(t, st, hm, b.node(t))
	p := startProber(t, st, Options{})
	waitFor(t, "the first node probed", func() bool { return p.Targets() == 1 })

	added := []store.Node{node("127.0.0.1", closedPort(t))}
	update(t, st, func(tx *store.Tx) error {
		l, err := tx.LoadBalancer("1234", lb.ID)
		if err != nil {
			return err
		}
		return tx.AddNodes(l, added)
	})
	waitFor(t, "the added dead node OFFLINE", func() bool { return nodeStatus(t, st, lb.ID, added[0].ID) == Offline })
	evs := events(t, st, lb.ID)
	if len(evs) != 1 || !strings.Contains(evs[0].DetailedMessage, "connection refused") {
		t.Errorf("events %+v, want one saying the connection was refused", evs)
	}
}

// Probing follows the store: a DISABLED node, a removed monitor, removed
// nodes and a deleted load balancer are not probed, and a changed monitor
// restarts the probes with the new settings.
func TestProberFollowsTheStore(t *testing.T) {
	st := openStore(t, "")
	a, b := newBackend(t), newBackend(t)
	disabled := b.node(t)
	disabled.Condition = "DISABLED"
	hm := &store.HealthMonitor{Type: "CONNECT", Delay: 1, Timeout: 1, AttemptsBeforeDeactivation: 1}
	lb := createLB(t, st, hm, a.node(t), disabled)
	p := startProber(t, st, Options{})
	waitFor(t, "one node probed", func() bool { return p.Targets() == 1 })

	change := func(fn func(l *store.LoadBalancer, tx *store.Tx) error) {
		update(t, st, func(tx *store.Tx) error {
			l, err := tx.LoadBalancer("1234", lb.ID)
			if err != nil {
				return err
			}
			return fn(l, tx)
		})
	}
	// Enabling the node starts its probes.
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		l.Nodes[1].Condition = "ENABLED"
		return tx.SaveNode(&l.Nodes[1])
	})
	waitFor(t, "both nodes probed", func() bool { return p.Targets() == 2 })

	// A new monitor type applies at once: b answers 200, and HTTP wants 204.
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		l.HealthMonitor = &store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 1, AttemptsBeforeDeactivation: 1,
			Path: "/", StatusRegex: "^204$"}
		return tx.SaveLoadBalancer(l)
	})
	waitFor(t, "nodes OFFLINE under the new monitor", func() bool {
		l := loadLB(t, st, lb.ID)
		return l.Nodes[0].Status == Offline && l.Nodes[1].Status == Offline
	})

	// Removing the monitor stops the probes.
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		l.HealthMonitor = nil
		return tx.SaveLoadBalancer(l)
	})
	waitFor(t, "no probes", func() bool { return p.Targets() == 0 })
	seen := a.requests.Load() + b.requests.Load()
	time.Sleep(300 * time.Millisecond) // three delays of this prober
	// A probe already in flight when the monitor went may still land (one per node).
	if now := a.requests.Load() + b.requests.Load(); now-seen > 2 {
		t.Errorf("%d probes after the monitor went", now-seen)
	}

	// Back on; then the node's removal and the load balancer's deletion stop them.
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		l.HealthMonitor = hm
		return tx.SaveLoadBalancer(l)
	})
	waitFor(t, "probes again", func() bool { return p.Targets() == 2 })
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		if err := tx.DeleteNodes(l, []uint32{l.Nodes[1].ID}); err != nil {
			return err
		}
		return tx.SaveLoadBalancer(l)
	})
	waitFor(t, "one probe", func() bool { return p.Targets() == 1 })
	change(func(l *store.LoadBalancer, tx *store.Tx) error {
		l.Status = store.StatusPendingDelete
		return tx.SaveLoadBalancer(l)
	})
	waitFor(t, "no probes", func() bool { return p.Targets() == 0 })
}

// A probe that finishes after its monitor was removed writes nothing: the
// removal put the nodes back ONLINE and that must stand.
func TestSetNodeStatusAfterTheMonitorWent(t *testing.T) {
	st := openStore(t, "")
	lb := createLB(t, st, nil, node("127.0.0.1", 80))
	changed, err := st.SetNodeStatus(context.Background(), lb.ID, lb.Nodes[0].ID, Offline, "late")
	if err != nil || changed {
		t.Errorf("SetNodeStatus without a monitor: %v, %v; want nothing written", changed, err)
	}
	if got := nodeStatus(t, st, lb.ID, lb.Nodes[0].ID); got != Online {
		t.Errorf("node is %s", got)
	}
	if evs := events(t, st, lb.ID); len(evs) != 0 {
		t.Errorf("events %+v", evs)
	}
}

// No more probes run at once than Concurrency allows.
func TestProberBoundsConcurrentProbes(t *testing.T) {
	st := openStore(t, "")
	var inFlight, most atomic.Int32
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		mu.Lock()
		most.Store(max(most.Load(), n))
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		inFlight.Add(-1)
	}))
	t.Cleanup(srv.Close)
	address, port := hostPort(t, srv.URL)
	hm := &store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 5, AttemptsBeforeDeactivation: 1, Path: "/", StatusRegex: "^200$"}
	// Eight nodes (distinct by id; the store does not check duplicates) on one server.
	var nodes []store.Node
	for range 8 {
		nodes = append(nodes, node(address, port))
	}
	createLB(t, st, hm, nodes...)
	p := startProber(t, st, Options{Concurrency: 2})
	waitFor(t, "every node probed", func() bool { return p.Targets() == 8 })
	time.Sleep(400 * time.Millisecond)
	if m := most.Load(); m > 2 || m == 0 {
		t.Errorf("at most %d probes ran at once, want 1..2", m)
	}
}

// On PostgreSQL the replicas that probe share the shards, each through
// its advisory lock: every node is probed by exactly one replica; when one
// stops, another takes its shards over.
func TestProbersShareTheShards(t *testing.T) {
	url := pgtest.NewDatabase(t)
	st1, st2 := openStore(t, url), openStore(t, url)
	ctx := context.Background()

	locks1, err := st1.AdvisoryLocks(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := locks1.TryLock(ctx, 42); err != nil || !ok {
		t.Fatalf("first TryLock: %v, %v", ok, err)
	}
	if err := locks1.Check(ctx); err != nil {
		t.Errorf("Check of a held lock: %v", err)
	}
	locks2, err := st2.AdvisoryLocks(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := locks2.TryLock(ctx, 42); err != nil || ok {
		t.Fatalf("second TryLock: %v, %v; want refused", ok, err)
	}
	if err := locks1.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := locks2.TryLock(ctx, 42); err != nil || !ok {
		t.Fatalf("TryLock after release: %v, %v", ok, err)
	}
	_ = locks2.Close()

	// Two live replicas that probe: 8 shards each.
	for _, id := range []string{"one", "two"} {
		if _, err := st1.RegisterReplica(ctx, id, time.Minute, true); err != nil {
			t.Fatal(err)
		}
	}
	hm := &store.HealthMonitor{Type: "CONNECT", Delay: 1, Timeout: 1, AttemptsBeforeDeactivation: 1}
	for range 6 {
		createLB(t, st1, hm, node("127.0.0.1", acceptor(t))) // ids 1..6: six shards
	}
	p1 := startProber(t, st1, Options{})
	ctx2, stop2 := context.WithCancel(ctx)
	p2 := New(st2, Options{Poll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	p2.unit = 100 * time.Millisecond
	done2 := make(chan struct{})
	go func() { defer close(done2); p2.Run(ctx2) }()
	t.Cleanup(func() { stop2(); <-done2 })
	waitFor(t, "8 shards each", func() bool { return p1.Shards() == 8 && p2.Shards() == 8 })
	waitFor(t, "every node probed", func() bool { return p1.Targets()+p2.Targets() == 6 })
	p1.mu.Lock()
	p2.mu.Lock()
	for id := range p1.targets {
		if p2.targets[id] != nil {
			t.Errorf("node %d is probed by both replicas", id)
		}
	}
	p2.mu.Unlock()
	p1.mu.Unlock()

	// The second stops (its lease ends): the first takes every shard.
	stop2()
	<-done2
	if err := st1.RemoveReplica(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first replica taking over", func() bool { return p1.Shards() == Shards && p1.Targets() == 6 })

	// When the locks' session dies (the database restarted, a network
	// cut), the replica stops probing and takes the locks again.
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holder := func() (pid int) {
		_ = db.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND ((classid::bigint << 32) | objid::bigint) = $1`, ShardKey(1)).Scan(&pid)
		return pid
	}
	first := holder()
	if first == 0 {
		t.Fatal("nobody holds shard 1")
	}
	if _, err := db.Exec("SELECT pg_terminate_backend($1)", first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the locks taken again", func() bool { pid := holder(); return pid != 0 && pid != first })
	waitFor(t, "probing again", func() bool { return p1.Targets() == 6 })
}

// acceptor is a TCP port on loopback that accepts connections (and closes
// them): a node that passes CONNECT checks.
func acceptor(t *testing.T) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}
