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
// subscribe as Envoy does: every cluster and listener (wildcard), then by
// name every endpoint, route and filter configuration (ECDS) those name —
// here, every one the cache holds. They acknowledge every response (delta
// or state of the world) and report each endpoint response on the returned
// channel once they have acknowledged it.
func wildcardFleet(b testing.TB, p *Publisher, clients int, delta bool) <-chan struct{} {
	addr := serveXDS(b, p)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	named := envoySubscriptions(p)
	if len(named[resource.EndpointType]) == 0 || len(named[resource.ExtensionConfigType]) == 0 {
		b.Fatalf("the cache holds %d endpoint and %d filter configurations: nothing to subscribe to",
			len(named[resource.EndpointType]), len(named[resource.ExtensionConfigType]))
	}
	got := make(chan struct{}, clients*4)
	synced := make(chan struct{}, clients)
	for i := range clients {
		// Envoy's gRPC client takes messages of any size (a full state of
		// filter configurations is over 12 MB here); grpc-go's default is 4 MB.
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		node := &corev3.Node{Id: fmt.Sprint("envoy-", i), Cluster: "default", UserAgentName: "envoy"}
		ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
		if delta {
			go deltaEnvoy(ctx, ads, node, named, got, synced)
		} else {
			go sotwEnvoy(ctx, ads, node, named, got, synced)
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

// envoySubscriptions are the names an Envoy of the default fleet
// subscribes to, by type: every endpoint, route and filter configuration
// (its listeners and clusters name them all).
func envoySubscriptions(p *Publisher) map[string][]string {
	named := map[string][]string{}
	for _, typeURL := range []string{resource.EndpointType, resource.ExtensionConfigType, resource.RouteType} {
		for name := range p.cache.Resources(xds.Group{Fleet: "default", Kind: xds.KindEnvoy}, typeURL) {
			named[typeURL] = append(named[typeURL], name)
		}
	}
	return named
}

// envoyTypes are the types an Envoy subscribes to: clusters and listeners
// by wildcard, the rest by the names they give.
var envoyTypes = []string{resource.ClusterType, resource.EndpointType, resource.ExtensionConfigType, resource.ListenerType, resource.RouteType}

func deltaEnvoy(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, named map[string][]string, got, synced chan<- struct{}) {
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return
	}
	for _, typeURL := range envoyTypes {
		_ = st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: named[typeURL]})
	}
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

func sotwEnvoy(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, named map[string][]string, got, synced chan<- struct{}) {
	st, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return
	}
	for _, typeURL := range envoyTypes {
		_ = st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: named[typeURL]})
	}
	edsSeen := false
	for {
		r, err := st.Recv()
		if err != nil {
			return
		}
		req := &discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(), VersionInfo: r.GetVersionInfo(),
			ResourceNames: named[r.GetTypeUrl()]}
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
	return &fleetChange{p: p, lb: lbs[n/2], got: wildcardFleet(b, p, clients, delta), clients: clients, rev: 1}
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
