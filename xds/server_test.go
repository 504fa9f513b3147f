package xds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statusv1 "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// harness is the real go-control-plane server over this package's cache
// and tracker, on loopback.
type harness struct {
	t       testing.TB
	cache   *Cache
	tracker *Tracker
	v       *verdicts
	addr    string
	rev     int64
}

func newHarness(t testing.TB, limits Limits) *harness {
	c := NewCache("default", 0)
	v := &verdicts{rejected: map[uint32]string{}}
	tr := NewTracker(c, v, limits, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	srv := grpc.NewServer(ServerOptions(c, tr)...)
	Register(ctx, srv, c, tr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	go tr.Run(ctx)
	t.Cleanup(func() {
		cancel()
		srv.Stop()
	})
	return &harness{t: t, cache: c, tracker: tr, v: v, addr: ln.Addr().String()}
}

// publish sets, at a new revision, the cluster and endpoints of load
// balancers (the cluster's AltStatName and the endpoint's port carry tag).
func (h *harness) publish(tag uint32, pending bool, lbs ...uint32) int64 {
	h.rev++
	u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {}, resource.EndpointType: {}}}
	var changes []*Pending
	for _, lb := range lbs {
		name := fmt.Sprintf("lb_%d", lb)
		c, err := Marshal(&clusterv3.Cluster{Name: name, AltStatName: fmt.Sprint(tag),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}})
		if err != nil {
			h.t.Fatal(err)
		}
		e, err := Marshal(&endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: tag}}}}}}}}}}})
		if err != nil {
			h.t.Fatal(err)
		}
		u.Upsert[resource.ClusterType][name] = c
		u.Upsert[resource.EndpointType][name] = e
		changes = append(changes, &Pending{LoadBalancer: lb, Fleet: "default", Revision: h.rev,
			Changed: map[Kind][]Key{KindEnvoy: {{resource.ClusterType, name}, {resource.EndpointType, name}}}})
	}
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: u}); err != nil {
		h.t.Fatal(err)
	}
	if pending {
		h.tracker.Expect(changes)
	}
	return h.rev
}

// conn is a new client connection to the server, closed when the test ends.
func (h *harness) conn() *grpc.ClientConn {
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return conn
}

// dial is the aggregated discovery service on a new connection.
func (h *harness) dial() discoveryv3.AggregatedDiscoveryServiceClient {
	return discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn())
}

// delta opens a delta ADS stream on a new connection.
func (h *harness) delta() discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient {
	d, err := h.dial().DeltaAggregatedResources(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// sotwClient is an Envoy-like state-of-the-world ADS client.
type sotwClient struct {
	t      testing.TB
	conn   *grpc.ClientConn
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	recv   chan *discoveryv3.DiscoveryResponse
	err    chan error
}

func (h *harness) sotw(id, agent string) *sotwClient {
	conn := h.conn()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	c := &sotwClient{t: h.t, conn: conn, stream: st, node: &corev3.Node{Id: id, Cluster: "default", UserAgentName: agent},
		recv: make(chan *discoveryv3.DiscoveryResponse, 64), err: make(chan error, 1)}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				c.err <- err
				return
			}
			c.recv <- r
		}
	}()
	return c
}

func (c *sotwClient) send(typeURL, version, nonce string, names []string, nack string) {
	req := &discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names}
	if nack != "" {
		req.ErrorDetail = &statusv1.Status{Code: int32(codes.InvalidArgument), Message: nack}
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *sotwClient) next() *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.recv:
		return r
	case err := <-c.err:
		c.t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		c.t.Fatal("no response within 10 s")
	}
	return nil
}

func (c *sotwClient) ack(r *discoveryv3.DiscoveryResponse, names []string) {
	c.send(r.GetTypeUrl(), r.GetVersionInfo(), r.GetNonce(), names, "")
}

