package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "db"))
}

func openStoreAt(t *testing.T, url string) *store.Store {
	t.Helper()
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/24")
	st, err := store.Open(context.Background(), store.Options{URL: url, Pools: pools,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// insert stores a load balancer as the API would, with a given status and
// a node on port nodePort.
func insert(t *testing.T, st *store.Store, status string, nodePort uint32) uint32 {
	t.Helper()
	var id uint32
	_, err := st.Update(context.Background(), func(tx *store.Tx) error {
		lb := &store.LoadBalancer{Account: "1", Name: "x", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
			Status: status, Timeout: 30, Fleet: "default",
			Nodes: []store.Node{{Address: "10.0.0.1", Port: nodePort, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Status: "ONLINE"}}}
		v, err := tx.AllocateVirtualIP("1", "PUBLIC", "IPV4")
		if err != nil {
			return err
		}
		lb.VirtualIPs = []store.VirtualIP{*v}
		if err := tx.CreateLoadBalancer(lb); err != nil {
			return err
		}
		id = lb.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitStatus(t *testing.T, st *store.Store, id uint32, want string) *store.LoadBalancer {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lb, err := st.LoadBalancerByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if lb.Status == want {
			return lb
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer %d is %s (%s), want %s", id, lb.Status, lb.StatusDescription, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// After a restart, the publisher publishes what the store holds and
// settles the changes that were waiting for the data plane.
func TestStartPublishesTheStoreAndSettlesWaitingChanges(t *testing.T) {
	st := openStore(t)
	building := insert(t, st, store.StatusBuild, 80)
	deleting := insert(t, st, store.StatusPendingDelete, 80)
	active := insert(t, st, store.StatusActive, 80)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	waitStatus(t, st, building, store.StatusActive)
	waitStatus(t, st, deleting, store.StatusDeleted)

	listeners := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindEnvoy}, resource.ListenerType)
	for _, id := range []uint32{building, active} {
		if _, ok := listeners["lb_"+itoa(id)]; !ok {
			t.Errorf("lb_%d is not published (have %d listeners)", id, len(listeners))
		}
	}
	if _, ok := listeners["lb_"+itoa(deleting)]; ok {
		t.Error("a load balancer being deleted is published")
	}
	grpcListeners := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindGRPC}, resource.ListenerType)
	if len(grpcListeners) != 2 {
		t.Errorf("proxyless clients get %d API listeners, want 2", len(grpcListeners))
	}
}

// A load balancer the translator cannot render (here a node on port 0,
// written behind the API's back) goes to ERROR with the reason.
func TestUntranslatableLoadBalancerIsError(t *testing.T) {
	st := openStore(t)
	id := insert(t, st, store.StatusBuild, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	lb := waitStatus(t, st, id, store.StatusError)
	if !strings.Contains(lb.StatusDescription, "no usable address") {
		t.Errorf("statusDescription %q", lb.StatusDescription)
	}
}

func TestWithdrawn(t *testing.T) {
	k := xds.Key{TypeURL: resource.ClusterType, Name: "lb_1"}
	res := func(name string) map[xds.Key]*anypb.Any {
		a, err := xds.Marshal(&clusterv3.Cluster{Name: "lb_1", AltStatName: name})
		if err != nil {
			t.Fatal(err)
		}
		return map[xds.Key]*anypb.Any{k: a}
	}
	prev := &resources{fleet: "f", byKind: map[xds.Kind]map[xds.Key]*anypb.Any{xds.KindEnvoy: res("new"), xds.KindGRPC: res("new")}}
	good := &resources{fleet: "f", byKind: map[xds.Kind]map[xds.Key]*anypb.Any{xds.KindEnvoy: res("old"), xds.KindGRPC: res("old")}}

	next := withdrawn(prev, good, xds.KindGRPC)
	if !sameResources(next.byKind[xds.KindGRPC], good.byKind[xds.KindGRPC]) {
		t.Error("the refusing kind does not get the last accepted resources back")
	}
	if !sameResources(next.byKind[xds.KindEnvoy], prev.byKind[xds.KindEnvoy]) {
		t.Error("the other kind lost its resources")
	}
	if next := withdrawn(prev, prev, xds.KindGRPC); len(next.byKind[xds.KindGRPC]) != 0 {
		t.Error("refused resources that were the accepted ones stay published")
	}
	if next := withdrawn(prev, nil, xds.KindEnvoy); len(next.byKind[xds.KindEnvoy]) != 0 {
		t.Error("a load balancer never accepted keeps its refused resources")
	}
}

func itoa(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

// setPort moves a load balancer to PENDING_UPDATE with a new port, as an
// API update would.
func setPort(t *testing.T, st *store.Store, id, port uint32) {
	t.Helper()
	pendingUpdate(t, st, id, func(lb *store.LoadBalancer) { lb.Port = port })
}

// pendingUpdate changes a load balancer and moves it to PENDING_UPDATE,
// as an API update would.
func pendingUpdate(t *testing.T, st *store.Store, id uint32, change func(*store.LoadBalancer)) {
	t.Helper()
	_, err := st.Update(context.Background(), func(tx *store.Tx) error {
		lb, err := tx.LoadBalancer("1", id)
		if err != nil {
			return err
		}
		change(lb)
		lb.Status = store.StatusPendingUpdate
		return tx.SaveLoadBalancer(lb)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func listenerPort(t *testing.T, p *Publisher, id uint32) uint32 {
	t.Helper()
	l, ok := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindEnvoy}, resource.ListenerType)["lb_"+itoa(id)].(*listenerv3.Listener)
	if !ok {
		t.Fatalf("lb_%d has no listener", id)
	}
	return l.GetAddress().GetSocketAddress().GetPortValue()
}

// onBothBackends runs a test on SQLite and on a throwaway PostgreSQL.
func onBothBackends(t *testing.T, test func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openStore(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, openStoreAt(t, pgtest.NewDatabase(t))) })
}

// Reading one of several changed load balancers fails part-way through a
// sync: nothing of that revision is published or remembered, and the
// next attempt publishes all of them (before, the ones read first were
// remembered as published though the cache never got them).
func TestPartlyFailedSyncPublishesNothing(t *testing.T) {
	onBothBackends(t, partlyFailedSync)
}

func partlyFailedSync(t *testing.T, st *store.Store) {
	a, b := insert(t, st, store.StatusActive, 80), insert(t, st, store.StatusActive, 80)
	ctx := context.Background()
	p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	before := p.revision
	setPort(t, st, a, 81)
	setPort(t, st, b, 82)
	p.load = func(ctx context.Context, ids []uint32) ([]*store.LoadBalancer, error) {
		if _, err := st.LoadBalancersByID(ctx, ids[:1]); err != nil {
			return nil, err
		}
		return nil, errors.New("connection reset")
	}
	if p.sync(ctx) {
		t.Fatal("a sync whose read failed reports success")
	}
	if p.revision != before {
		t.Fatalf("the published revision advanced from %d to %d though nothing was published", before, p.revision)
	}
	if pa, pb := listenerPort(t, p, a), listenerPort(t, p, b); pa != 80 || pb != 80 {
		t.Fatalf("after the failed sync the cache has ports %d and %d, want 80 and 80", pa, pb)
	}
	p.load = st.LoadBalancersByID
	if !p.sync(ctx) || !p.recordVerdicts(ctx) {
		t.Fatal("the retry failed")
	}
	if pa, pb := listenerPort(t, p, a), listenerPort(t, p, b); pa != 81 || pb != 82 {
		t.Fatalf("after the retry the cache has ports %d and %d, want 81 and 82", pa, pb)
	}
	waitStatus(t, st, a, store.StatusActive)
	waitStatus(t, st, b, store.StatusActive)
}

// countingHandler counts the log records at warning level and above.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}

// With the database gone, recording verdicts is retried with a capped
// exponential backoff, not in a tight loop (before: 42,000 log lines in
// half a second).
func TestStoreFailureIsRetriedWithBackoff(t *testing.T) {
	onBothBackends(t, retriedWithBackoff)
}

func retriedWithBackoff(t *testing.T, st *store.Store) {
	id := insert(t, st, store.StatusBuild, 80)
	var lines atomic.Int64
	log := slog.New(countingHandler{Handler: slog.NewTextHandler(io.Discard, nil), n: &lines})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(ctx, st, Options{DefaultFleet: "default"}, log)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close() // the verdict for the BUILD load balancer cannot be written
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	p.queue(outcome{lb: id, revision: 1})
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-done
	// 100 ms doubling with jitter: at most a handful of attempts in 0.5 s.
	if n := lines.Load(); n < 1 || n > 10 {
		t.Fatalf("%d warnings in 0.5 s with the database closed, want 1 to 10", n)
	}
	p.mu.Lock()
	kept := len(p.verdicts)
	p.mu.Unlock()
	if kept == 0 {
		t.Fatal("the verdicts that could not be written were dropped")
	}
}
