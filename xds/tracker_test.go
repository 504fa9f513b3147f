package xds

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	statusv1 "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

type verdicts struct {
	mu        sync.Mutex
	applied   []uint32
	rejected  map[uint32]string
	suspected [][]uint32
}

func (v *verdicts) Suspected(_ Kind, suspects []*Pending, _ string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids []uint32
	for _, p := range suspects {
		ids = append(ids, p.LoadBalancer)
	}
	v.suspected = append(v.suspected, ids)
}

func (v *verdicts) Applied(lb uint32, _ int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.applied = append(v.applied, lb)
}

func (v *verdicts) Rejected(lb uint32, _ int64, _ Kind, msg string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rejected[lb] = msg
}

func (v *verdicts) wasApplied(lb uint32) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range v.applied {
		if id == lb {
			return true
		}
	}
	return false
}

// fixture is a cache and tracker with a helper to publish one cluster per
// load balancer and a fake client speaking through the server callbacks.
type fixture struct {
	t       *testing.T
	cache   *Cache
	tracker *Tracker
	cb      serverv3.Callbacks
	v       *verdicts
	rev     int64
}

func newFixture(t *testing.T) *fixture {
	c := NewCache("default", 0)
	v := &verdicts{rejected: map[uint32]string{}}
	tr := NewTracker(c, v, Limits{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	return &fixture{t: t, cache: c, tracker: tr, cb: tr.Callbacks(), v: v}
}

// publish changes load balancer lb's cluster in fleet "default" for kind.
func (f *fixture) publish(lb uint32, name string, kinds ...Kind) {
	f.rev++
	updates := map[Group]*Update{}
	changed := map[Kind][]Key{}
	for _, k := range kinds {
		a, err := Marshal(&clusterv3.Cluster{Name: name, AltStatName: strconv.FormatInt(f.rev, 10)})
		if err != nil {
			f.t.Fatal(err)
		}
		updates[Group{"default", k}] = &Update{Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {name: a}}}
		changed[k] = []Key{{resource.ClusterType, name}}
	}
	if err := f.cache.Apply(f.rev, updates); err != nil {
		f.t.Fatal(err)
	}
	f.tracker.Expect([]*Pending{{LoadBalancer: lb, Fleet: "default", Revision: f.rev, Changed: changed}})
}

type client struct {
	f     *fixture
	id    int64
	kind  Kind
	nonce int
}

func (f *fixture) connect(id int64, agent string, names ...string) *client {
	if err := f.cb.OnStreamOpen(context.Background(), id, resource.AnyType); err != nil {
		f.t.Fatal(err)
	}
	c := &client{f: f, id: id}
	req := &discoveryv3.DiscoveryRequest{
		Node:          &corev3.Node{Id: "n", Cluster: "default", UserAgentName: agent},
		TypeUrl:       resource.ClusterType,
		ResourceNames: names,
	}
	if err := f.cb.OnStreamRequest(id, req); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// receive simulates the server sending the cache's current clusters; it
// returns the nonce.
func (c *client) receive() string {
	c.nonce++
	nonce := string(rune('a' + c.nonce))
	g := GroupOf(&corev3.Node{Cluster: "default", UserAgentName: map[Kind]string{KindEnvoy: "envoy", KindGRPC: "gRPC Go"}[c.kind]}, "default")
	c.f.cache.mu.Lock()
	tc := c.f.cache.typeCache(g, resource.ClusterType)
	version := c.f.cache.version(tc.seq)
	names := tc.world().names
	c.f.cache.mu.Unlock()
	ctx := context.WithValue(context.Background(), sentNamesKey{}, names)
	c.f.cb.OnStreamResponse(ctx, c.id, nil, &discoveryv3.DiscoveryResponse{
		TypeUrl: resource.ClusterType, VersionInfo: version, Nonce: nonce,
	})
	return nonce
}

func (c *client) ack(nonce string, names ...string) {
	_ = c.f.cb.OnStreamRequest(c.id, &discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: nonce, ResourceNames: names})
}

func (c *client) nack(nonce, message string, names ...string) {
	_ = c.f.cb.OnStreamRequest(c.id, &discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: nonce, ResourceNames: names,
		ErrorDetail: &statusv1.Status{Code: 3, Message: message},
	})
}

func TestChangeIsAppliedAtOnceWithoutClients(t *testing.T) {
	f := newFixture(t)
	f.publish(1, "lb_1", KindEnvoy, KindGRPC)
	if !f.v.wasApplied(1) {
		t.Fatal("with no client connected a change counts as applied when published")
	}
}

func TestChangeWaitsForEveryEnvoyToAcknowledge(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	b := f.connect(2, "envoy")
	f.publish(1, "lb_1", KindEnvoy)
	if f.v.wasApplied(1) {
		t.Fatal("applied before any client acknowledged")
	}
	a.ack(a.receive())
	if f.v.wasApplied(1) {
		t.Fatal("applied before the second client acknowledged")
	}
	nb := b.receive()
	b.ack("unknown-nonce") // acknowledging something never sent counts for nothing
	if f.v.wasApplied(1) {
		t.Fatal("an unknown nonce counted as an acknowledgement")
	}
	b.ack(nb)
	if !f.v.wasApplied(1) {
		t.Fatal("not applied after every client acknowledged")
	}
}

