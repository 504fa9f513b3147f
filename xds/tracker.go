package xds

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
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
	// Since, when later than Revision, is the revision a client's
	// acknowledgement must reflect (a change published again, alone, to
	// isolate what a client refused).
	Since int64
	// Changed lists, per kind, the resources the change added, altered or
	// removed. A client must acknowledge those it uses.
	Changed map[Kind][]Key
}

// Outcome reports the fate of pending changes.
type Outcome interface {
	// Applied: every connected client of the fleet acknowledged the change.
	Applied(lb uint32, revision int64)
	// Rejected: a client of this kind refused the load balancer's
	// configuration with this message (revision 0: the configuration in
	// force, which that client refused when it started using it).
	Rejected(lb uint32, revision int64, kind Kind, message string)
	// Suspected: a client of this kind refused a response carrying these
	// changes without saying which; each must be tried alone.
	Suspected(kind Kind, suspects []*Pending, message string)
}

// Limits bound what one client may cost.
type Limits struct {
	// AckTimeout is how long a client may leave a response unanswered
	// (neither ACK nor NACK) before it stops counting for status and is
	// disconnected; 0 disables it.
	AckTimeout time.Duration
	// MaxNames bounds the resource names of one subscription.
	MaxNames int
	// RequestRate and RequestBurst bound a stream's requests per second.
	RequestRate  float64
	RequestBurst int
}

// DefaultLimits suit a fleet of Envoys subscribing to every load balancer.
var DefaultLimits = Limits{AckTimeout: 30 * time.Second, MaxNames: 200_000, RequestRate: 500, RequestBurst: 2000}

// Tracker follows every xDS stream: what each client subscribes to, what
// was sent (nonce, version, the ordered resource names), and what it
// acknowledged or refused. A request carrying a response nonce
// acknowledges that response, unless it carries error_detail, which makes
// it a NACK (go-control-plane leaves that interpretation to us).
type Tracker struct {
	cache   *Cache
	outcome Outcome
	limits  Limits
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	streams map[int64]*stream
	pending map[uint32]*Pending
	// clientsChanged is called when a client names its node (it joins
	// its group) or a stream closes.
	clientsChanged func()
}

// OnClientsChanged sets what to call when a client joins its group (its
// first request names its node) or a stream closes; set it before serving.
func (t *Tracker) OnClientsChanged(f func()) { t.clientsChanged = f }

func (t *Tracker) notifyClients() {
	if t.clientsChanged != nil {
		t.clientsChanged()
	}
}

type stream struct {
	id       int64
	group    Group
	node     string
	peer     string
	identity string // the client certificate's URI, with mutual TLS
	only     string // the type of a per-type discovery stream; "" for ADS
	since    time.Time
	kill     func(error)
	excluded bool // stopped counting for status (ack timeout)
	// drainTime is what the node's bootstrap declares (0: nothing).
	drainTime time.Duration
	limiter   *rate.Limiter
	// unanswered responses by nonce; answering one forgets it and every
	// older one of its type.
	sent map[string]*sentResponse
	// acked is the last acknowledged version per type, and ackedRev the
	// store revision it reflected when acknowledged. (A version keeps
	// reflecting newer revisions while its type does not change; a
	// change of the type is a new version, acknowledged anew, so the
	// revision read then is the one that matters for status.)
	acked    map[string]string
	ackedRev map[string]int64
	// names are the subscribed resource names per type (a reference to
	// what the request carried, not a copy); wildcard types are in wildcard.
	names    map[string]map[string]bool
	wildcard map[string]bool
	count    map[string]int // delta: names subscribed per type
	nacks    uint64
}

type sentResponse struct {
	typeURL, version string
	names            []string // in response order
	at               time.Time
	order            uint64
}

// maxUnanswered bounds the responses remembered per stream; a client that
// leaves more unanswered is far behind and the ack timeout will end it.
const maxUnanswered = 64

