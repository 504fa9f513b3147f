package main

// An Envoy-like xDS client written on the raw ADS stream: it subscribes the
// way an Envoy of the fleet does (wildcard clusters, the endpoints they
// name, then, once those have come, wildcard listeners and the routes they
// name), keeps what it holds (name -> hash of the resource bytes), ACKs
// every response, and tells the load harness when it is in sync and when a
// response carrying an expected change has been ACKed.

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// envoyClientConfig says whom an Envoy-like client talks to and what the
// fleet holds.
type envoyClientConfig struct {
	addr  string // the xDS server, host:port on loopback
	fleet string // the node's cluster
	id    string // the node's id, unique
	delta bool   // incremental (DeltaAggregatedResources) instead of state of the world
	// want names every cluster and listener of the fleet: the client is in
	// sync when it holds all of them and the endpoints and routes they name.
	want []string
}

// expectation is a change a client waits for: a resource of a type whose
// content matches.
type expectation struct {
	typeURL, name string
	match         func(*anypb.Any) bool
	acked         chan time.Time // the moment the matching response was ACKed
}

// envoyClient is one Envoy-like xDS client. run drives it; the other
// methods may be called from any goroutine.
type envoyClient struct {
	cfg envoyClientConfig

	bytes      atomic.Int64 // proto.Size of every response received
	resets     atomic.Int64 // streams that ended with an error
	syncResets atomic.Int64 // of which before the initial sync
	opened     time.Time    // first stream open (used by run's goroutine only)
	syncedAt   atomic.Int64 // nanoseconds from opened to in sync; 0 until then
	syncedCh   chan struct{}
	lastErr    atomic.Value // string
	mu         sync.Mutex
	exp        *expectation
	openedOnce sync.Once
}

func newEnvoyClient(cfg envoyClientConfig) *envoyClient {
	return &envoyClient{cfg: cfg, syncedCh: make(chan struct{})}
}

// synced is closed once the client has received and ACKed every cluster,
// endpoint, listener and route of the fleet.
func (c *envoyClient) synced() <-chan struct{} { return c.syncedCh }

// syncTime is the time from the first stream open to being in sync.
func (c *envoyClient) syncTime() time.Duration { return time.Duration(c.syncedAt.Load()) }

// expect registers a change to wait for; the channel receives the moment
// the client ACKed a response of typeURL carrying name with a content that
// match accepts. Register it before making the change: a stale response
// does not match by content, so it is never mistaken for the change.
func (c *envoyClient) expect(typeURL, name string, match func(*anypb.Any) bool) <-chan time.Time {
	e := &expectation{typeURL: typeURL, name: name, match: match, acked: make(chan time.Time, 1)}
	c.mu.Lock()
	c.exp = e
	c.mu.Unlock()
	return e.acked
}

func (c *envoyClient) pending() *expectation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exp
}

func (c *envoyClient) fulfilled(e *expectation, at time.Time) {
	c.mu.Lock()
	if c.exp == e {
		c.exp = nil
	}
	c.mu.Unlock()
	e.acked <- at
}

