package xds

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Kind is a kind of data plane; each gets its own variant of the resources.
type Kind string

const (
	// KindEnvoy is an Envoy proxy: listeners on the virtual IPs.
	KindEnvoy Kind = "envoy"
	// KindGRPC is a proxyless gRPC client: API listeners.
	KindGRPC Kind = "grpc"
)

// Group is what a client reads: the resources of one fleet for one kind.
type Group struct {
	Fleet string
	Kind  Kind
}

// GroupOf places a client: its fleet is the xDS node's cluster, its kind
// follows the user agent (grpc-go says "gRPC Go", grpc-js "grpc-node-js").
func GroupOf(n *corev3.Node, defaultFleet string) Group {
	g := Group{Fleet: n.GetCluster(), Kind: KindEnvoy}
	if g.Fleet == "" {
		g.Fleet = defaultFleet
	}
	if strings.HasPrefix(strings.ToLower(n.GetUserAgentName()), "grpc") {
		g.Kind = KindGRPC
	}
	return g
}

// TypeOrder is the order resources are published in on ADS: clusters
// before endpoints before filter configurations (ECDS) before secrets
// (SDS) before listeners before routes, so that nothing refers to what a
// client has not received yet: a listener naming a secret is warmed (not
// serving) until the secret arrives, and the secret is in the cache before
// the listener is. Removals go in the reverse order: a listener goes
// before the filter configurations and secrets it names (Envoy closes new
// connections on a listener whose filter configuration was removed).
var TypeOrder = []string{resource.ClusterType, resource.EndpointType, resource.ExtensionConfigType, resource.SecretType, resource.ListenerType, resource.RouteType}

// fullState tells the types whose state-of-the-world responses carry every
// resource the client subscribes to (the xDS protocol's rule for listeners
// and clusters); other types carry only what changed.
func fullState(typeURL string) bool {
	return typeURL == resource.ListenerType || typeURL == resource.ClusterType
}

// Update is the change to one group's resources at a revision.
type Update struct {
	// Upsert holds new or changed resources, marshalled (see Marshal), by
	// type URL and name.
	Upsert map[string]map[string]*anypb.Any
	// Remove holds removed resource names by type URL.
	Remove map[string][]string
}

// Marshal serialises a resource once, deterministically, for every client
// that will receive it.
func Marshal(r types.Resource) (*anypb.Any, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(r.ProtoReflect().Descriptor().FullName()), Value: b}, nil
}

// Cache holds, per group and type, the marshalled resources, a log of
// which changed at which sequence number, and the open watches. Each
// client's position is one sequence number per type (what it was last
// sent), so a change costs the clients that need it and not the number of
// load balancers, and a client's state does not grow with the fleet. It
// implements go-control-plane's cache.Cache for go-control-plane's server,
// which keeps the protocol and stream handling.
type Cache struct {
	defaultFleet string
	prefix       string

	mu       sync.Mutex
	groups   map[Group]map[string]*typeCache
	revision int64
	conns    map[int64]*conn
	// bound links a request being handled to its stream: the tracker's
	// request callback runs just before the server asks for a watch.
	bound map[*discoveryv3.DiscoveryRequest]int64
	delta map[*discoveryv3.DeltaDiscoveryRequest]int64
	// gate bounds the large responses in flight.
	gate *gate
	// shared are the full states the codec sends pre-encoded.
	shared *shared
	// secretsFor decides which streams may be sent their group's secrets
	// (see ServeSecrets); nil: none.
	secretsFor func(ctx context.Context, g Group) bool
}

type typeCache struct {
	shared  *shared // where full states are registered for the codec
	group   Group
	typeURL string
	seq     uint64
	entries map[string]*entry
	live    int // entries that are not removal records
	// log lists changes in sequence order; an entry whose seq differs from
	// the logged one was changed again later (the later record counts).
	log []change
	// full is the sorted state of the world at seq fullSeq, shared by the
	// wildcard state-of-the-world clients it is sent to.
	full    *state
	watches map[*watch]struct{}
	// revs maps sequence numbers to the newest store revision at which
	// each was current, for status.
	revs []seqRev
}