// NewTracker returns a tracker reporting to outcome.
func NewTracker(c *Cache, outcome Outcome, limits Limits, log *slog.Logger, m *Metrics) *Tracker {
	if m == nil {
		m = NewMetrics()
	}
	return &Tracker{cache: c, outcome: outcome, limits: limits, log: log, metrics: m, now: time.Now,
		streams: map[int64]*stream{}, pending: map[uint32]*Pending{}}
}

// Metrics are the tracker's Prometheus metrics.
func (t *Tracker) Metrics() *Metrics { return t.metrics }

// Expect registers changes that were just applied to the cache, and
// settles at once those no connected client has to acknowledge.
func (t *Tracker) Expect(changes []*Pending) {
	t.mu.Lock()
	for _, p := range changes {
		if old := t.pending[p.LoadBalancer]; old != nil && old.Revision == p.Revision && old.Fleet == p.Fleet {
			// The same change staged again (read twice): what it changed
			// is still to be acknowledged.
			p = old.merge(p)
		}
		t.pending[p.LoadBalancer] = p
	}
	t.mu.Unlock()
	t.settle()
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
// acknowledged. The Envoys of a group use everything, so for them the
// oldest acknowledged revision per type decides; gRPC clients are checked
// for the names they use.
func (t *Tracker) settle() {
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return
	}
	floor := map[Group]map[string]int64{} // oldest acknowledged revision per group and type
	var named []*stream
	for _, s := range t.streams {
		if s.node == "" || s.excluded {
			continue
		}
		if s.group.Kind != KindEnvoy {
			named = append(named, s)
			continue
		}
		f := floor[s.group]
		if f == nil {
			f = map[string]int64{}
			for _, typeURL := range TypeOrder {
				f[typeURL] = 1<<63 - 1
			}
			floor[s.group] = f
		}
		for _, typeURL := range TypeOrder {
			if s.only != "" && typeURL != s.only {
				continue // a per-type discovery stream carries only its type
			}
			rev := int64(-1)
			if _, ok := s.acked[typeURL]; ok {
				rev = s.ackedRev[typeURL]
			}
			f[typeURL] = min(f[typeURL], rev)
		}
	}
	var done []*Pending
	for id, p := range t.pending {
		if t.applied(p, floor, named) {
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

func (t *Tracker) applied(p *Pending, floor map[Group]map[string]int64, named []*stream) bool {
	if f := floor[Group{Fleet: p.Fleet, Kind: KindEnvoy}]; f != nil {
		for _, k := range p.Changed[KindEnvoy] {
			if f[k.TypeURL] < p.needs() {
				return false
			}
		}
	}
	for _, s := range named {
		if s.group.Fleet != p.Fleet {
			continue
		}
		for _, k := range p.Changed[s.group.Kind] {
			if !s.uses(k) {
				continue
			}
			if _, ok := s.acked[k.TypeURL]; !ok || s.ackedRev[k.TypeURL] < p.needs() {
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

func (t *Tracker) open(ctx context.Context, id int64, typeURL string) {
	s := &stream{id: id, only: typeURL, since: t.now(), sent: map[string]*sentResponse{}, acked: map[string]string{}, ackedRev: map[string]int64{},
		names: map[string]map[string]bool{}, wildcard: map[string]bool{}, count: map[string]int{}}
	if kill, ok := ctx.Value(killKey{}).(func(error)); ok {
		s.kill = kill
	}
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			s.peer = p.Addr.String()
		}
		// With mutual TLS, the client certificate's URI names the client.
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			if uris := info.State.PeerCertificates[0].URIs; len(uris) > 0 {
				s.identity = uris[0].String()
			}
		}
	}
	if t.limits.RequestRate > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(t.limits.RequestRate), max(t.limits.RequestBurst, 1))
	}
	t.cache.open(ctx, id)
	t.mu.Lock()
	t.streams[id] = s
	t.mu.Unlock()
}

func (t *Tracker) close(id int64) {
	t.cache.close(id)
	t.mu.Lock()
	delete(t.streams, id)
	t.mu.Unlock()
	t.settle() // a client that left no longer holds anything up
	t.notifyClients()
}

// admit applies the per-stream limits to a request.
func (t *Tracker) admit(s *stream, names int) error {
	if s.limiter != nil && !s.limiter.Allow() {
		t.metrics.refused.WithLabelValues("request_rate").Inc()
		return status.Errorf(codes.ResourceExhausted, "xds: more than %g requests per second on one stream", t.limits.RequestRate)
	}
	if t.limits.MaxNames > 0 && names > t.limits.MaxNames {
		t.metrics.refused.WithLabelValues("too_many_names").Inc()
		return status.Errorf(codes.ResourceExhausted, "xds: a request may name at most %d resources (got %d)", t.limits.MaxNames, names)
	}
	return nil
}

// request records a client's request and judges the response it answers.
func (t *Tracker) request(id int64, node *corev3.Node, typeURL, nonce, errorDetail string, names int, subscribe func(*stream) int) error {
	t.mu.Lock()
	s := t.streams[id]
	if s == nil {
		t.mu.Unlock()
		return nil
	}
	if err := t.admit(s, names); err != nil {
		t.mu.Unlock()
		return err
	}
	joined := false
	if s.node == "" && node != nil {
		s.node, s.group, s.drainTime = node.GetId(), GroupOf(node, t.cache.defaultFleet), drainTimeOf(node)
		if s.node == "" {
			s.node = "(no id)"
		}
		joined = true
	}
	if n := subscribe(s); t.limits.MaxNames > 0 && n > t.limits.MaxNames {
		t.mu.Unlock()
		t.metrics.refused.WithLabelValues("too_many_names").Inc()
		return status.Errorf(codes.ResourceExhausted, "xds: a subscription may name at most %d resources (got %d)", t.limits.MaxNames, n)
	}
	var rejected, suspects []*Pending
	if r, ok := s.sent[nonce]; ok && nonce != "" {
		// The client read what it answers: a large response's slot is free.
		t.cache.gate.release(holdKey{id, r.typeURL})
		s.answered(r)
		if errorDetail == "" {
			t.ack(s, r)
		} else {
			s.nacks++
			t.metrics.nacks.WithLabelValues(s.group.Fleet, shortType(r.typeURL)).Inc()
			var exact bool
			rejected, exact, suspects = t.blame(s, r, errorDetail)
			if exact {
				// Envoy and gRPC clients apply the valid resources of a
				// response they NACK: when we know what was refused, the
				// rest of that version is in force on the client.
				t.ack(s, r)
			}
		}
	}
	kind := s.group.Kind
	t.mu.Unlock()
	if joined {
		t.notifyClients()
	}
	for _, p := range rejected {
		t.outcome.Rejected(p.LoadBalancer, p.Revision, kind, errorDetail)
	}
	if len(suspects) > 0 {
		t.outcome.Suspected(kind, suspects, errorDetail)
	}
	t.settle()
	return nil
}

// ack records that a stream acknowledged a response. Callers hold t.mu.
func (t *Tracker) ack(s *stream, r *sentResponse) {
	s.acked[r.typeURL] = r.version
	s.ackedRev[r.typeURL] = t.cache.RevisionOf(s.group, r.typeURL, r.version)
}

// answered forgets a response and the older ones of its type.
func (s *stream) answered(r *sentResponse) {
	for n, o := range s.sent {
		if o.typeURL == r.typeURL && o.order <= r.order {
			delete(s.sent, n)
		}
	}
}

var (
	resourceID    = regexp.MustCompile(`\blb_(\d+)`)
	resourceIndex = regexp.MustCompile(`(?i)\bindex:? *(\d+)`)
)

// lbOf returns the load balancer a resource name belongs to.
func lbOf(name string) (uint32, bool) {
	m := resourceID.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseUint(m[1], 10, 32)
	return uint32(id), err == nil
}

// blame finds the load balancers a NACK refers to, from what the response
// carried: the resources the message names, else the resource at the
// index it gives, else — when the response carried one change (or one
// load balancer) — that one. exact reports that the refused resources are
// known (the client applied the rest). When several changes could be the
// culprit, none is blamed: they are returned as suspects, to be tried
// one at a time, and nothing counts as acknowledged. A load balancer
// without a pending change is blamed at revision 0.
func (t *Tracker) blame(s *stream, r *sentResponse, message string) (blamed []*Pending, exact bool, suspects []*Pending) {
	carried := map[uint32]bool{}
	for _, name := range r.names {
		if id, ok := lbOf(name); ok {
			carried[id] = true
		}
	}
	ids := map[uint32]bool{}
	for _, m := range resourceID.FindAllStringSubmatch(message, -1) {
		if id, err := strconv.ParseUint(m[1], 10, 32); err == nil && carried[uint32(id)] {
			ids[uint32(id)] = true
		}
	}
	if len(ids) == 0 {
		for _, m := range resourceIndex.FindAllStringSubmatch(message, -1) {
			if i, err := strconv.Atoi(m[1]); err == nil && i >= 0 && i < len(r.names) {
				if id, ok := lbOf(r.names[i]); ok {
					ids[id] = true
				}
			}
		}
	}
	rev := t.cache.RevisionOf(s.group, r.typeURL, r.version)
	if len(ids) == 0 {
		// Nothing named: the suspects are the changes the response carried.
		suspects := map[uint32]bool{}
		for id := range carried {
			if p := t.pending[id]; p != nil && p.Fleet == s.group.Fleet && p.needs() <= rev && p.changes(s.group.Kind, r.typeURL) {
				suspects[id] = true
			}
		}
		switch {
		case len(carried) == 1:
			suspects = carried // the response carried nothing else
		case len(suspects) == 1:
			// One change among unchanged load balancers: it is the culprit
			// only if this client accepted them without it before (a client
			// refusing its first state may refuse one of the others).
			if _, before := s.acked[r.typeURL]; !before {
				return nil, false, t.suspectsOf(s, r, suspects, message)
			}
		case len(suspects) > 1:
			return nil, false, t.suspectsOf(s, r, suspects, message)
		default:
			t.log.Warn("xds: a NACK names no resource and its response carried no change",
				"node", s.node, "type", shortType(r.typeURL), "error", message)
			return nil, false, nil
		}
		ids = suspects
	}
	for id := range ids {
		p := t.pending[id]
		switch {
		case p == nil || p.Fleet != s.group.Fleet:
			// No change waiting: the configuration in force is refused.
			blamed = append(blamed, &Pending{LoadBalancer: id, Fleet: s.group.Fleet})
		case p.needs() <= rev:
			delete(t.pending, id)
			blamed = append(blamed, p)
		default:
			// A newer change is on its way: the refusal of an older
			// version says nothing about it.
		}
	}
	sort.Slice(blamed, func(i, j int) bool { return blamed[i].LoadBalancer < blamed[j].LoadBalancer })
	return blamed, true, nil
}

// suspectsOf takes the suspects' changes out of the pending ones, to be
// tried one at a time. Callers hold t.mu.
func (t *Tracker) suspectsOf(s *stream, r *sentResponse, ids map[uint32]bool, message string) []*Pending {
	t.log.Warn("xds: a NACK names no resource; isolating the changes its response carried",
		"node", s.node, "type", shortType(r.typeURL), "suspects", len(ids), "error", message)
	var list []*Pending
	for id := range ids {
		list = append(list, t.pending[id])
		delete(t.pending, id)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].LoadBalancer < list[j].LoadBalancer })
	return list
}