func names(r *discoveryv3.DiscoveryResponse) []string {
	var out []string
	for _, a := range r.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			panic(err)
		}
		switch m := m.(type) {
		case *clusterv3.Cluster:
			out = append(out, m.GetName())
		case *endpointv3.ClusterLoadAssignment:
			out = append(out, m.GetClusterName())
		case *corev3.TypedExtensionConfig:
			out = append(out, m.GetName())
		}
	}
	return out
}

// An Envoy-like wildcard client gets the whole cluster state, then only
// the endpoints that changed, and its ACKs settle the changes.
func TestSotWEnvoyGetsOnlyChangedEndpoints(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1, 2, 3)
	c := h.sotw("envoy-1", "envoy")
	c.send(resource.ClusterType, "", "", nil, "")
	cds := c.next()
	if got := strings.Join(names(cds), ","); got != "lb_1,lb_2,lb_3" {
		t.Fatalf("initial clusters %s", got)
	}
	all := []string{"lb_1", "lb_2", "lb_3"}
	c.ack(cds, nil)
	c.send(resource.EndpointType, "", "", all, "")
	eds := c.next()
	if got := strings.Join(names(eds), ","); got != "lb_1,lb_2,lb_3" {
		t.Fatalf("initial endpoints %s", got)
	}
	c.ack(eds, all)

	// One load balancer's endpoints change: only they are sent.
	h.rev++
	e, _ := Marshal(&endpointv3.ClusterLoadAssignment{ClusterName: "lb_2"})
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: {Upsert: map[string]map[string]*anypb.Any{resource.EndpointType: {"lb_2": e}}}}); err != nil {
		t.Fatal(err)
	}
	h.tracker.Expect([]*Pending{{LoadBalancer: 2, Fleet: "default", Revision: h.rev, Changed: map[Kind][]Key{KindEnvoy: {{resource.EndpointType, "lb_2"}}}}})
	eds = c.next()
	if got := strings.Join(names(eds), ","); got != "lb_2" || eds.GetTypeUrl() != resource.EndpointType {
		t.Fatalf("after one change: %s %s", eds.GetTypeUrl(), got)
	}
	if h.v.wasApplied(2) {
		t.Fatal("applied before the client acknowledged")
	}
	c.ack(eds, all)
	waitFor(t, func() bool { return h.v.wasApplied(2) }, "the change to settle after the ACK")

	// A cluster change resends the whole cluster state (the protocol's rule).
	h.publish(2, false, 3)
	cds = c.next()
	if cds.GetTypeUrl() != resource.ClusterType || len(cds.GetResources()) != 3 {
		t.Fatalf("after a cluster change: %s with %d resources", cds.GetTypeUrl(), len(cds.GetResources()))
	}
}

// After a NACK the same version is not sent again: the stream waits for
// a real change (here an endpoint change arrives first).
func TestNACKedVersionIsNotResent(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1, 2)
	c := h.sotw("envoy-1", "envoy")
	c.send(resource.ClusterType, "", "", nil, "")
	cds := c.next()
	c.ack(cds, nil)
	c.send(resource.EndpointType, "", "", []string{"lb_1", "lb_2"}, "")
	c.ack(c.next(), []string{"lb_1", "lb_2"})
	h.publish(2, true, 1)
	cds = c.next()
	eds := c.next()
	c.ack(eds, []string{"lb_1", "lb_2"})
	c.send(resource.ClusterType, "", cds.GetNonce(), nil, "Error adding/updating cluster(s) lb_1: bad")
	waitFor(t, func() bool { _, ok := h.v.rejectedMsg(1); return ok }, "lb 1 to be rejected")
	for i := range 20 {
		h.publish(uint32(10+i), false, 2) // clusters and endpoints of lb 2 change
		r := c.next()
		if r.GetTypeUrl() == resource.ClusterType {
			if r.GetVersionInfo() == cds.GetVersionInfo() {
				t.Fatal("the refused version was sent again")
			}
			return // a newer cluster state: fine
		}
		c.ack(r, []string{"lb_1", "lb_2"})
	}
}