func TestAcknowledgingAnOlderVersionIsNotEnough(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	f.publish(1, "lb_1", KindEnvoy)
	old := a.receive()
	f.publish(2, "lb_2", KindEnvoy)
	a.ack(old)
	if !f.v.wasApplied(1) || f.v.wasApplied(2) {
		t.Fatalf("after acknowledging the first version: applied %v, want only 1", f.v.applied)
	}
	a.ack(a.receive())
	if !f.v.wasApplied(2) {
		t.Fatal("second change not applied after its version was acknowledged")
	}
}

func TestLeavingClientReleasesPendingChanges(t *testing.T) {
	f := newFixture(t)
	f.connect(1, "envoy")
	f.publish(1, "lb_1", KindEnvoy)
	f.cb.OnStreamClosed(1, nil)
	if !f.v.wasApplied(1) {
		t.Fatal("a change waited for a client that disconnected")
	}
}

func TestGRPCClientsOnlyHoldUpWhatTheyUse(t *testing.T) {
	f := newFixture(t)
	g := f.connect(1, "gRPC Go/1.85.0", "lb_1")
	g.kind = KindGRPC
	f.publish(2, "lb_2", KindGRPC)
	if !f.v.wasApplied(2) {
		t.Fatal("a gRPC client that does not use lb_2 held up its change")
	}
	f.publish(1, "lb_1", KindGRPC)
	if f.v.wasApplied(1) {
		t.Fatal("applied before the gRPC client using lb_1 acknowledged")
	}
	g.ack(g.receive(), "lb_1")
	if !f.v.wasApplied(1) {
		t.Fatal("not applied after the gRPC client acknowledged")
	}
}

func TestNACKRejectsTheNamedLoadBalancer(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	f.publish(3, "lb_3", KindEnvoy)
	f.publish(4, "lb_4", KindEnvoy)
	a.nack(a.receive(), "Error adding/updating cluster(s) lb_3: bad config")
	if msg := f.v.rejected[3]; msg != "Error adding/updating cluster(s) lb_3: bad config" {
		t.Fatalf("lb 3 rejection %q", msg)
	}
	if _, ok := f.v.rejected[4]; ok {
		t.Fatal("lb 4, not named in the NACK, was rejected")
	}
	// The next version (with lb_3 withdrawn) is acknowledged: lb 4 applies.
	f.publish(5, "lb_5", KindEnvoy)
	a.ack(a.receive())
	if !f.v.wasApplied(4) || !f.v.wasApplied(5) || f.v.wasApplied(3) {
		t.Fatalf("applied %v, want 4 and 5", f.v.applied)
	}
}

func TestNACKWithoutNamesRejectsWhatTheResponseCarried(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	f.publish(6, "lb_6", KindEnvoy)
	a.nack(a.receive(), "something went wrong")
	if _, ok := f.v.rejected[6]; !ok {
		t.Fatal("the pending change the NACKed response carried was not rejected")
	}
}

func TestNACKOfASettledLoadBalancerStillReportsIt(t *testing.T) {
	f := newFixture(t)
	f.publish(7, "lb_7", KindGRPC) // no client: applied at once
	g := f.connect(1, "gRPC Go/1.85.0", "lb_7")
	g.kind = KindGRPC
	g.nack(g.receive(), `resource "lb_7": unsupported cluster type`, "lb_7")
	if _, ok := f.v.rejected[7]; !ok {
		t.Fatal("a client refusing a load balancer's current configuration is not reported")
	}
}

// A client applies the valid part of a response it NACKs: a NACK that
// names one load balancer settles the other changes it carried.
func TestNACKNamingOneLoadBalancerSettlesTheOthers(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	f.publish(8, "lb_8", KindEnvoy)
	f.publish(9, "lb_9", KindEnvoy)
	a.nack(a.receive(), "Error adding/updating cluster(s) lb_8: bad")
	if !f.v.wasApplied(9) {
		t.Fatal("lb 9, carried by the NACKed response but not named, is still pending")
	}
	if _, ok := f.v.rejected[8]; !ok || f.v.wasApplied(8) {
		t.Fatal("lb 8 is not the one rejected")
	}
}

// Acknowledgements of recent responses count however many responses the
// stream has carried.
func TestManyResponsesDoNotLoseAcknowledgements(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	for range 3 * maxUnanswered {
		a.receive()
	}
	f.publish(10, "lb_10", KindEnvoy)
	a.ack(a.receive())
	if !f.v.wasApplied(10) {
		t.Fatal("the acknowledgement of the latest response was forgotten")
	}
}

// No NACK message, however it names or numbers resources, can crash the
// tracker or blame a load balancer the response did not carry.
func FuzzNACKMessage(f *testing.F) {
	for _, seed := range []string{"", "resource index 1: bad", "lb_3 lb_999999999999", "index: -1", "index 99999999999999999999",
		"Error adding/updating cluster(s) lb_1, lb_2: x", "resource index 2: lb_7"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, message string) {
		fx := newFixture(t)
		a := fx.connect(1, "envoy")
		a.ack(a.receive())
		fx.publish(1, "lb_1", KindEnvoy)
		fx.publish(2, "lb_2", KindEnvoy)
		a.nack(a.receive(), message)
		for lb := range fx.v.rejected {
			if lb != 1 && lb != 2 {
				t.Fatalf("lb %d, which the response did not carry, was blamed for %q", lb, message)
			}
		}
	})
}
