package xds

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// Key names one resource of a kind of data plane.
type Key struct {
	TypeURL string
	Name    string
}

// Pending is a load balancer change waiting for the data plane.
type Pending struct {
	LoadBalancer uint32
	Fleet        string
	Revision     int64
	// Changed lists, per kind, the resources the change added, altered or
	// removed. A client must acknowledge those it uses.
	Changed map[Kind][]Key
}

// Outcome reports the fate of pending changes.
type Outcome interface {
	// Applied: every connected client of the fleet acknowledged the change.
	Applied(lb uint32, revision int64)
	// Rejected: a client of this kind refused the load balancer's
	// configuration with this message.
	Rejected(lb uint32, revision int64, kind Kind, message string)
}

// Tracker follows every xDS stream: what each client subscribes to, what
// was sent (nonce, version), and what it acknowledged or refused. A
// request carrying a response nonce acknowledges that response, unless it
// carries error_detail, which makes it a NACK (go-control-plane leaves
// that interpretation to us).
type Tracker struct {
	cache   *Cache
	outcome Outcome

	mu      sync.Mutex
	streams map[int64]*stream
	pending map[uint32]*Pending
}

type stream struct {
	group Group
	node  string
	// sent maps a nonce to the type and version of that response; order
	// holds the nonces oldest first, to forget the oldest.
	sent  map[string]sent
	order []string
	// acked is the last acknowledged version per type.
	acked map[string]string
	// names are the subscribed resource names per type; wildcard types
	// are in wildcard.
	names    map[string]map[string]bool
	wildcard map[string]bool
}

type sent struct {
	typeURL, version string
}

// maxNonces bounds the responses remembered per stream; clients answer
// the latest ones.
const maxNonces = 64

// NewTracker returns a tracker reporting to outcome.
func NewTracker(c *Cache, outcome Outcome) *Tracker {
	return &Tracker{cache: c, outcome: outcome, streams: map[int64]*stream{}, pending: map[uint32]*Pending{}}
}

// Expect registers changes that were just applied to the cache, and
// settles at once those no connected client has to acknowledge.
func (t *Tracker) Expect(changes []*Pending) {
	t.mu.Lock()
	for _, p := range changes {
		t.pending[p.LoadBalancer] = p
	}
	t.mu.Unlock()
	t.settle()
}

// Forget drops a pending change (the load balancer changed again or went away).
func (t *Tracker) Forget(lb uint32) {
	t.mu.Lock()
	delete(t.pending, lb)
	t.mu.Unlock()
}

// Clients returns the number of connected streams per group.
func (t *Tracker) Clients() map[Group]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[Group]int{}
	for _, s := range t.streams {
		if s.node != "" {
			out[s.group]++
		}
	}
	return out
}

// settle reports every pending change that all interested clients have
// acknowledged.
func (t *Tracker) settle() {
	t.mu.Lock()
	var done []*Pending
	for id, p := range t.pending {
		if t.appliedEverywhere(p) {
			done = append(done, p)
			delete(t.pending, id)
		}
	}
	t.mu.Unlock()
	sort.Slice(done, func(i, j int) bool { return done[i].LoadBalancer < done[j].LoadBalancer })
	for _, p := range done {
		t.outcome.Applied(p.LoadBalancer, p.Revision)
	}
}

func (t *Tracker) appliedEverywhere(p *Pending) bool {
	for _, s := range t.streams {
		if s.node == "" || s.group.Fleet != p.Fleet {
			continue
		}
		for _, k := range p.Changed[s.group.Kind] {
			if !s.uses(k) {
				continue
			}
			acked, ok := s.acked[k.TypeURL]
			if !ok || t.cache.RevisionOf(s.group, k.TypeURL, acked) < p.Revision {
				return false
			}
		}
	}
	return true
}

// uses tells whether a client depends on a resource. An Envoy uses every
// resource of its group (it subscribes to routes and endpoints only after
// the listeners and clusters that name them, so waiting for its
// subscription would be too early); a gRPC client uses what it subscribed to.
func (s *stream) uses(k Key) bool {
	if s.group.Kind == KindEnvoy || s.wildcard[k.TypeURL] {
		return true
	}
	return s.names[k.TypeURL][k.Name]
}

func (t *Tracker) open(id int64) {
	t.mu.Lock()
	t.streams[id] = &stream{sent: map[string]sent{}, acked: map[string]string{},
		names: map[string]map[string]bool{}, wildcard: map[string]bool{}}
	t.mu.Unlock()
}

func (t *Tracker) close(id int64) {
	t.mu.Lock()
	delete(t.streams, id)
	t.mu.Unlock()
	t.settle() // a client that left no longer holds anything up
}