func (v *verdicts) rejectedMsg(lb uint32) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.rejected[lb]
	return m, ok
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// grpc-js names a refused resource only by its index in the response:
// exactly that load balancer is rejected, and the other change the
// response carried is applied.
func TestNACKByIndexBlamesExactlyThatResource(t *testing.T) {
	h := newHarness(t, Limits{})
	c := h.sotw("js", "grpc-node-js")
	c.send(resource.ClusterType, "", "", []string{"lb_4", "lb_5"}, "")
	c.ack(c.next(), []string{"lb_4", "lb_5"})
	h.rev++
	var changes []*Pending
	u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {}}}
	for _, lb := range []uint32{4, 5} {
		name := fmt.Sprintf("lb_%d", lb)
		a, _ := Marshal(&clusterv3.Cluster{Name: name})
		u.Upsert[resource.ClusterType][name] = a
		changes = append(changes, &Pending{LoadBalancer: lb, Fleet: "default", Revision: h.rev,
			Changed: map[Kind][]Key{KindGRPC: {{resource.ClusterType, name}}}})
	}
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindGRPC}: u}); err != nil {
		t.Fatal(err)
	}
	h.tracker.Expect(changes)
	r := c.next()
	if got := strings.Join(names(r), ","); got != "lb_4,lb_5" {
		t.Fatalf("response carries %s", got)
	}
	msg := "resource index 1: Unsupported LB policy: LEAST_REQUEST"
	c.send(resource.ClusterType, "", r.GetNonce(), []string{"lb_4", "lb_5"}, msg)
	waitFor(t, func() bool { return h.v.wasApplied(4) }, "lb 4 (index 0, accepted) to be applied")
	if m, ok := h.v.rejectedMsg(5); !ok || m != msg {
		t.Fatalf("lb 5 rejection %q %v", m, ok)
	}
	if _, ok := h.v.rejectedMsg(4); ok {
		t.Fatal("lb 4, which the client accepted, was rejected")
	}
}

// A NACK that names nothing, of a response carrying two changes, blames
// neither (the client may have accepted either): both are suspects, to be
// tried alone.
func TestNACKNamingNothingAmongSeveralBlamesNoOne(t *testing.T) {
	h := newHarness(t, Limits{})
	c := h.sotw("envoy", "envoy")
	c.send(resource.ClusterType, "", "", nil, "")
	c.ack(c.next(), nil)
	h.publish(1, true, 6, 7)
	r := c.next()
	c.send(resource.ClusterType, "", r.GetNonce(), nil, "Error: something is wrong")
	h.publish(2, false, 8) // the stream goes on
	c.ack(c.next(), nil)
	if _, ok := h.v.rejectedMsg(6); ok {
		t.Fatal("lb 6 blamed without evidence")
	}
	if _, ok := h.v.rejectedMsg(7); ok {
		t.Fatal("lb 7 blamed without evidence")
	}
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	if fmt.Sprint(h.v.suspected) != "[[6 7]]" {
		t.Fatalf("suspects %v, want [[6 7]]", h.v.suspected)
	}
}

// A client that never answers stops counting after the ack timeout and is
// disconnected: the change it held up settles.
func TestSilentClientIsDisconnectedAfterAckTimeout(t *testing.T) {
	h := newHarness(t, Limits{AckTimeout: 300 * time.Millisecond})
	c := h.sotw("silent", "envoy")
	c.send(resource.ClusterType, "", "", nil, "")
	c.next() // never acknowledged
	h.publish(1, true, 9)
	if h.v.wasApplied(9) {
		t.Fatal("applied while the client has not answered")
	}
	select {
	case err := <-c.err:
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("stream ended with %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent client was not disconnected")
	}
	waitFor(t, func() bool { return h.v.wasApplied(9) }, "the change to settle once the silent client stopped counting")
}