type entry struct {
	name    string
	seq     uint64
	version string
	res     *anypb.Any            // nil when removed (a tombstone)
	delta   *discoveryv3.Resource // the same, as a delta resource
}

type change struct {
	seq  uint64
	name string
}

type seqRev struct {
	seq uint64
	rev int64
}

// state is an ordered list of resources, shared read-only. A full state
// (world) also lists its delta resources, and encodes each list once
// when first sent through the codec.
type state struct {
	seq   uint64
	names []string
	res   []*anypb.Any
	delta []*discoveryv3.Resource

	anysOnce, deltaOnce sync.Once
	anysEnc, deltaEnc   []byte
}

// maxRevs bounds typeCache.revs; an acknowledgement of an older sequence
// counts as revision 0 (that client is far behind anyway).
const maxRevs = 1024

// NewCache returns an empty cache whose versions start from revision.
func NewCache(defaultFleet string, revision int64) *Cache {
	return &Cache{
		defaultFleet: defaultFleet,
		prefix:       "r" + strconv.FormatInt(revision, 10) + ".",
		groups:       map[Group]map[string]*typeCache{},
		revision:     revision,
		conns:        map[int64]*conn{},
		bound:        map[*discoveryv3.DiscoveryRequest]int64{},
		delta:        map[*discoveryv3.DeltaDiscoveryRequest]int64{},
		gate:         newGate(8, 30*time.Second),
		shared:       &shared{},
	}
}

func (c *Cache) typeCache(g Group, typeURL string) *typeCache {
	caches := c.groups[g]
	if caches == nil {
		caches = map[string]*typeCache{}
		c.groups[g] = caches
	}
	tc := caches[typeURL]
	if tc == nil {
		tc = &typeCache{shared: c.shared, group: g, typeURL: typeURL, entries: map[string]*entry{}, watches: map[*watch]struct{}{}}
		tc.mark(c.revision)
		caches[typeURL] = tc
	}
	return tc
}

func (c *Cache) version(seq uint64) string { return c.prefix + strconv.FormatUint(seq, 10) }

// seqOf parses a version this cache handed out; ok is false for versions
// of another process or none.
func (c *Cache) seqOf(version string) (uint64, bool) {
	rest, ok := strings.CutPrefix(version, c.prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

func (tc *typeCache) mark(rev int64) {
	if n := len(tc.revs); n > 0 && tc.revs[n-1].seq == tc.seq {
		tc.revs[n-1].rev = rev
		return
	}
	tc.revs = append(tc.revs, seqRev{seq: tc.seq, rev: rev})
	if len(tc.revs) > maxRevs {
		tc.revs = append(tc.revs[:0:0], tc.revs[len(tc.revs)-maxRevs/2:]...)
	}
}

func (tc *typeCache) revisionOf(seq uint64) int64 {
	i := sort.Search(len(tc.revs), func(i int) bool { return tc.revs[i].seq >= seq })
	if i < len(tc.revs) && tc.revs[i].seq == seq {
		return tc.revs[i].rev
	}
	return 0
}

// Apply publishes the updates of one store revision, in TypeOrder for
// additions and the reverse for removals, marks every cache as current at
// that revision, and answers the watches the change concerns.
func (c *Cache) Apply(revision int64, updates map[Group]*Update) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	groups := make([]Group, 0, len(updates))
	for g := range updates {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		return groups[i].Fleet < groups[j].Fleet || groups[i].Fleet == groups[j].Fleet && groups[i].Kind < groups[j].Kind
	})
	if revision > c.revision {
		c.revision = revision
	}
	for _, g := range groups {
		u := updates[g]
		for _, typeURL := range TypeOrder {
			if len(u.Upsert[typeURL]) > 0 {
				errs = append(errs, c.update(g, typeURL, u.Upsert[typeURL], nil))
			}
		}
		for i := len(TypeOrder) - 1; i >= 0; i-- {
			if typeURL := TypeOrder[i]; len(u.Remove[typeURL]) > 0 {
				errs = append(errs, c.update(g, typeURL, nil, u.Remove[typeURL]))
			}
		}
	}
	for _, caches := range c.groups {
		for _, tc := range caches {
			tc.mark(c.revision)
		}
	}
	return errors.Join(errs...)
}

