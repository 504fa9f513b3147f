package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

// Envoy-like clients of both modes, against a real lbaasd (in process, on
// SQLite and loopback), sync the whole fleet and see each kind of change
// by its content.
func TestEnvoyClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pools, err := store.ParsePools("PUBLIC=127.64.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	limits := api.DefaultLimits
	limits.LoadBalancers = 100
	srv, err := server.Start(ctx, server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0",
		DatabaseURL: filepath.Join(t.TempDir(), "db"), Fleet: fleet, Pools: pools, Limits: limits,
		TokenTTL: time.Hour, DisableHealthChecks: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.HTTPAddr.String()
	key, err := srv.Auth.CreateUser(ctx, "load", "load", "")
	if err != nil {
		t.Fatal(err)
	}
	token, err := requestToken(ctx, base, "load", key)
	if err != nil {
		t.Fatal(err)
	}
	rest := &restClient{base: base, token: token, client: &http.Client{}}

	// Nodes on loopback ports nothing listens on: nothing is sent to them.
	const lbs = 20
	ids, err := createAll(ctx, rest, config{loadBalancers: lbs, workers: 4}, []int{10001, 10002, 10003})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = translator.ResourceName(uint32(id))
	}
	target := ids[lbs/2]
	if err := rest.waitActive(ctx, target); err != nil {
		t.Fatal(err)
	}
	ch, err := newChanger(ctx, rest, target)
	if err != nil {
		t.Fatal(err)
	}

	modes := []string{modeDelta, modeSotW}
	f := startFleet(ctx, []string{srv.XDSAddr.String()}, fleet, modes, 3, want, 0)
	defer f.stop()
	if err := f.waitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	res := newResults()
	syncTimes(f, res)
	for _, m := range modes {
		for i, d := range res.sync[m] {
			if d <= 0 {
				t.Errorf("%s client %d: sync time %s", m, i, d)
			}
		}
	}
	kinds := []string{changeNode, changeAlgorithm}
	if err := timeChanges(ctx, f, ch, kinds, 4, res); err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		for _, k := range kinds {
			if got := len(res.convergence[m][k]); got != 2 {
				t.Errorf("%s %s: %d convergence times, want 2", m, k, got)
			}
			for _, d := range res.convergence[m][k] {
				if d <= 0 || d > changeTimeout {
					t.Errorf("%s %s: convergence %s", m, k, d)
				}
			}
			if got := len(res.bytes[m][k]); got != 2*3 {
				t.Errorf("%s %s: %d byte counts, want 6", m, k, got)
			}
			for _, b := range res.bytes[m][k] {
				if b <= 0 {
					t.Errorf("%s %s: a client received %d bytes for a change", m, k, b)
				}
			}
		}
		if total, _, last := f.resets(m); total != 0 {
			t.Errorf("%s: %d stream resets (last: %s)", m, total, last)
		}
	}
	// A delta client gets the changed resource only; a state-of-the-world
	// client gets every cluster for a cluster change.
	maxOf := func(b []int64) (m int64) {
		for _, v := range b {
			m = max(m, v)
		}
		return m
	}
	minOf := func(b []int64) int64 {
		m := b[0]
		for _, v := range b {
			m = min(m, v)
		}
		return m
	}
	if d, s := maxOf(res.bytes[modeDelta][changeAlgorithm]), minOf(res.bytes[modeSotW][changeAlgorithm]); d*5 > s {
		t.Errorf("a cluster change cost a delta client up to %d bytes and a SotW client at least %d: want SotW to carry all %d clusters", d, s, lbs)
	}
	printResults(f, res, kinds)

	// The daemon's figures come from /proc (here, this process's).
	stats, err := newProcStats(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss, peak, err := stats.memory(); err != nil || rss == 0 || peak < rss {
		t.Errorf("memory: RSS %d, peak %d, %v", rss, peak, err)
	}
	if cpu, err := stats.cpu(); err != nil || cpu <= 0 {
		t.Errorf("CPU seconds %v, %v", cpu, err)
	}
}