// request records a client's request; it returns the rejection to report
// when the request is a NACK.
func (t *Tracker) request(id int64, node *corev3.Node, typeURL, nonce, errorDetail string, subscribe func(*stream)) {
	t.mu.Lock()
	s := t.streams[id]
	if s == nil {
		t.mu.Unlock()
		return
	}
	if s.node == "" && node != nil {
		s.node, s.group = node.GetId(), GroupOf(node, t.cache.defaultFleet)
	}
	subscribe(s)
	var rejected []*Pending
	if r, ok := s.sent[nonce]; ok && nonce != "" {
		if errorDetail == "" {
			s.acked[r.typeURL] = r.version
		} else {
			var named bool
			rejected, named = t.blame(s, r, errorDetail)
			if named {
				// Envoy and grpc-go apply the valid resources of a response
				// they NACK: when the error names what it refused, the rest
				// of that version is in force on the client.
				s.acked[r.typeURL] = r.version
			}
		}
	}
	kind := s.group.Kind
	t.mu.Unlock()
	for _, p := range rejected {
		t.outcome.Rejected(p.LoadBalancer, p.Revision, kind, errorDetail)
	}
	t.settle()
}

var resourceID = regexp.MustCompile(`\blb_(\d+)`)

// blame finds the changes a NACK refers to: the pending changes whose load
// balancer the error message names, or else every pending change of the
// refused type that the response carried. A load balancer the message
// names that has no pending change (a client that started using it found
// its configuration unacceptable) is blamed at revision 0, "as it is now".
// named reports whether the message named any load balancer.
func (t *Tracker) blame(s *stream, r sent, message string) (blamed []*Pending, named bool) {
	rev := t.cache.RevisionOf(s.group, r.typeURL, r.version)
	var namedPending, carried []*Pending
	ids := map[uint32]bool{}
	for _, m := range resourceID.FindAllStringSubmatch(message, -1) {
		if id, err := strconv.ParseUint(m[1], 10, 32); err == nil {
			ids[uint32(id)] = true
		}
	}
	for id, p := range t.pending {
		if p.Fleet != s.group.Fleet || p.Revision > rev {
			continue
		}
		for _, k := range p.Changed[s.group.Kind] {
			if k.TypeURL == r.typeURL && s.uses(k) {
				carried = append(carried, p)
				if ids[id] {
					namedPending = append(namedPending, p)
				}
				break
			}
		}
	}
	named = len(ids) > 0
	if len(namedPending) > 0 {
		carried = namedPending
	}
	for _, p := range carried {
		delete(t.pending, p.LoadBalancer)
		delete(ids, p.LoadBalancer)
	}
	for id := range ids {
		if _, waiting := t.pending[id]; !waiting {
			carried = append(carried, &Pending{LoadBalancer: id, Fleet: s.group.Fleet})
		}
	}
	return carried, named
}

func (t *Tracker) response(id int64, typeURL, version, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[id]
	if s == nil {
		return
	}
	if len(s.order) >= maxNonces {
		delete(s.sent, s.order[0])
		s.order = s.order[1:]
	}
	s.sent[nonce] = sent{typeURL: typeURL, version: version}
	s.order = append(s.order, nonce)
}

// Callbacks returns the go-control-plane server callbacks that feed the tracker.
func (t *Tracker) Callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, _ string) error {
			t.open(id)
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { t.close(id) },
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), func(s *stream) {
				names := map[string]bool{}
				for _, n := range req.GetResourceNames() {
					names[n] = true
				}
				s.names[req.GetTypeUrl()] = names
				legacyWildcard := len(names) == 0 && (req.GetTypeUrl() == resource.ListenerType || req.GetTypeUrl() == resource.ClusterType)
				s.wildcard[req.GetTypeUrl()] = legacyWildcard || names["*"]
			})
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			t.response(id, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
		},
		DeltaStreamOpenFunc: func(_ context.Context, id int64, _ string) error {
			t.open(id)
			return nil
		},
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { t.close(id) },
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), func(s *stream) {
				typeURL := req.GetTypeUrl()
				names := s.names[typeURL]
				if names == nil {
					names = map[string]bool{}
					s.names[typeURL] = names
					// A first request that names nothing is a wildcard subscription.
					s.wildcard[typeURL] = len(req.GetResourceNamesSubscribe()) == 0
				}
				for _, n := range req.GetResourceNamesSubscribe() {
					if n == "*" {
						s.wildcard[typeURL] = true
					}
					names[n] = true
				}
				for _, n := range req.GetResourceNamesUnsubscribe() {
					if n == "*" {
						s.wildcard[typeURL] = false
					}
					delete(names, n)
				}
			})
			return nil
		},
		StreamDeltaResponseFunc: func(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			t.response(id, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
		},
	}
}