// run keeps a stream open until ctx ends, opening a new one (with fresh
// state, as a restarted Envoy would) after an error.
func (c *envoyClient) run(ctx context.Context) {
	conn, err := grpc.NewClient(c.cfg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A fleet's full state of clusters or listeners is larger than
		// gRPC's default 4 MiB; Envoy has no such limit.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		c.lastErr.Store(err.Error())
		c.resets.Add(1)
		c.syncResets.Add(1)
		return
	}
	defer conn.Close()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	backoff := 50 * time.Millisecond
	for {
		var err error
		opened := time.Now()
		if c.cfg.delta {
			err = c.deltaStream(ctx, ads)
		} else {
			err = c.sotwStream(ctx, ads)
		}
		if ctx.Err() != nil {
			return
		}
		c.lastErr.Store(err.Error())
		c.resets.Add(1)
		if c.syncedAt.Load() == 0 {
			c.syncResets.Add(1)
		}
		if time.Since(opened) > time.Minute { // it was working: start the backoff again
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (c *envoyClient) markOpened() {
	c.openedOnce.Do(func() { c.opened = time.Now() })
}

func (c *envoyClient) node() *corev3.Node {
	return &corev3.Node{Id: c.cfg.id, Cluster: c.cfg.fleet, UserAgentName: "envoy"}
}

// held is what a client holds, per type: name -> hash of the resource's
// bytes, and the names of the dependent type each resource uses.
type held struct {
	res     map[string]map[string]uint64
	refs    map[string]map[string][]string // CDS: cluster -> EDS name; LDS: listener -> ECDS names; ECDS: filter -> RDS name
	got     map[string]bool                // a response of the type was ACKed
	users   map[string]map[string]int      // EDS, ECDS, RDS: name -> how many resources use it
	subs    map[string][]string            // EDS, ECDS, RDS: the names subscribed, sorted (see subscribed)
	dirty   map[string]bool                // subs must be rebuilt from users
	version map[string]string              // SotW: last accepted version per type
	nonce   map[string]string              // SotW: last nonce per type
}

func newHeld() *held {
	h := &held{res: map[string]map[string]uint64{}, refs: map[string]map[string][]string{}, got: map[string]bool{},
		users: map[string]map[string]int{}, subs: map[string][]string{}, dirty: map[string]bool{},
		version: map[string]string{}, nonce: map[string]string{}}
	for _, t := range []string{resource.ClusterType, resource.EndpointType, resource.ExtensionConfigType, resource.ListenerType, resource.RouteType} {
		h.res[t] = map[string]uint64{}
	}
	for t, dep := range dependent {
		h.refs[t] = map[string][]string{}
		h.users[dep] = map[string]int{}
	}
	return h
}

// subscribed returns the sorted names of a dependent type to subscribe to
// (a state-of-the-world request carries them all).
func (h *held) subscribed(dep string) []string {
	if h.dirty[dep] {
		names := make([]string, 0, len(h.users[dep]))
		for name := range h.users[dep] {
			names = append(names, name)
		}
		slices.Sort(names)
		h.subs[dep] = names
		h.dirty[dep] = false
	}
	return h.subs[dep]
}

// dependent is the type whose names a type's resources carry: a listener
// names its filter configurations (ECDS), the HTTP connection manager's
// configuration its routes.
var dependent = map[string]string{resource.ClusterType: resource.EndpointType, resource.ListenerType: resource.ExtensionConfigType,
	resource.ExtensionConfigType: resource.RouteType}

var hashSeed = maphash.MakeSeed()

// update is one resource of a response.
type update struct {
	name string
	res  *anypb.Any
}

// apply stores a response's resources. full means the response is the
// type's whole state (state-of-the-world clusters and listeners): what it
// lacks is gone. It returns the changed subscription of the dependent
// type, if any.
func (h *held) apply(typeURL string, ups []update, removed []string, full bool) (sub, unsub []string, err error) {
	res := h.res[typeURL]
	if res == nil {
		return nil, nil, fmt.Errorf("unexpected type %s", typeURL)
	}
	refs := h.refs[typeURL]
	dep := dependent[typeURL]
	// use and drop count the clusters (listeners) naming an endpoint
	// (route) name: the subscription changes when a count leaves or
	// reaches zero, so a change costs what changed, as in Envoy.
	use := func(name string) {
		if h.users[dep][name]++; h.users[dep][name] == 1 {
			sub = append(sub, name)
		}
	}
	drop := func(name string) {
		if h.users[dep][name]--; h.users[dep][name] == 0 {
			delete(h.users[dep], name)
			unsub = append(unsub, name)
		}
	}
	if full {
		present := make(map[string]bool, len(ups))
		for _, u := range ups {
			present[u.name] = true
		}
		for name := range res {
			if !present[name] {
				removed = append(removed, name)
			}
		}
	}
	for _, name := range removed {
		delete(res, name)
		if refs != nil {
			for _, old := range refs[name] {
				drop(old)
			}
			delete(refs, name)
		}
	}
	for _, u := range ups {
		sum := maphash.Bytes(hashSeed, u.res.GetValue())
		if old, ok := res[u.name]; ok && old == sum {
			continue
		}
		res[u.name] = sum
		if refs == nil {
			continue
		}
		ref, err := referenced(typeURL, u)
		if err != nil {
			return nil, nil, err
		}
		if old := refs[u.name]; !slices.Equal(old, ref) {
			for _, n := range ref {
				use(n)
			}
			for _, n := range old {
				drop(n)
			}
		}
		if len(ref) == 0 {
			delete(refs, u.name)
		} else {
			refs[u.name] = ref
		}
	}
	h.got[typeURL] = true
	// A name dropped and used again in one response stays subscribed.
	sub, unsub = cancelOut(sub, unsub)
	for _, name := range unsub {
		delete(h.res[dep], name)
	}
	if len(sub)+len(unsub) > 0 {
		h.dirty[dep] = true
	}
	slices.Sort(sub)
	slices.Sort(unsub)
	return sub, unsub, nil
}

// cancelOut removes the names that are in both lists.
func cancelOut(sub, unsub []string) ([]string, []string) {
	if len(sub) == 0 || len(unsub) == 0 {
		return sub, unsub
	}
	both := map[string]bool{}
	for _, n := range sub {
		both[n] = true
	}
	var s2, u2 []string
	gone := map[string]bool{}
	for _, n := range unsub {
		if both[n] {
			gone[n] = true
		} else {
			u2 = append(u2, n)
		}
	}
	for _, n := range sub {
		if !gone[n] {
			s2 = append(s2, n)
		}
	}
	return s2, u2
}

// referenced is the EDS name of an EDS cluster, the ECDS names of a
// listener's filters configured over ECDS, or the RDS name of an HTTP
// connection manager configured over ECDS; none for others.
func referenced(typeURL string, u update) ([]string, error) {
	switch typeURL {
	case resource.ClusterType:
		var cl clusterv3.Cluster
		if err := u.res.UnmarshalTo(&cl); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", u.name, err)
		}
		if cl.GetType() != clusterv3.Cluster_EDS {
			return nil, nil
		}
		if n := cl.GetEdsClusterConfig().GetServiceName(); n != "" {
			return []string{n}, nil
		}
		return []string{cl.GetName()}, nil
	case resource.ListenerType:
		var l listenerv3.Listener
		if err := u.res.UnmarshalTo(&l); err != nil {
			return nil, fmt.Errorf("listener %s: %w", u.name, err)
		}
		var names []string
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetConfigDiscovery() != nil {
					names = append(names, f.GetName())
				}
			}
		}
		return names, nil
	case resource.ExtensionConfigType:
		var ec corev3.TypedExtensionConfig
		if err := u.res.UnmarshalTo(&ec); err != nil {
			return nil, fmt.Errorf("filter configuration %s: %w", u.name, err)
		}
		tc := ec.GetTypedConfig()
		if !tc.MessageIs(&hcmv3.HttpConnectionManager{}) {
			return nil, nil
		}
		var hcm hcmv3.HttpConnectionManager
		if err := tc.UnmarshalTo(&hcm); err != nil {
			return nil, fmt.Errorf("filter configuration %s: %w", u.name, err)
		}
		if n := hcm.GetRds().GetRouteConfigName(); n != "" {
			return []string{n}, nil
		}
	}
	return nil, nil
}

