package xds

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// filterConfig is the ECDS resource lb_<lb>_tcp (the tag makes versions differ).
func filterConfig(t *testing.T, lb uint32, tag int64) (string, *anypb.Any) {
	name := fmt.Sprintf("lb_%d_tcp", lb)
	config, err := anypb.New(durationpb.New(time.Duration(tag) * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Marshal(&corev3.TypedExtensionConfig{Name: name, TypedConfig: config})
	if err != nil {
		t.Fatal(err)
	}
	return name, a
}

// publishFilters sets, at a new revision, the ECDS resources of load
// balancers, as pending changes.
func (h *harness) publishFilters(lbs ...uint32) {
	h.rev++
	u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.ExtensionConfigType: {}}}
	var changes []*Pending
	for _, lb := range lbs {
		name, a := filterConfig(h.t.(*testing.T), lb, h.rev)
		u.Upsert[resource.ExtensionConfigType][name] = a
		changes = append(changes, &Pending{LoadBalancer: lb, Fleet: "default", Revision: h.rev,
			Changed: map[Kind][]Key{KindEnvoy: {{resource.ExtensionConfigType, name}}}})
	}
	h.tracker.Expect(changes)
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: u}); err != nil {
		h.t.Fatal(err)
	}
}

// Filter configurations (ECDS) are served by name to state-of-the-world
// and delta Envoys; an acknowledgement settles the load balancer whose
// configuration it carried, and a refusal naming nothing is the load
// balancer's whose configuration alone the response carried.
func TestFilterConfigurationsAreServedAndAttributed(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publishFilters(1, 2)
	subscribed := []string{"lb_1_tcp", "lb_2_tcp"}
	s := h.sotw("sotw", "envoy")
	s.send(resource.ExtensionConfigType, "", "", subscribed, "")
	first := s.next()
	if got := names(first); !slices.Equal(got, subscribed) {
		t.Fatalf("first ECDS response carries %v", got)
	}
	s.ack(first, subscribed)
	waitFor(t, func() bool { return h.v.wasApplied(1) && h.v.wasApplied(2) }, "both applied")

	h.publishFilters(2)
	changed := s.next()
	if got := names(changed); !slices.Equal(got, []string{"lb_2_tcp"}) {
		t.Fatalf("the change carries %v", got)
	}
	// Envoy's message for a configuration its factory refuses names no
	// resource.
	s.send(resource.ExtensionConfigType, first.GetVersionInfo(), changed.GetNonce(), subscribed, "Proto constraint validation failed")
	waitFor(t, func() bool { _, ok := h.v.rejectedMsg(2); return ok }, "lb 2 rejected")
	if _, ok := h.v.rejectedMsg(1); ok {
		t.Error("lb 1, not in the refused response, was rejected")
	}

	d := h.delta()
	if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "delta", Cluster: "default", UserAgentName: "envoy"},
		TypeUrl: resource.ExtensionConfigType, ResourceNamesSubscribe: []string{"lb_1_tcp"}}); err != nil {
		t.Fatal(err)
	}
	r, err := d.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetResources()) != 1 || r.GetResources()[0].GetName() != "lb_1_tcp" {
		t.Fatalf("delta client got %v", r.GetResources())
	}
}

// A listener is removed before the filter configurations it names: Envoy
// would close the new connections of a listener whose configuration went
// first.
func TestListenerIsRemovedBeforeItsFilterConfiguration(t *testing.T) {
	h := newHarness(t, Limits{})
	name, ecds := filterConfig(t, 1, 1)
	l, err := Marshal(&listenerv3.Listener{Name: "lb_1"})
	if err != nil {
		t.Fatal(err)
	}
	h.rev++
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: {Upsert: map[string]map[string]*anypb.Any{
		resource.ExtensionConfigType: {name: ecds}, resource.ListenerType: {"lb_1": l}}}}); err != nil {
		t.Fatal(err)
	}
	d := h.delta()
	node := &corev3.Node{Id: "delta", Cluster: "default", UserAgentName: "envoy"}
	var order []string
	recv := func() {
		r, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		what := resource.ListenerType
		if r.GetTypeUrl() == resource.ExtensionConfigType {
			what = "ecds"
		}
		if len(r.GetRemovedResources()) > 0 {
			order = append(order, what)
		}
		if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, typeURL := range []string{resource.ListenerType, resource.ExtensionConfigType} {
		var sub []string
		if typeURL == resource.ExtensionConfigType {
			sub = []string{name}
		}
		if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: sub}); err != nil {
			t.Fatal(err)
		}
		recv()
	}
	// Both watches are open again (the ACKs are in) before the removal.
	waitFor(t, func() bool {
		h.cache.mu.Lock()
		defer h.cache.mu.Unlock()
		g := h.cache.groups[Group{"default", KindEnvoy}]
		return len(g[resource.ListenerType].watches) == 1 && len(g[resource.ExtensionConfigType].watches) == 1
	}, "both watches open")
	h.rev++
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: {
		Remove: map[string][]string{resource.ExtensionConfigType: {name}, resource.ListenerType: {"lb_1"}}}}); err != nil {
		t.Fatal(err)
	}
	recv()
	recv()
	if strings.Join(order, ",") != resource.ListenerType+",ecds" {
		t.Fatalf("removals in the order %v", order)
	}
}

// The drain time an Envoy's bootstrap declares (node metadata) is known
// per fleet, the longest of its connected Envoys; gRPC clients and other
// fleets do not count, and a client that leaves no longer does.
func TestDrainTimeOfAFleet(t *testing.T) {
	h := newHarness(t, Limits{})
	connect := func(id, agent, fleet string, seconds float64) *sotwClient {
		c := h.sotw(id, agent)
		c.node.Cluster = fleet
		c.node.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{DrainTimeMetadataKey: structpb.NewNumberValue(seconds)}}
		c.send(resource.ClusterType, "", "", nil, "")
		return c
	}
	connect("a", "envoy", "default", 30)
	b := connect("b", "envoy", "default", 90)
	connect("g", "grpc-go", "default", 500)
	connect("o", "envoy", "other", 700)
	connect("bad", "envoy", "default", 1.5) // not whole seconds: ignored
	waitFor(t, func() bool { return len(h.tracker.ClientList()) == 5 }, "five clients")
	if d := h.tracker.DrainTime("default"); d != 90*time.Second {
		t.Errorf("default fleet: %s, want 90s", d)
	}
	if d := h.tracker.DrainTime("none"); d != 0 {
		t.Errorf("a fleet without clients: %s", d)
	}
	declared := map[string]float64{}
	for _, c := range h.tracker.ClientList() {
		declared[c.Node] = c.DrainTime
	}
	if declared["a"] != 30 || declared["bad"] != 0 {
		t.Errorf("client list shows %v", declared)
	}
	b.conn.Close()
	waitFor(t, func() bool { return h.tracker.DrainTime("default") == 30*time.Second }, "the longest left")
}