func (p *Pending) needs() int64 { return max(p.Revision, p.Since) }

// merge returns the union of two registrations of one change.
func (p *Pending) merge(q *Pending) *Pending {
	out := &Pending{LoadBalancer: p.LoadBalancer, Fleet: p.Fleet, Revision: p.Revision, Since: max(p.Since, q.Since),
		Changed: map[Kind][]Key{}}
	for _, x := range []*Pending{p, q} {
		for kind, keys := range x.Changed {
			for _, k := range keys {
				if !slices.Contains(out.Changed[kind], k) {
					out.Changed[kind] = append(out.Changed[kind], k)
				}
			}
		}
	}
	return out
}

func (p *Pending) changes(kind Kind, typeURL string) bool {
	for _, k := range p.Changed[kind] {
		if k.TypeURL == typeURL {
			return true
		}
	}
	return false
}

func (t *Tracker) response(id int64, typeURL, version, nonce string, names []string) {
	t.cache.sent(id, typeURL, version)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[id]
	if s == nil {
		return
	}
	var order uint64
	var oldest *sentResponse
	var oldestNonce string
	for n, r := range s.sent {
		order = max(order, r.order)
		if oldest == nil || r.order < oldest.order {
			oldest, oldestNonce = r, n
		}
	}
	if len(s.sent) >= maxUnanswered {
		delete(s.sent, oldestNonce)
	}
	s.sent[nonce] = &sentResponse{typeURL: typeURL, version: version, names: names, at: t.now(), order: order + 1}
}