func (c *Cache) update(g Group, typeURL string, upsert map[string]*anypb.Any, remove []string) error {
	tc := c.typeCache(g, typeURL)
	changed := make([]string, 0, len(upsert)+len(remove))
	for name, res := range upsert {
		if res == nil || res.GetTypeUrl() != typeURL {
			return fmt.Errorf("xds: resource %q is not a %s", name, typeURL)
		}
		changed = append(changed, name)
	}
	for _, name := range remove {
		if e := tc.entries[name]; e != nil && e.res != nil {
			changed = append(changed, name)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	sort.Strings(changed)
	tc.seq++
	version := c.version(tc.seq)
	for _, name := range changed {
		e := &entry{name: name, seq: tc.seq, version: version}
		if res, ok := upsert[name]; ok {
			e.res = res
			e.delta = &discoveryv3.Resource{Name: name, Version: version, Resource: res}
		}
		if old := tc.entries[name]; old != nil && old.res != nil {
			tc.live--
		}
		if e.res != nil {
			tc.live++
		}
		tc.entries[name] = e
		tc.log = append(tc.log, change{seq: tc.seq, name: name})
	}
	c.compact(tc)
	for w := range tc.watches {
		if !w.wants(changed) {
			continue
		}
		if c.answer(tc, w, w.added) {
			delete(tc.watches, w)
		}
	}
	return nil
}

// compact drops superseded log records once they outnumber the resources,
// and the removals every connected client has already been sent.
func (c *Cache) compact(tc *typeCache) {
	if len(tc.log) < 2*tc.live+1024 {
		return
	}
	// A client of this group sent nothing yet gets the whole state, and
	// its removals from what it says it holds: it needs no record.
	oldest := tc.seq
	for _, cn := range c.conns {
		if ct := cn.types[tc.typeURL]; cn.group == tc.group && ct != nil && ct.sentAny && ct.sent < oldest {
			oldest = ct.sent
		}
	}
	log := make([]change, 0, len(tc.entries))
	for _, l := range tc.log {
		e := tc.entries[l.name]
		if e == nil || e.seq != l.seq {
			continue
		}
		if e.res == nil && e.seq <= oldest {
			delete(tc.entries, l.name)
			continue
		}
		log = append(log, l)
	}
	tc.log = log
}

// since calls fn for each resource changed after seq, once per name.
func (tc *typeCache) since(seq uint64, fn func(*entry)) {
	i := sort.Search(len(tc.log), func(i int) bool { return tc.log[i].seq > seq })
	for _, l := range tc.log[i:] {
		if e := tc.entries[l.name]; e != nil && e.seq == l.seq {
			fn(e)
		}
	}
}

// world returns the sorted list of every live resource, built once per
// sequence number and shared.
func (tc *typeCache) world() *state {
	if tc.full != nil && tc.full.seq == tc.seq {
		return tc.full
	}
	s := &state{seq: tc.seq}
	for name, e := range tc.entries {
		if e.res != nil {
			s.names = append(s.names, name)
		}
	}
	sort.Strings(s.names)
	s.res = make([]*anypb.Any, len(s.names))
	s.delta = make([]*discoveryv3.Resource, len(s.names))
	for i, name := range s.names {
		s.res[i] = tc.entries[name].res
		s.delta[i] = tc.entries[name].delta
	}
	tc.shared.remove(tc.full)
	tc.full = s
	tc.shared.add(s)
	return s
}

// Revision is the newest revision applied.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision
}

// RevisionOf returns the store revision a version handed out to a group
// reflects, or 0 when it is unknown.
func (c *Cache) RevisionOf(g Group, typeURL, version string) int64 {
	seq, ok := c.seqOf(version)
	if !ok {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc := c.groups[g][typeURL]; tc != nil {
		return tc.revisionOf(seq)
	}
	return 0
}

// Resources returns one group's resources of a type, unmarshalled.
func (c *Cache) Resources(g Group, typeURL string) map[string]types.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]types.Resource{}
	for name, e := range c.typeCache(g, typeURL).entries {
		if e.res == nil {
			continue
		}
		if m, err := e.res.UnmarshalNew(); err == nil {
			out[name] = m
		}
	}
	return out
}