// A subscription naming too many resources ends the stream with a clear error.
func TestHugeSubscriptionIsRefused(t *testing.T) {
	h := newHarness(t, Limits{MaxNames: 1000})
	c := h.sotw("big", "envoy")
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("lb_%d", i)
	}
	c.send(resource.EndpointType, "", "", many, "")
	select {
	case err := <-c.err:
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("stream ended with %v, want ResourceExhausted", err)
		}
	case r := <-c.recv:
		t.Fatalf("got a response %v", r.GetTypeUrl())
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not ended")
	}
}

// However many clients disconnect, and however, nothing stays pending.
func TestNothingStaysPendingAfterClientsLeave(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1)
	var clients []*sotwClient
	for i := range 100 {
		c := h.sotw(fmt.Sprint("e", i), "envoy")
		c.send(resource.ClusterType, "", "", nil, "")
		c.ack(c.next(), nil)
		clients = append(clients, c)
	}
	var lbs []uint32
	for lb := uint32(100); lb < 150; lb++ {
		lbs = append(lbs, lb)
	}
	h.publish(2, true, lbs...)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				c.conn.Close()
			} else {
				_ = c.stream.CloseSend()
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool {
		for _, lb := range lbs {
			if !h.v.wasApplied(lb) {
				return false
			}
		}
		return true
	}, "every change to settle after every client left")
	waitFor(t, func() bool { return len(h.tracker.Clients()) == 0 }, "no client left")
}

// The state-of-the-world and delta servers number their streams from 1
// each: a client of each kind at once must not be mistaken for one another.
func TestSotWAndDeltaClientsAtOnce(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1, 2)
	s := h.sotw("sotw", "envoy")
	d := h.delta()
	node := &corev3.Node{Id: "delta", Cluster: "default", UserAgentName: "envoy"}
	s.send(resource.ClusterType, "", "", nil, "")
	if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	first := s.next()
	if got := len(first.GetResources()); got != 2 {
		t.Fatalf("state-of-the-world client got %d clusters", got)
	}
	s.ack(first, nil)
	r, err := d.Recv()
	if err != nil || len(r.GetResources()) != 2 {
		t.Fatalf("delta client got %d clusters (%v)", len(r.GetResources()), err)
	}
	if err := d.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: r.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(h.tracker.ClientList()) == 2 }, "two clients listed")
}

// A client that never reads its stream blocks the server's send; the ack
// timeout ends the call, which releases the send, and the client stops
// holding up changes.
func TestClientThatNeverReadsIsDisconnected(t *testing.T) {
	h := newHarness(t, Limits{AckTimeout: 300 * time.Millisecond})
	h.rev++
	big := strings.Repeat("x", 2000)
	u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {}}}
	for i := range 3000 { // 6 MB: more than the stream's flow-control window
		name := fmt.Sprintf("lb_%d", i)
		a, _ := Marshal(&clusterv3.Cluster{Name: name, AltStatName: big})
		u.Upsert[resource.ClusterType][name] = a
	}
	if err := h.cache.Apply(h.rev, map[Group]*Update{{"default", KindEnvoy}: u}); err != nil {
		t.Fatal(err)
	}
	st, err := h.dial().StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "deaf", Cluster: "default", UserAgentName: "envoy"}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(h.tracker.ClientList()) == 1 }, "the client to be connected")
	h.publish(1, true, 5000)
	waitFor(t, func() bool { return len(h.tracker.ClientList()) == 0 }, "the client that never reads to be disconnected")
	waitFor(t, func() bool { return h.v.wasApplied(5000) }, "the change to settle")
}

