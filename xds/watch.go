package xds

import (
	"context"
	"sort"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// conn is what the cache knows of one stream: per type, the sequence
// number it was last sent. That is the whole per-client state, whatever
// the number of resources (go-control-plane's server keeps the names a
// client subscribes to).
type conn struct {
	id    int64
	group Group           // known from the first watch
	ctx   context.Context // the stream's (its peer, for ServeSecrets)
	done  <-chan struct{} // closed when the stream ends
	types map[string]*connType
	// bound are the requests bound to this stream and not yet watched,
	// by type, so they can be unbound when the server ignores them.
	bound      map[string]*discoveryv3.DiscoveryRequest
	boundDelta map[string]*discoveryv3.DeltaDiscoveryRequest
}

type connType struct {
	stream  int64
	done    <-chan struct{}
	sent    uint64 // the sequence number of the last response sent
	sentAny bool
	// names is the subscription of the previous state-of-the-world
	// request (the server's own map, not a copy), to find added names;
	// unsent are the names added since the last response sent.
	names  map[string]struct{}
	unsent []string
}

// watch is one open request of a stream for a type.
type watch struct {
	typeURL string
	sub     cache.Subscription
	conn    *connType
	sotw    chan cache.Response
	deltaCh chan cache.DeltaResponse
	// initial are the versions a delta client says it holds on a new stream.
	initial map[string]string
	// added are the names subscribed since the client was last sent the type.
	added []string
}

func (w *watch) wants(changed []string) bool {
	if w.sub.IsWildcard() {
		return true
	}
	subscribed := w.sub.SubscribedResources()
	for _, name := range changed {
		if _, ok := subscribed[name]; ok {
			return true
		}
	}
	return false
}

func (w *watch) subscribes(name string) bool {
	if w.sub.IsWildcard() {
		return true
	}
	_, ok := w.sub.SubscribedResources()[name]
	return ok
}

// open registers a stream, whose context ends with it.
func (c *Cache) open(ctx context.Context, id int64) {
	c.mu.Lock()
	c.conns[id] = &conn{id: id, ctx: ctx, done: ctx.Done(), types: map[string]*connType{},
		bound: map[string]*discoveryv3.DiscoveryRequest{}, boundDelta: map[string]*discoveryv3.DeltaDiscoveryRequest{}}
	c.mu.Unlock()
}

// close forgets a stream.
func (c *Cache) close(id int64) {
	c.gate.releaseAll(id)
	c.mu.Lock()
	if cn := c.conns[id]; cn != nil {
		for _, r := range cn.bound {
			delete(c.bound, r)
		}
		for _, r := range cn.boundDelta {
			delete(c.delta, r)
		}
	}
	delete(c.conns, id)
	c.mu.Unlock()
}

// bindRequest tells the cache which stream the next watch for req is for.
func (c *Cache) bindRequest(id int64, req *discoveryv3.DiscoveryRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn := c.conns[id]; cn != nil {
		delete(c.bound, cn.bound[req.GetTypeUrl()])
		cn.bound[req.GetTypeUrl()] = req
		c.bound[req] = id
	}
}

func (c *Cache) bindDelta(id int64, req *discoveryv3.DeltaDiscoveryRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn := c.conns[id]; cn != nil {
		delete(c.delta, cn.boundDelta[req.GetTypeUrl()])
		cn.boundDelta[req.GetTypeUrl()] = req
		c.delta[req] = id
	}
}

// sent records the version a stream was sent for a type.
func (c *Cache) sent(id int64, typeURL, version string) {
	seq, ok := c.seqOf(version)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn := c.conns[id]; cn != nil {
		ct := cn.typ(typeURL)
		ct.sent, ct.sentAny, ct.unsent = seq, true, nil
	}
}

func (cn *conn) typ(typeURL string) *connType {
	ct := cn.types[typeURL]
	if ct == nil {
		ct = &connType{stream: cn.id, done: cn.done}
		cn.types[typeURL] = ct
	}
	return ct
}

// connType returns the stream's state for a type; a watch that no stream
// was bound to (not through the server) gets a fresh one.
func (c *Cache) connType(id int64, bound bool, g Group, typeURL string) *connType {
	if cn := c.conns[id]; bound && cn != nil {
		cn.group = g
		delete(cn.bound, typeURL)
		delete(cn.boundDelta, typeURL)
		return cn.typ(typeURL)
	}
	return &connType{}
}

// answer sends the watch what its client lacks, if anything; it reports
// whether it did. added are names the client subscribed to since its last
// request. Callers hold c.mu.
func (c *Cache) answer(tc *typeCache, w *watch, added []string) bool {
	if w.sotw != nil {
		return c.answerSotW(tc, w, added)
	}
	return c.answerDelta(tc, w, added)
}

func (c *Cache) answerSotW(tc *typeCache, w *watch, added []string) bool {
	ct := w.conn
	first := !ct.sentAny
	if !first && tc.seq <= ct.sent && len(added) == 0 {
		return false
	}
	var st *state
	switch {
	case fullState(tc.typeURL) && w.sub.IsWildcard():
		st = tc.world()
	case fullState(tc.typeURL):
		if !first && len(added) == 0 && !c.changedFor(tc, w) {
			return false
		}
		st = &state{}
		names := make([]string, 0, len(w.sub.SubscribedResources()))
		for name := range w.sub.SubscribedResources() {
			if e := tc.entries[name]; e != nil && e.res != nil {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		st.names = names
		for _, name := range names {
			st.res = append(st.res, tc.entries[name].res)
		}
	default:
		// Endpoints and routes: only what changed, and what was added.
		st = &state{}
		include := func(e *entry) {
			if e.res != nil && w.subscribes(e.name) {
				st.names = append(st.names, e.name)
				st.res = append(st.res, e.res)
			}
		}
		if first {
			if world := tc.world(); w.sub.IsWildcard() {
				st = world
			} else if len(w.sub.SubscribedResources()) > len(world.names)/4 {
				// An Envoy's first request: the shared sorted state, filtered.
				for i, name := range world.names {
					if w.subscribes(name) {
						st.names = append(st.names, name)
						st.res = append(st.res, world.res[i])
					}
				}
				if len(st.res) == len(world.res) {
					st = world // all of it: the shared list, encoded once
				}
			} else {
				names := make([]string, 0, len(w.sub.SubscribedResources()))
				for name := range w.sub.SubscribedResources() {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					if e := tc.entries[name]; e != nil {
						include(e)
					}
				}
			}
		} else {
			seen := map[string]bool{}
			tc.since(ct.sent, func(e *entry) {
				if len(added) > 0 {
					seen[e.name] = true
				}
				include(e)
			})
			for _, name := range added {
				if e := tc.entries[name]; e != nil && !seen[name] {
					seen[name] = true
					include(e)
				}
			}
		}
		if len(st.names) == 0 && !first {
			return false
		}
	}
	resp := &sotwResponse{
		req:     &discoveryv3.DiscoveryRequest{TypeUrl: tc.typeURL},
		version: c.version(tc.seq),
		st:      st,
	}
	if len(st.res) >= bigResponse {
		resp.gate, resp.hold, resp.done = c.gate, holdKey{ct.stream, tc.typeURL}, ct.done
	}
	select {
	case w.sotw <- resp:
		return true
	default:
		// The server holds at most one answer per type; a full channel
		// means the stream is going away. Keep the watch.
		return false
	}
}

// changedFor tells whether anything the watch subscribes to changed
// since its client was last sent the type.
func (c *Cache) changedFor(tc *typeCache, w *watch) bool {
	found := false
	tc.since(w.conn.sent, func(e *entry) {
		if !found && w.subscribes(e.name) {
			found = true
		}
	})
	return found
}

func (c *Cache) answerDelta(tc *typeCache, w *watch, added []string) bool {
	ct := w.conn
	first := !ct.sentAny
	var res []*discoveryv3.Resource
	var removed []string
	seen := map[string]bool{}
	add := func(e *entry) {
		if seen[e.name] {
			return
		}
		seen[e.name] = true
		switch {
		case e.res == nil:
			removed = append(removed, e.name)
		case w.initial[e.name] != e.version:
			res = append(res, e.delta)
		}
	}
	sorted := false
	if first {
		subscribed := w.sub.SubscribedResources()
		wildcard := w.sub.IsWildcard()
		found := 0 // subscribed names that exist
		if world := tc.world(); wildcard || len(subscribed) > len(world.names)/4 {
			// An Envoy's first request: the shared sorted state, filtered
			// (names are unique there: no need to track them).
			sorted = true
			for i, name := range world.names {
				if !wildcard {
					if _, ok := subscribed[name]; !ok {
						continue
					}
					found++
				}
				if r := world.delta[i]; w.initial[name] != r.GetVersion() {
					res = append(res, r)
				}
			}
			if len(res) == len(world.delta) {
				res = world.delta // all of it: the shared list, encoded once
			}
		} else {
			for name := range subscribed {
				if e := tc.entries[name]; e != nil && e.res != nil {
					found++
					add(e)
				}
			}
		}
		// What the client holds or asks for that does not exist.
		gone := func(name string) {
			if e := tc.entries[name]; (e == nil || e.res == nil) && !seen[name] {
				seen[name] = true
				removed = append(removed, name)
			}
		}
		for name := range w.initial {
			gone(name)
		}
		if found < len(subscribed) { // some subscribed names do not exist
			for name := range subscribed {
				gone(name)
			}
		}
	} else {
		tc.since(ct.sent, func(e *entry) {
			if w.subscribes(e.name) {
				add(e)
			}
		})
		for _, name := range added {
			if e := tc.entries[name]; e != nil {
				add(e)
			} else if !seen[name] && name != "*" {
				seen[name] = true
				removed = append(removed, name)
			}
		}
		if len(res) == 0 && len(removed) == 0 {
			return false
		}
	}
	if !sorted {
		sort.Slice(res, func(i, j int) bool { return res[i].GetName() < res[j].GetName() })
	}
	sort.Strings(removed)
	resp := &deltaResponse{
		req:     &discoveryv3.DeltaDiscoveryRequest{TypeUrl: tc.typeURL},
		version: c.version(tc.seq),
		res:     res,
		removed: removed,
	}
	if len(res) >= bigResponse {
		resp.gate, resp.hold, resp.done = c.gate, holdKey{ct.stream, tc.typeURL}, ct.done
	}
	select {
	case w.deltaCh <- resp:
		return true
	default:
		return false
	}
}

// sotwResponse is a state-of-the-world answer over shared, already
// marshalled resources.
type sotwResponse struct {
	req     *discoveryv3.DiscoveryRequest
	version string
	st      *state
	gate    *gate // a large response waits for a slot
	hold    holdKey
	done    <-chan struct{}
}

// sentNames carries a response's ordered resource names to the tracker
// (through the context the server hands to its response callback), so a
// NACK that gives only an index can be attributed.
type sentNamesKey struct{}

func (r *sotwResponse) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	r.gate.acquire(r.hold, r.done) // the server marshals and sends it next
	return &discoveryv3.DiscoveryResponse{VersionInfo: r.version, Resources: r.st.res, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *sotwResponse) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *sotwResponse) GetVersion() (string, error)               { return r.version, nil }
func (r *sotwResponse) GetResponseVersion() string                { return r.version }

// GetReturnedResources is empty: the cache keeps each client's position
// itself, as one number per type.
func (r *sotwResponse) GetReturnedResources() map[string]string { return map[string]string{} }
func (r *sotwResponse) GetContext() context.Context {
	return context.WithValue(context.Background(), sentNamesKey{}, r.st.names)
}

type deltaResponse struct {
	req     *discoveryv3.DeltaDiscoveryRequest
	version string
	res     []*discoveryv3.Resource
	removed []string
	gate    *gate
	hold    holdKey
	done    <-chan struct{}
}

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	r.gate.acquire(r.hold, r.done)
	return &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: r.version, Resources: r.res, RemovedResources: r.removed, TypeUrl: r.req.GetTypeUrl(),
	}, nil
}
func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                   { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                          { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string                { return map[string]string{} }
func (r *deltaResponse) GetReturnedResources() map[string]string             { return map[string]string{} }
func (r *deltaResponse) GetContext() context.Context                         { return context.Background() }

var (
	_ cache.Response      = (*sotwResponse)(nil)
	_ cache.DeltaResponse = (*deltaResponse)(nil)
	_                     = anypb.Any{}
)
