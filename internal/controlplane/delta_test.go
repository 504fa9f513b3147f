package controlplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/xds"
)

// deltaBytes serves n load balancers over delta ADS on loopback, lets a
// wildcard cluster subscriber take the initial state, changes one load
// balancer and returns the size of the delta response that follows, and
// the size of the initial one.
func deltaBytes(tb testing.TB, n int) (change, initial int) {
	p, lbs := loaded(tb, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := grpc.NewClient(serveXDS(tb, p), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	node := &corev3.Node{Id: "delta", Cluster: "default", UserAgentName: "envoy"}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		tb.Fatal(err)
	}
	first, err := recvWithin(stream, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	if got := len(first.GetResources()); got != n {
		tb.Fatalf("initial delta response has %d clusters, want %d", got, n)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: first.GetNonce()}); err != nil {
		tb.Fatal(err)
	}
	lb := lbs[n/2]
	lb.Revision, lb.ConnectionLogging = 2, true
	lb.Timeout = 99 // not in the cluster: must not be sent
	lb.Algorithm = "LEAST_CONNECTIONS"
	updates := map[xds.Group]*xds.Update{}
	p.stage(lb, updates)
	if err := p.cache.Apply(2, updates); err != nil {
		tb.Fatal(err)
	}
	next, err := recvWithin(stream, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	if len(next.GetResources()) != 1 || next.GetResources()[0].GetName() != fmt.Sprintf("lb_%d", lb.ID) {
		tb.Fatalf("delta after one change carries %d resources", len(next.GetResources()))
	}
	return proto.Size(next), proto.Size(first)
}

func recvWithin(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, d time.Duration) (*discoveryv3.DeltaDiscoveryResponse, error) {
	type result struct {
		r   *discoveryv3.DeltaDiscoveryResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := s.Recv()
		ch <- result{r, err}
	}()
	select {
	case r := <-ch:
		return r.r, r.err
	case <-time.After(d):
		return nil, context.DeadlineExceeded
	}
}

// A delta client gets only the changed load balancer's cluster, whatever
// the number of load balancers.
func TestDeltaBytesDoNotGrowWithLoadBalancers(t *testing.T) {
	small, smallInitial := deltaBytes(t, 10)
	large, largeInitial := deltaBytes(t, 10_000)
	t.Logf("delta response for one change: %d bytes among 10 load balancers, %d among 10,000 (initial state: %d and %d bytes)",
		small, large, smallInitial, largeInitial)
	if large-small > 16 || small-large > 16 {
		t.Errorf("one change costs %d bytes among 10 load balancers but %d among 10,000", small, large)
	}
}