// A client that refuses everything is not answered again until something
// changes: no NACK storm.
func TestClientRefusingEverythingCostsOneResponsePerChange(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1, 2)
	c := h.sotw("nacker", "envoy")
	c.send(resource.ClusterType, "", "", nil, "")
	responses := 0
	deadline := time.After(time.Second)
	changes := 0
	for {
		select {
		case r := <-c.recv:
			responses++
			c.send(r.GetTypeUrl(), "", r.GetNonce(), nil, "resource index 0: refused")
			if changes < 3 {
				changes++
				h.publish(uint32(10+changes), false, 1)
			}
		case err := <-c.err:
			t.Fatal(err)
		case <-deadline:
			// The first state, then one response per change.
			if responses != 1+changes {
				t.Fatalf("%d responses in 1 s for %d changes, want %d", responses, changes, 1+changes)
			}
			return
		}
	}
}

// A delta client reconnecting with the versions it holds gets only what
// changed since, and the removal of what is gone.
func TestDeltaReconnectHonoursInitialVersions(t *testing.T) {
	h := newHarness(t, Limits{})
	h.publish(1, false, 1)
	h.publish(2, false, 2)
	d := h.delta()
	v1 := h.cache.version(1) // lb_1's cluster was last changed in the first update
	err := d.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "back", Cluster: "default", UserAgentName: "envoy"},
		TypeUrl: resource.ClusterType, InitialResourceVersions: map[string]string{"lb_1": v1, "lb_9": "r0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range r.GetResources() {
		got = append(got, res.GetName())
	}
	if strings.Join(got, ",") != "lb_2" || strings.Join(r.GetRemovedResources(), ",") != "lb_9" {
		t.Fatalf("resources %v, removed %v; want lb_2, and lb_9 removed", got, r.GetRemovedResources())
	}
}

// Large responses take turns (one slot here), and a stream holding the
// slot for one type never waits for it again for another, so clients
// syncing clusters and endpoints at once all finish, without waiting out
// the gate.
func TestLargeResponsesTakeTurnsWithoutDeadlock(t *testing.T) {
	h := newHarness(t, Limits{})
	h.cache.gate = newGate(1, time.Minute)
	var lbs []uint32
	for lb := uint32(1); lb <= 2*bigResponse; lb++ {
		lbs = append(lbs, lb)
	}
	h.publish(1, false, lbs...)
	names := make([]string, len(lbs))
	for i, lb := range lbs {
		names[i] = fmt.Sprintf("lb_%d", lb)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 10 {
		c := h.sotw(fmt.Sprint("big-", i), "envoy")
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Both types asked at once: the endpoints' answer is large too.
			c.send(resource.ClusterType, "", "", nil, "")
			c.send(resource.EndpointType, "", "", names, "")
			for got := map[string]bool{}; len(got) < 2; {
				r := c.next()
				got[r.GetTypeUrl()] = len(r.GetResources()) == len(lbs)
				req := []string(nil)
				if r.GetTypeUrl() == resource.EndpointType {
					req = names
				}
				c.ack(r, req)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("syncing took %v: streams waited out the gate", d)
	}
	waitFor(t, func() bool {
		h.cache.gate.mu.Lock()
		defer h.cache.gate.mu.Unlock()
		return len(h.cache.gate.held) == 0
	}, "every slot to be given back once the clients answered")
}

// A client churning requests faster than the stream's rate is ended with
// a clear error.
func TestChurningClientIsLimited(t *testing.T) {
	h := newHarness(t, Limits{RequestRate: 10, RequestBurst: 20})
	h.publish(1, false, 1)
	c := h.sotw("churn", "grpc-go-like")
	for i := range 100 {
		req := &discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: resource.EndpointType, ResourceNames: []string{fmt.Sprint("lb_", i%7)}}
		if err := c.stream.Send(req); err != nil {
			break // the server ended the stream
		}
	}
	for {
		select {
		case <-c.recv:
			continue
		case err := <-c.err:
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("stream ended with %v, want ResourceExhausted", err)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("the churning client was not stopped")
		}
	}
}
