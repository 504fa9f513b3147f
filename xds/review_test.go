package xds

import (
	"context"
	"fmt"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// subscription is a state-of-the-world subscription to names, as
// go-control-plane's server keeps it.
type subscription map[string]struct{}

func (s subscription) ReturnedResources() map[string]string     { return nil }
func (s subscription) SubscribedResources() map[string]struct{} { return s }
func (s subscription) IsWildcard() bool                         { return false }
func names2sub(names ...string) subscription                    { return subscription(setOf(names...)) }
func setOf(names ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}
func endpoints(t *testing.T, name string, port uint32) *anypb.Any {
	a, err := Marshal(&endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The server drops an answer it has not sent when a new request of the
// same type arrives: the names that answer added must come in the next
// one (found in review: the endpoints of a newly subscribed, unchanged
// cluster were never sent).
func TestDroppedAnswerKeepsTheNamesItAdded(t *testing.T) {
	c := NewCache("default", 0)
	g := Group{"default", KindEnvoy}
	rev := int64(0)
	put := func(names ...string) {
		rev++
		u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.EndpointType: {}}}
		for _, n := range names {
			u.Upsert[resource.EndpointType][n] = endpoints(t, n, uint32(rev))
		}
		if err := c.Apply(rev, map[Group]*Update{g: u}); err != nil {
			t.Fatal(err)
		}
	}
	put("lb_2") // lb_2's endpoints exist, unchanged from now on
	put("lb_1") // seq 2
	const id = 1
	c.open(context.Background(), id)
	node := &corev3.Node{Id: "e", Cluster: "default", UserAgentName: "envoy"}
	watch := func(sub subscription) cache.Response {
		req := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.EndpointType}
		c.bindRequest(id, req)
		ch := make(chan cache.Response, 1)
		if _, err := c.CreateWatch(req, sub, ch); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-ch:
			return r
		default:
			return nil
		}
	}
	first := watch(names2sub("lb_1"))
	c.sent(id, resource.EndpointType, first.GetResponseVersion())
	put("lb_1") // lb_1 changes: a response the client will ack
	r := watch(names2sub("lb_1"))
	c.sent(id, resource.EndpointType, r.GetResponseVersion())
	// The client adds lb_2: the answer carries it, but is dropped unsent.
	if dropped := watch(names2sub("lb_1", "lb_2")); dropped == nil || len(dropped.(*sotwResponse).st.names) != 1 {
		t.Fatalf("adding lb_2: %v", dropped)
	}
	// The next request (lb_3 too) must still bring lb_2.
	next := watch(names2sub("lb_1", "lb_2", "lb_3"))
	if next == nil || fmt.Sprint(next.(*sotwResponse).st.names) != "[lb_2]" {
		t.Fatalf("after the dropped answer: %v", next)
	}
}

// A stream of the per-type cluster service carries clusters only: it must
// not hold up changes of other types for lack of their acknowledgement.
func TestPerTypeStreamHoldsOnlyItsType(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1)
	conn := h.conn()
	cds, err := clusterservice.NewClusterDiscoveryServiceClient(conn).StreamClusters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := cds.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "cds-only", Cluster: "default"}, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	r, err := cds.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := cds.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { l := h.tracker.ClientList(); return len(l) == 1 && len(l[0].Types) == 1 }, "the client's ACK")
	// An endpoints-only change.
	h.rev++
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: {Upsert: map[string]map[string]*anypb.Any{
		resource.EndpointType: {"lb_1": endpoints(t, "lb_1", 9)}}}}); err != nil {
		t.Fatal(err)
	}
	h.tracker.Expect([]*Pending{{LoadBalancer: 1, Fleet: "default", Revision: h.rev,
		Changed: map[Kind][]Key{KindEnvoy: {{resource.EndpointType, "lb_1"}}}}})
	waitFor(t, func() bool { return h.v.wasApplied(1) }, "an endpoint change to settle with a cluster-only client connected")
}

