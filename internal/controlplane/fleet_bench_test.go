package controlplane

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// serveXDS serves p's cache and tracker on loopback as lbaasd does, until
// the test ends, and returns the address.
func serveXDS(tb testing.TB, p *Publisher) string {
	ctx, cancel := context.WithCancel(context.Background())
	srv := grpc.NewServer(xds.ServerOptions(p.cache, p.tracker)...)
	xds.Register(ctx, srv, p.cache, p.tracker)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { cancel(); srv.Stop() })
	return ln.Addr().String()
}

// wildcardFleet serves p over loopback to Envoy-like clients that
// subscribe to every cluster and every endpoint (delta or state of the
// world), acknowledge every response, and report each endpoint response
// on the returned channel once they have acknowledged it.
func wildcardFleet(b testing.TB, p *Publisher, lbs []*store.LoadBalancer, clients int, delta bool) <-chan struct{} {
	addr := serveXDS(b, p)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	names := make([]string, len(lbs))
	for i, lb := range lbs {
		names[i] = fmt.Sprintf("lb_%d", lb.ID)
	}
	got := make(chan struct{}, clients*4)
	synced := make(chan struct{}, clients)
	for i := range clients {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		node := &corev3.Node{Id: fmt.Sprint("envoy-", i), Cluster: "default", UserAgentName: "envoy"}
		ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
		if delta {
			go deltaEnvoy(ctx, ads, node, names, got, synced)
		} else {
			go sotwEnvoy(ctx, ads, node, names, got, synced)
		}
	}
	for range clients {
		select {
		case <-synced:
		case <-time.After(2 * time.Minute):
			b.Fatal("clients did not sync")
		}
	}
	return got
}

func deltaEnvoy(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, names []string, got, synced chan<- struct{}) {
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return
	}
	_ = st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType})
	_ = st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.EndpointType, ResourceNamesSubscribe: names})
	edsSeen := false
	for {
		r, err := st.Recv()
		if err != nil {
			return
		}
		_ = st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()})
		if r.GetTypeUrl() == resource.EndpointType {
			if !edsSeen {
				edsSeen = true
				synced <- struct{}{}
				continue
			}
			got <- struct{}{}
		}
	}
}

func sotwEnvoy(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, names []string, got, synced chan<- struct{}) {
	st, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return
	}
	_ = st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType})
	_ = st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.EndpointType, ResourceNames: names})
	edsSeen := false
	for {
		r, err := st.Recv()
		if err != nil {
			return
		}
		req := &discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(), VersionInfo: r.GetVersionInfo()}
		if r.GetTypeUrl() == resource.EndpointType {
			req.ResourceNames = names
		}
		_ = st.Send(req)
		if r.GetTypeUrl() == resource.EndpointType {
			if !edsSeen {
				edsSeen = true
				synced <- struct{}{}
				continue
			}
			got <- struct{}{}
		}
	}
}

// fleetChange makes one node change (endpoints only) of a load balancer
// among those p holds and waits until every client has received and
// acknowledged it.
type fleetChange struct {
	p       *Publisher
	lb      *store.LoadBalancer
	got     <-chan struct{}
	clients int
	rev     int64
}

func newFleetChange(b testing.TB, n, clients int, delta bool) *fleetChange {
	p, lbs := loaded(b, n)
	return &fleetChange{p: p, lb: lbs[n/2], got: wildcardFleet(b, p, lbs, clients, delta), clients: clients, rev: 1}
}

func (f *fleetChange) once(b testing.TB) {
	f.rev++
	f.lb.Nodes[0].Weight = uint32(f.rev%100) + 1
	f.lb.Revision = f.rev
	updates := map[xds.Group]*xds.Update{}
	f.p.mu.Lock()
	f.p.stage(f.lb, updates)
	f.p.mu.Unlock()
	if err := f.p.cache.Apply(f.rev, updates); err != nil {
		b.Fatal(err)
	}
	for range f.clients {
		<-f.got
	}
}

// benchmarkFleetChange measures one node change among n load balancers,
// from the publisher's staging to the moment all wildcard clients have
// received and acknowledged it.
func benchmarkFleetChange(b *testing.B, n, clients int, delta bool) {
	f := newFleetChange(b, n, clients, delta)
	b.ResetTimer()
	for b.Loop() {
		f.once(b)
	}
}

func BenchmarkFleetChangeDelta50Among100(b *testing.B)   { benchmarkFleetChange(b, 100, 50, true) }
func BenchmarkFleetChangeDelta50Among10000(b *testing.B) { benchmarkFleetChange(b, 10_000, 50, true) }
func BenchmarkFleetChangeSotW50Among100(b *testing.B)    { benchmarkFleetChange(b, 100, 50, false) }
func BenchmarkFleetChangeSotW50Among10000(b *testing.B)  { benchmarkFleetChange(b, 10_000, 50, false) }

// BenchmarkFleetChangeRatio fails when one change among 10,000 load
// balancers costs more than 1.5 times the same change among 100, with 50
// Envoy-like delta wildcard clients connected (the median of 200 changes
// each). State-of-the-world clients are timed too, not held to the ratio:
// every acknowledgement carries the client's whole subscription (10,000
// endpoint names), which the server must read and index.
func BenchmarkFleetChangeRatio(b *testing.B) {
	median := func(n int, delta bool) time.Duration {
		f := newFleetChange(b, n, 50, delta)
		for range 10 {
			f.once(b) // warm up
		}
		times := make([]time.Duration, 200)
		for i := range times {
			start := time.Now()
			f.once(b)
			times[i] = time.Since(start)
		}
		slices.Sort(times)
		return times[len(times)/2]
	}
	for b.Loop() {
		small, large := median(100, true), median(10_000, true)
		ratio := float64(large) / float64(small)
		b.Logf("delta: one change to 50 wildcard clients: %v among 100, %v among 10,000 (×%.2f)", small, large, ratio)
		if ratio > 1.5 {
			b.Errorf("delta: one change among 10,000 load balancers costs ×%.2f the same among 100 (limit ×1.5)", ratio)
		}
		small, large = median(100, false), median(10_000, false)
		b.Logf("state of the world: %v among 100, %v among 10,000 (×%.2f; not held to the ratio)", small, large, float64(large)/float64(small))
	}
}
