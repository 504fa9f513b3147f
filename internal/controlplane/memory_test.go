package controlplane

import (
	"runtime"
	"testing"

	"github.com/openlbaas/lbaas/store"
)

func liveHeap() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// What the control plane holds per load balancer (translated, marshalled
// once, in the publisher and the cache) and per connected Envoy-like
// wildcard client, at 10,000 load balancers.
func TestMemoryPerLoadBalancerAndPerClient(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING the 10,000 load balancer memory test in -short mode")
	}
	const lbs, clients = 10_000, 50
	before := liveHeap()
	p, stored := loaded(t, lbs)
	// The stored models are the test's input (the daemon reads them from
	// the database in batches): keep only their ids.
	ids := make([]*store.LoadBalancer, len(stored))
	for i, lb := range stored {
		ids[i] = &store.LoadBalancer{ID: lb.ID}
	}
	stored = nil
	withLBs := liveHeap()
	perLB := float64(withLBs-before) / lbs
	// A first client builds what every client shares (the encoded full
	// states); the next ones cost only themselves.
	wildcardFleet(t, p, 1, true)
	withShared := liveHeap()
	wildcardFleet(t, p, clients, true)
	withClients := liveHeap()
	perClient := float64(withClients-withShared) / clients
	t.Logf("shared by all clients (the full states encoded once): %.1f MB", float64(withShared-withLBs)/(1<<20))
	t.Logf("live heap: %.1f KB per load balancer (%d load balancers, no client); %.1f KB per delta wildcard client (%d clients, client side included)",
		perLB/1024, lbs, perClient/1024, clients)
	if perLB > 15*1024 {
		t.Errorf("%.1f KB per load balancer, want at most 15 KB", perLB/1024)
	}
	// A client's cost is go-control-plane's own record of the names it
	// subscribed to (the cache keeps one number per type, and the names'
	// bytes are shared: xds/codec.go interns them): an entry of a Go map
	// per name. Much more per name would mean a copy of resources per
	// client crept back in (the smallest resource is ~100 bytes).
	names := 0
	for _, n := range envoySubscriptions(p) {
		names += len(n)
	}
	perName := perClient / float64(names)
	t.Logf("%d names subscribed by name per client: %.0f bytes per name", names, perName)
	if perName > 64 {
		t.Errorf("%.0f bytes per subscribed name and client, want at most 64", perName)
	}
	runtime.KeepAlive(p)
	runtime.KeepAlive(ids)
}