// clustersWarm says whether the clusters have come and every endpoint
// they name too: Envoy asks for listeners only then.
func (h *held) clustersWarm() bool {
	if !h.got[resource.ClusterType] {
		return false
	}
	for _, names := range h.refs[resource.ClusterType] {
		for _, name := range names {
			if _, ok := h.res[resource.EndpointType][name]; !ok {
				return false
			}
		}
	}
	return true
}

// complete says whether the client holds every cluster and listener of
// the fleet, and every endpoint, filter configuration and route they name
// (directly or through a filter configuration), all ACKed.
func (h *held) complete(want []string) bool {
	for _, t := range []string{resource.ClusterType, resource.ListenerType} {
		if !h.got[t] {
			return false
		}
		for _, name := range want {
			if _, ok := h.res[t][name]; !ok {
				return false
			}
		}
	}
	for t, refs := range h.refs {
		dep := dependent[t]
		for _, names := range refs {
			for _, name := range names {
				if _, ok := h.res[dep][name]; !ok {
					return false
				}
			}
		}
	}
	return true
}

// afterACK runs once a response has been ACKed: it settles a pending
// expectation the response fulfils and notes the initial sync.
func (c *envoyClient) afterACK(h *held, typeURL string, ups []update) {
	now := time.Now()
	if e := c.pending(); e != nil && e.typeURL == typeURL {
		for _, u := range ups {
			if u.name == e.name && e.match(u.res) {
				c.fulfilled(e, now)
				break
			}
		}
	}
	if c.syncedAt.Load() == 0 && h.complete(c.cfg.want) {
		c.syncedAt.Store(int64(max(now.Sub(c.opened), 1)))
		close(c.syncedCh)
	}
}