// A stream that fails before the client is in sync is counted as such.
func TestEnvoyClientCountsResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // not an xDS server: every connection is closed at once
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, delta := range []bool{false, true} {
		c := newEnvoyClient(envoyClientConfig{addr: ln.Addr().String(), fleet: fleet, id: "resets", delta: delta, want: []string{"lb_1"}})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c.run(ctx)
		cancel()
		total, beforeSync := c.resets.Load(), c.syncResets.Load()
		if total == 0 || beforeSync != total || c.syncTime() != 0 {
			t.Errorf("delta %v: %d resets, %d before sync, sync time %s", delta, total, beforeSync, c.syncTime())
		}
	}
}

// The held state follows SotW full state for clusters, merges endpoints,
// and subscribes and unsubscribes endpoint names as clusters come and go.
func TestHeldSubscriptions(t *testing.T) {
	h := newHeld()
	cl := func(name string) update {
		return update{name: name, res: mustAny(t, edsCluster(name))}
	}
	sub, unsub, err := h.apply(resource.ClusterType, []update{cl("lb_1"), cl("lb_2")}, nil, true)
	if err != nil || len(sub) != 2 || len(unsub) != 0 {
		t.Fatalf("first clusters: sub %v unsub %v err %v", sub, unsub, err)
	}
	sub, unsub, err = h.apply(resource.ClusterType, []update{cl("lb_2"), cl("lb_3")}, nil, true)
	if err != nil || len(sub) != 1 || sub[0] != "lb_3" || len(unsub) != 1 || unsub[0] != "lb_1" {
		t.Fatalf("lb_1 gone, lb_3 new: sub %v unsub %v err %v", sub, unsub, err)
	}
	if _, ok := h.res[resource.ClusterType]["lb_1"]; ok {
		t.Error("lb_1 still held after a full state without it")
	}
	if got := h.subscribed(resource.EndpointType); len(got) != 2 || got[0] != "lb_2" || got[1] != "lb_3" {
		t.Errorf("endpoint subscription %v, want [lb_2 lb_3]", got)
	}
	// Listeners wait for the endpoints of every cluster; endpoints merge.
	cla := func(name string) update {
		return update{name: name, res: mustAny(t, &endpointv3.ClusterLoadAssignment{ClusterName: name})}
	}
	if _, _, err := h.apply(resource.EndpointType, []update{cla("lb_2")}, nil, false); err != nil || h.clustersWarm() {
		t.Errorf("warm with lb_3's endpoints missing (%v)", err)
	}
	if _, _, err := h.apply(resource.EndpointType, []update{cla("lb_3")}, nil, false); err != nil || !h.clustersWarm() {
		t.Errorf("not warm with every cluster's endpoints (%v)", err)
	}
	if _, ok := h.res[resource.EndpointType]["lb_2"]; !ok {
		t.Error("lb_2's endpoints dropped by a response carrying lb_3's only")
	}
}

// Like Envoy, the held state subscribes to the filter configurations
// (ECDS) a listener names, and to the routes an HTTP connection manager
// configured over ECDS names; the client is in sync only with all of them.
func TestHeldFollowsFilterConfigurationsToRoutes(t *testing.T) {
	out, err := translator.Translate(&translator.LoadBalancer{ID: 1, Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
		VIPs: []translator.VIP{{Address: "127.1.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHeld()
	upsert := func(typeURL string, ups []update) []string {
		t.Helper()
		sub, _, err := h.apply(typeURL, ups, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	upsert(resource.ClusterType, []update{{"lb_1", mustAny(t, out.Envoy.Clusters[0])}})
	upsert(resource.EndpointType, []update{{"lb_1", mustAny(t, out.Envoy.Endpoints[0])}})
	sub := upsert(resource.ListenerType, []update{{"lb_1", mustAny(t, out.Envoy.Listeners[0])}})
	if want := []string{"lb_1_http"}; !slices.Equal(sub, want) {
		t.Fatalf("the listener subscribes %v, want %v", sub, want)
	}
	var filters []update
	for _, e := range out.Envoy.Extensions {
		filters = append(filters, update{e.GetName(), mustAny(t, e)})
	}
	if sub := upsert(resource.ExtensionConfigType, filters); !slices.Equal(sub, []string{"lb_1"}) {
		t.Fatalf("the filter configurations subscribe routes %v, want [lb_1]", sub)
	}
	if h.complete([]string{"lb_1"}) {
		t.Error("in sync without the route")
	}
	upsert(resource.RouteType, []update{{"lb_1", mustAny(t, out.Envoy.Routes[0])}})
	if !h.complete([]string{"lb_1"}) {
		t.Error("not in sync with everything")
	}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name}}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