// Removed resources' records go once every client of their group has
// been sent past them, whatever clients of other groups do.
func TestRemovalRecordsAreCompacted(t *testing.T) {
	c := NewCache("default", 0)
	g := Group{"default", KindEnvoy}
	c.open(context.Background(), 1) // a quiet client of another group
	c.conns[1].group = Group{"other", KindEnvoy}
	c.conns[1].typ(resource.ClusterType).sentAny = true
	for i := range 5000 {
		name := fmt.Sprintf("lb_%d", i)
		a, _ := Marshal(&clusterv3.Cluster{Name: name})
		_ = c.Apply(int64(2*i+1), map[Group]*Update{g: {Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {name: a}}}})
		_ = c.Apply(int64(2*i+2), map[Group]*Update{g: {Remove: map[string][]string{resource.ClusterType: {name}}}})
	}
	if n := len(c.groups[g][resource.ClusterType].entries); n > 2048 {
		t.Fatalf("%d records kept for 5,000 removed clusters", n)
	}
}

// A refusal of an old version says nothing of a newer change of the same
// load balancer (found in review: the newer change was blamed).
func TestLateNACKOfAnOldVersionSparesTheNewerChange(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	a.ack(a.receive())
	f.publish(7, "lb_7", KindEnvoy)
	old := a.receive() // carries lb_7's first change
	f.publish(7, "lb_7", KindEnvoy)
	a.nack(old, "Error adding/updating cluster(s) lb_7: bad")
	if _, ok := f.v.rejected[7]; ok {
		t.Fatal("the newer change was blamed for the refusal of an older version")
	}
}

// A client refusing its first state, naming nothing, may refuse any load
// balancer of it: the only change it carried is tried alone, not blamed.
func TestFirstStateRefusalIsIsolatedNotBlamed(t *testing.T) {
	f := newFixture(t)
	f.publish(1, "lb_1", KindEnvoy) // settled: no client yet
	a := f.connect(2, "envoy")
	f.publish(2, "lb_2", KindEnvoy)
	a.nack(a.receive(), "something is wrong")
	if _, ok := f.v.rejected[2]; ok {
		t.Fatal("lb 2 blamed for a refusal of a first state naming nothing")
	}
	if fmt.Sprint(f.v.suspected) != "[[2]]" {
		t.Fatalf("suspects %v, want [[2]]", f.v.suspected)
	}
}

// The same change staged twice (read by two syncs) stays to be
// acknowledged (found in review: the second, empty registration settled it).
func TestChangeStagedTwiceStillWaits(t *testing.T) {
	f := newFixture(t)
	a := f.connect(1, "envoy")
	a.ack(a.receive())
	f.publish(3, "lb_3", KindEnvoy)
	f.tracker.Expect([]*Pending{{LoadBalancer: 3, Fleet: "default", Revision: f.rev, Changed: map[Kind][]Key{}}})
	if f.v.wasApplied(3) {
		t.Fatal("applied before the client acknowledged it")
	}
	a.ack(a.receive())
	if !f.v.wasApplied(3) {
		t.Fatal("not applied after the acknowledgement")
	}
}

// A delta client subscribing to a name that does not exist is told so
// (removed), alongside what does exist.
func TestDeltaSubscriptionToMissingNameIsRemoved(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1, 2, 3, 4)
	d := h.delta()
	for _, names := range [][]string{{"lb_1", "lb_2", "lb_3", "lb_4", "lb_404"}, {"lb_2", "lb_404"}} {
		err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "d", Cluster: "default", UserAgentName: "envoy"},
			TypeUrl: resource.EndpointType, ResourceNamesSubscribe: names})
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.GetResources()) != len(names)-1 || fmt.Sprint(r.GetRemovedResources()) != "[lb_404]" {
			t.Fatalf("subscribing %v: %d resources, removed %v", names, len(r.GetResources()), r.GetRemovedResources())
		}
		d = h.delta() // a new stream: a first request again
	}
}
