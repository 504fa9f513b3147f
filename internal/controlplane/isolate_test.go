package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statusv1 "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// pickyEnvoy is an Envoy-like state-of-the-world client that refuses any
// cluster state holding a LEAST_REQUEST cluster, with an error naming
// nothing, and acknowledges everything else; metadata is its node's (nil
// for none).
func pickyEnvoy(t *testing.T, addr string, names []string, metadata *structpb.Struct) {
	st, subscriptions := envoyStream(t, addr, "picky", names, metadata)
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			req := &discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(),
				VersionInfo: r.GetVersionInfo(), ResourceNames: subscriptions[r.GetTypeUrl()]}
			for _, a := range r.GetResources() {
				var c clusterv3.Cluster
				if a.MessageIs(&c) && a.UnmarshalTo(&c) == nil && c.GetLbPolicy() == clusterv3.Cluster_LEAST_REQUEST {
					req.ErrorDetail = &statusv1.Status{Code: 3, Message: "Proto constraint validation failed: unsupported policy"}
				}
			}
			if err := st.Send(req); err != nil {
				return
			}
		}
	}()
}

// envoyStream opens an Envoy's state-of-the-world ADS stream to addr (node
// id, fleet default): wildcard clusters and listeners, the endpoints and
// routes of names. It returns the stream and the subscription per type.
func envoyStream(t *testing.T, addr, id string, names []string, metadata *structpb.Struct) (discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, map[string][]string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: id, Cluster: "default", UserAgentName: "envoy", Metadata: metadata}
	subscriptions := map[string][]string{
		resource.ClusterType: nil, resource.ListenerType: nil, resource.EndpointType: names, resource.RouteType: names,
	}
	for _, typeURL := range xds.TypeOrder {
		if typeURL == resource.SecretType {
			continue // an Envoy asks for the secrets a listener names (none here)
		}
		if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: subscriptions[typeURL]}); err != nil {
			t.Fatal(err)
		}
	}
	return st, subscriptions
}

// pickyTypes are the types pickyEnvoy subscribes to: all but secrets.
var pickyTypes = len(xds.TypeOrder) - 1

// An Envoy-shaped NACK that names nothing, of a response carrying two
// changes: the control plane tries each alone, puts exactly the refused
// one in ERROR and applies the other.
func TestNamelessNACKIsIsolated(t *testing.T) {
	onBothBackends(t, namelessNACKIsIsolated)
}

func namelessNACKIsIsolated(t *testing.T, st *store.Store) {
	x, y := insert(t, st, store.StatusActive, 80), insert(t, st, store.StatusActive, 80)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logged strings.Builder
	var mu sync.Mutex
	p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveXDS(t, p)
	go p.Run(ctx)
	pickyEnvoy(t, addr, []string{"lb_" + itoa(x), "lb_" + itoa(y)}, nil)
	waitFor(t, func() bool {
		return len(p.Tracker().ClientList()) == 1 && len(p.Tracker().ClientList()[0].Types) == pickyTypes
	})

	// Both change in one revision, so one cluster response carries both.
	_, err = st.Update(ctx, func(tx *store.Tx) error {
		for id, algorithm := range map[uint32]string{x: "LEAST_CONNECTIONS", y: "ROUND_ROBIN"} {
			lb, err := tx.LoadBalancer("1", id)
			if err != nil {
				return err
			}
			lb.Algorithm, lb.Status = algorithm, store.StatusPendingUpdate
			if err := tx.SaveLoadBalancer(lb); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Log(logged.String())
			mu.Unlock()
		}
	})
	bad := waitStatus(t, st, x, store.StatusError)
	if !strings.Contains(bad.StatusDescription, "unsupported policy") {
		t.Errorf("statusDescription %q", bad.StatusDescription)
	}
	waitStatus(t, st, y, store.StatusActive)
	mu.Lock()
	if !strings.Contains(logged.String(), "trying refused changes one at a time") {
		t.Error("the two changes were not isolated (did they arrive in separate responses?)")
	}
	mu.Unlock()
	clusters := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindEnvoy}, resource.ClusterType)
	if c := clusters["lb_"+itoa(y)].(*clusterv3.Cluster); c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		t.Errorf("the accepted change is not published: %v", c.GetLbPolicy())
	}
	if c := clusters["lb_"+itoa(x)].(*clusterv3.Cluster); c.GetLbPolicy() == clusterv3.Cluster_LEAST_REQUEST {
		t.Error("the refused change is still published")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A deleted load balancer's endpoints and routes are never sent as
// removals in state of the world: the deletion settles on the clusters'
// and listeners' acknowledgement (found in review: it stayed
// PENDING_DELETE).
func TestDeletionSettlesWithStateOfTheWorldEnvoys(t *testing.T) {
	onBothBackends(t, func(t *testing.T, st *store.Store) {
		x, y := insert(t, st, store.StatusActive, 80), insert(t, st, store.StatusActive, 80)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		addr := serveXDS(t, p)
		go p.Run(ctx)
		pickyEnvoy(t, addr, []string{"lb_" + itoa(x), "lb_" + itoa(y)}, nil)
		waitFor(t, func() bool {
			return len(p.Tracker().ClientList()) == 1 && len(p.Tracker().ClientList()[0].Types) == pickyTypes
		})
		editStored(t, st, x, func(lb *store.LoadBalancer) { lb.Status = store.StatusPendingDelete })
		waitStatus(t, st, x, store.StatusDeleted)
	})
}
