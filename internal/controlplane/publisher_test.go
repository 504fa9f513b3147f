package controlplane

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/24")
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "db"), Pools: pools,
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