// sotwStream runs one state-of-the-world ADS stream.
func (c *envoyClient) sotwStream(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.markOpened()
	st, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	h := newHeld()
	request := func(typeURL string) error {
		return st.Send(&discoveryv3.DiscoveryRequest{Node: c.node(), TypeUrl: typeURL, VersionInfo: h.version[typeURL],
			ResponseNonce: h.nonce[typeURL], ResourceNames: h.subscribed(typeURL)})
	}
	// Wildcard: no names. Like Envoy, listeners are asked for once the
	// clusters are warm (they and their endpoints have come).
	if err := request(resource.ClusterType); err != nil {
		return err
	}
	listeners := false
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		c.bytes.Add(int64(proto.Size(resp)))
		t := resp.GetTypeUrl()
		ups := make([]update, 0, len(resp.GetResources()))
		for _, a := range resp.GetResources() {
			if a.GetTypeUrl() != t {
				return fmt.Errorf("a %s response carries a %s", t, a.GetTypeUrl())
			}
			name := resourceName(a.GetValue())
			if name == "" {
				return fmt.Errorf("a %s without a name", t)
			}
			ups = append(ups, update{name: name, res: a})
		}
		// Clusters and listeners come as full state; endpoints, filter
		// configurations and routes may come as only the changed ones:
		// merge those.
		full := t == resource.ClusterType || t == resource.ListenerType
		sub, unsub, err := h.apply(t, ups, nil, full)
		if err != nil {
			return err
		}
		h.version[t], h.nonce[t] = resp.GetVersionInfo(), resp.GetNonce()
		if err := request(t); err != nil { // the ACK
			return err
		}
		c.afterACK(h, t, ups)
		if len(sub)+len(unsub) > 0 {
			if err := request(dependent[t]); err != nil {
				return err
			}
		}
		if !listeners && h.clustersWarm() {
			listeners = true
			if err := request(resource.ListenerType); err != nil {
				return err
			}
		}
	}
}

// deltaStream runs one incremental ADS stream.
func (c *envoyClient) deltaStream(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.markOpened()
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return err
	}
	h := newHeld()
	// Wildcard: a first request with no names. Listeners once the
	// clusters are warm, as in the state-of-the-world stream.
	wildcard := func(t string) error { return st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: c.node(), TypeUrl: t}) }
	if err := wildcard(resource.ClusterType); err != nil {
		return err
	}
	listeners := false
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		c.bytes.Add(int64(proto.Size(resp)))
		t := resp.GetTypeUrl()
		ups := make([]update, 0, len(resp.GetResources()))
		for _, r := range resp.GetResources() {
			if r.GetResource().GetTypeUrl() != t {
				return fmt.Errorf("a %s response carries a %s", t, r.GetResource().GetTypeUrl())
			}
			ups = append(ups, update{name: r.GetName(), res: r.GetResource()})
		}
		sub, unsub, err := h.apply(t, ups, resp.GetRemovedResources(), false)
		if err != nil {
			return err
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: c.node(), TypeUrl: t, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		c.afterACK(h, t, ups)
		if len(sub)+len(unsub) > 0 {
			if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: c.node(), TypeUrl: dependent[t],
				ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub}); err != nil {
				return err
			}
		}
		if !listeners && h.clustersWarm() {
			listeners = true
			if err := wildcard(resource.ListenerType); err != nil {
				return err
			}
		}
	}
}

// resourceName reads field 1 of a serialised resource without decoding
// the rest: the name of a cluster, listener, filter configuration and
// route configuration, and the cluster_name of a cluster load assignment.
func resourceName(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			return string(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return ""
}