func shortType(typeURL string) string {
	switch typeURL {
	case resource.ClusterType:
		return "cds"
	case resource.EndpointType:
		return "eds"
	case resource.ListenerType:
		return "lds"
	case resource.RouteType:
		return "rds"
	case resource.ExtensionConfigType:
		return "ecds"
	case resource.SecretType:
		return "sds"
	}
	return "other"
}

// Callbacks returns the go-control-plane server callbacks that feed the tracker.
func (t *Tracker) Callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, id int64, typeURL string) error {
			t.open(ctx, id, typeURL)
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { t.close(id) },
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			err := t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), len(req.GetResourceNames()), func(s *stream) int {
				names := make(map[string]bool, len(req.GetResourceNames()))
				for _, n := range req.GetResourceNames() {
					names[n] = true
				}
				if s.group.Kind == KindEnvoy {
					names = nil // an Envoy uses everything; keep no copy
				}
				s.names[req.GetTypeUrl()] = names
				legacyWildcard := len(req.GetResourceNames()) == 0 && (req.GetTypeUrl() == resource.ListenerType || req.GetTypeUrl() == resource.ClusterType)
				s.wildcard[req.GetTypeUrl()] = legacyWildcard || names["*"]
				return len(req.GetResourceNames())
			})
			if err == nil {
				t.cache.bindRequest(id, req)
			}
			return err
		},
		StreamResponseFunc: func(ctx context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			names, _ := ctx.Value(sentNamesKey{}).([]string)
			t.response(id, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), names)
		},
		// The delta server numbers its streams apart from the state-of-the-
		// world one: both start at 1. Delta streams are kept as -id.
		DeltaStreamOpenFunc: func(ctx context.Context, id int64, typeURL string) error {
			t.open(ctx, -id, typeURL)
			return nil
		},
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { t.close(-id) },
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			id = -id
			n := len(req.GetResourceNamesSubscribe()) + len(req.GetInitialResourceVersions())
			err := t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), n, func(s *stream) int {
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
					} else if s.group.Kind != KindEnvoy {
						names[n] = true
					}
				}
				for _, n := range req.GetResourceNamesUnsubscribe() {
					if n == "*" {
						s.wildcard[typeURL] = false
					}
					delete(names, n)
				}
				// An Envoy's names are not kept; count them to bound them.
				s.count[typeURL] = max(0, s.count[typeURL]+len(req.GetResourceNamesSubscribe())-len(req.GetResourceNamesUnsubscribe()))
				return s.count[typeURL]
			})
			if err == nil {
				t.cache.bindDelta(id, req)
			}
			return err
		},
		StreamDeltaResponseFunc: func(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			// A shared full state already lists its names.
			var names []string
			if st := t.cache.shared.resources(resp.GetResources()); st != nil {
				names = st.names
			} else {
				names = make([]string, len(resp.GetResources()))
				for i, r := range resp.GetResources() {
					names[i] = r.GetName()
				}
			}
			t.response(-id, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), names)
		},
	}
}