// Served tells, for each name, whether group g has a resource of the type
// by that name (one lock for all of them).
func (c *Cache) Served(g Group, typeURL string, names []string) []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]bool, len(names))
	tc := c.groups[g][typeURL]
	if tc == nil {
		return out
	}
	for i, name := range names {
		e := tc.entries[name]
		out[i] = e != nil && e.res != nil
	}
	return out
}

func servedType(typeURL string) error {
	switch typeURL {
	case resource.ClusterType, resource.EndpointType, resource.ExtensionConfigType, resource.SecretType, resource.ListenerType, resource.RouteType:
		return nil
	case "":
		return errors.New("xds: request without a type URL")
	}
	return fmt.Errorf("xds: type %s is not served", typeURL)
}

// CreateWatch implements cache.ConfigWatcher for state-of-the-world streams.
func (c *Cache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	if err := servedType(req.GetTypeUrl()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.bound[req]
	delete(c.bound, req)
	g := GroupOf(req.GetNode(), c.defaultFleet)
	if err := c.entitled(id, ok, g, req.GetTypeUrl()); err != nil {
		return nil, err
	}
	w := &watch{
		typeURL: req.GetTypeUrl(), sub: sub, sotw: ch,
		conn: c.connType(id, ok, g, req.GetTypeUrl()),
	}
	return c.watch(g, w, nil)
}

// CreateDeltaWatch implements cache.ConfigWatcher for delta streams.
func (c *Cache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	if err := servedType(req.GetTypeUrl()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.delta[req]
	delete(c.delta, req)
	g := GroupOf(req.GetNode(), c.defaultFleet)
	if err := c.entitled(id, ok, g, req.GetTypeUrl()); err != nil {
		return nil, err
	}
	w := &watch{
		typeURL: req.GetTypeUrl(), sub: sub, deltaCh: ch,
		conn: c.connType(id, ok, g, req.GetTypeUrl()),
	}
	if !w.conn.sentAny {
		w.initial = req.GetInitialResourceVersions()
	}
	return c.watch(g, w, req.GetResourceNamesSubscribe())
}

// watch answers at once when the client is behind, or parks the watch
// until a change it wants.
func (c *Cache) watch(g Group, w *watch, subscribed []string) (func(), error) {
	tc := c.typeCache(g, w.typeURL)
	if w.sotw != nil {
		now := w.sub.SubscribedResources()
		if w.conn.sentAny {
			// The names a state-of-the-world request adds are those missing
			// from the previous request's, and those an answer added that
			// was never sent (the server drops an unsent answer when a new
			// request of its type comes).
			prev := w.conn.names
			for name := range now {
				if _, ok := prev[name]; !ok {
					subscribed = append(subscribed, name)
				}
			}
			for _, name := range w.conn.unsent {
				if _, ok := now[name]; ok {
					subscribed = append(subscribed, name)
				}
			}
		}
		w.conn.names, w.conn.unsent = now, subscribed
	}
	w.added = subscribed
	if c.answer(tc, w, subscribed) {
		return func() {}, nil
	}
	tc.watches[w] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(tc.watches, w)
		c.mu.Unlock()
	}, nil
}

// Fetch implements cache.ConfigFetcher: REST polling is not offered.
func (c *Cache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("xds: fetch is not supported; use a stream")
}

var _ cache.Cache = (*Cache)(nil)

// EqualAny tells whether two marshalled resources are the same.
func EqualAny(a, b *anypb.Any) bool {
	return a.GetTypeUrl() == b.GetTypeUrl() && string(a.GetValue()) == string(b.GetValue())
}
