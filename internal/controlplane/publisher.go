// Package controlplane connects the store to the data plane: it turns each
// committed revision into Envoy resources (translator), publishes what
// changed (xds), and writes back the status the fleet's acknowledgements
// decide.
package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// resources are one load balancer's published resources per kind.
type resources struct {
	fleet  string
	byKind map[xds.Kind]map[xds.Key]types.Resource
}

// Publisher keeps the xDS cache in step with the store.
type Publisher struct {
	store   *store.Store
	cache   *xds.Cache
	tracker *xds.Tracker
	log     *slog.Logger
	// poll is how often the store is read for changes committed elsewhere
	// (other replicas); local commits are seen at once.
	poll          time.Duration
	accessLogPath string
	nodeAddresses func(lb uint32, address string) []netip.Addr

	mu       sync.Mutex
	revision int64
	current  map[uint32]*resources // what the cache holds
	good     map[uint32]*resources // what the fleet last accepted
	// verdicts queue the tracker's outcomes for Run, which records them;
	// wake tells Run there are some. (The tracker may report from Run
	// itself, so the queue must never block.)
	verdicts []outcome
	wake     chan struct{}
}

type outcome struct {
	lb       uint32
	revision int64
	rejected bool
	kind     xds.Kind
	message  string
}

// Options configure the publisher.
type Options struct {
	// DefaultFleet serves xDS clients whose node names no cluster.
	DefaultFleet string
	// AccessLogPath is where Envoy writes connection logs ("{lb}" becomes
	// the load balancer's resource name).
	AccessLogPath string
	// NodeAddresses gives the IP addresses a node's traffic may go to: its
	// address when allowed, or what its name resolves to (nodedns.Cache
	// Lookup). Nil takes IP addresses as they are and resolves no name.
	NodeAddresses func(lb uint32, address string) []netip.Addr
}

// New builds the cache, tracker and publisher from the store's current
// state: every live load balancer is translated and published, and those
// waiting for the data plane are tracked.
func New(ctx context.Context, st *store.Store, opts Options, log *slog.Logger) (*Publisher, error) {
	// Start from a revision of our own: xDS versions carry it, so they
	// keep increasing across restarts even when nothing else was written.
	rev, err := st.Update(ctx, func(*store.Tx) error { return nil })
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		store: st, log: log, poll: time.Second, revision: rev, accessLogPath: opts.AccessLogPath, nodeAddresses: opts.NodeAddresses,
		current: map[uint32]*resources{}, good: map[uint32]*resources{},
		wake: make(chan struct{}, 1),
	}
	p.cache = xds.NewCache(opts.DefaultFleet, rev, xdsLogger{log})
	p.tracker = xds.NewTracker(p.cache, p)
	updates := map[xds.Group]*xds.Update{}
	var pending []*xds.Pending
	err = st.LiveLoadBalancers(ctx, func(batch []store.LoadBalancer) error {
		for i := range batch {
			if pend := p.stage(&batch[i], updates); pend != nil {
				pending = append(pending, pend)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.cache.Apply(rev, updates); err != nil {
		return nil, err
	}
	for id, r := range p.current {
		p.good[id] = r
	}
	p.tracker.Expect(pending)
	return p, nil
}

// Cache is the xDS cache to serve.
func (p *Publisher) Cache() *xds.Cache { return p.cache }

// Tracker follows the xDS streams.
func (p *Publisher) Tracker() *xds.Tracker { return p.tracker }

// Run publishes every revision committed from now on and records the
// fleet's verdicts, until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	revs, stop := p.store.Subscribe()
	defer stop()
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-revs:
			p.sync(ctx)
		case <-tick.C:
			p.sync(ctx)
		case <-p.wake:
		}
		p.recordVerdicts(ctx)
	}
}

func (p *Publisher) queue(o outcome) {
	p.mu.Lock()
	p.verdicts = append(p.verdicts, o)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// recordVerdicts writes the queued verdicts: all applied changes in one
// transaction, then each rejection.
func (p *Publisher) recordVerdicts(ctx context.Context) {
	p.mu.Lock()
	verdicts := p.verdicts
	p.verdicts = nil
	p.mu.Unlock()
	var applied []store.Applied
	for _, o := range verdicts {
		if o.rejected {
			p.reject(ctx, o)
		} else {
			applied = append(applied, store.Applied{ID: o.lb, Revision: o.revision})
		}
	}
	if len(applied) == 0 {
		return
	}
	if _, err := p.store.SetApplied(ctx, applied); err != nil {
		p.log.WarnContext(ctx, "xds: record applied changes", "count", len(applied), "err", err)
		// The changes stay applied in the data plane; requeue their verdicts.
		for _, a := range applied {
			p.queue(outcome{lb: a.ID, revision: a.Revision})
		}
		return
	}
	p.mu.Lock()
	for _, a := range applied {
		if r, ok := p.current[a.ID]; ok {
			p.good[a.ID] = r
		} else {
			delete(p.good, a.ID)
		}
	}
	p.mu.Unlock()
}

// sync publishes the changes committed since the last published revision.
func (p *Publisher) sync(ctx context.Context) {
	p.mu.Lock()
	since := p.revision
	p.mu.Unlock()
	changes, err := p.store.ChangesSince(ctx, since)
	if err != nil || len(changes) == 0 {
		if err != nil {
			p.log.WarnContext(ctx, "xds: read changes", "err", err)
		}
		return
	}
	latest := changes[len(changes)-1].Revision
	ids := map[uint32]bool{}
	for _, c := range changes {
		ids[c.LoadBalancerID] = true
	}
	updates := map[xds.Group]*xds.Update{}
	var pending []*xds.Pending
	for id := range ids {
		lb, err := p.store.LoadBalancerByID(ctx, id)
		if err != nil {
			p.log.WarnContext(ctx, "xds: load changed load balancer", "id", id, "err", err)
			return // retried on the next tick, from the same revision
		}
		p.mu.Lock()
		pend := p.stage(lb, updates)
		p.mu.Unlock()
		if pend != nil {
			pending = append(pending, pend)
		}
	}
	if err := p.cache.Apply(latest, updates); err != nil {
		p.log.ErrorContext(ctx, "xds: publish", "revision", latest, "err", err)
	}
	p.mu.Lock()
	p.revision = latest
	p.mu.Unlock()
	p.tracker.Expect(pending)
}

// stage translates a load balancer (or its removal) into updates, and
// returns what the fleet must acknowledge when it waits for the data plane.
// Callers hold p.mu (or run before the publisher is shared).
func (p *Publisher) stage(lb *store.LoadBalancer, updates map[xds.Group]*xds.Update) *xds.Pending {
	next := &resources{fleet: lb.Fleet, byKind: map[xds.Kind]map[xds.Key]types.Resource{}}
	live := lb.Status != store.StatusPendingDelete && lb.Status != store.StatusDeleted
	if live {
		m := Model(lb, p.nodeAddresses)
		m.AccessLogPath = p.accessLogPath
		out, err := translator.Translate(m)
		if err == nil {
			// What fails validation would be refused by every proxy.
			err = out.Validate()
		}
		if err != nil {
			// The API only stores what translates, so this is a bug; the
			// load balancer's previous configuration stays in force.
			p.log.Error("xds: translate", "id", lb.ID, "err", err)
			p.verdicts = append(p.verdicts, outcome{lb: lb.ID, revision: lb.Revision, rejected: true, message: err.Error()})
			select {
			case p.wake <- struct{}{}:
			default:
			}
			return nil
		}
		next.byKind[xds.KindEnvoy] = keyed(out.Envoy)
		next.byKind[xds.KindGRPC] = keyed(out.GRPC)
	}
	changed := diff(p.current[lb.ID], next, updates)
	if live {
		p.current[lb.ID] = next
	} else {
		delete(p.current, lb.ID)
	}
	if lb.Status != store.StatusBuild && lb.Status != store.StatusPendingUpdate && lb.Status != store.StatusPendingDelete {
		return nil
	}
	return &xds.Pending{LoadBalancer: lb.ID, Fleet: lb.Fleet, Revision: lb.Revision, Changed: changed}
}

func keyed(r translator.Resources) map[xds.Key]types.Resource {
	out := map[xds.Key]types.Resource{}
	for _, l := range r.Listeners {
		out[xds.Key{TypeURL: resource.ListenerType, Name: l.GetName()}] = l
	}
	for _, rc := range r.Routes {
		out[xds.Key{TypeURL: resource.RouteType, Name: rc.GetName()}] = rc
	}
	for _, c := range r.Clusters {
		out[xds.Key{TypeURL: resource.ClusterType, Name: c.GetName()}] = c
	}
	for _, e := range r.Endpoints {
		out[xds.Key{TypeURL: resource.EndpointType, Name: e.GetClusterName()}] = e
	}
	return out
}

// diff adds to updates what turns prev into next, per group, and returns
// the keys that changed per kind. A fleet move removes from the old
// fleet's groups and adds to the new one's.
func diff(prev, next *resources, updates map[xds.Group]*xds.Update) map[xds.Kind][]xds.Key {
	changed := map[xds.Kind][]xds.Key{}
	for _, kind := range []xds.Kind{xds.KindEnvoy, xds.KindGRPC} {
		var before map[xds.Key]types.Resource
		if prev != nil {
			before = prev.byKind[kind]
			if prev.fleet != next.fleet {
				for k := range before {
					update(updates, xds.Group{Fleet: prev.fleet, Kind: kind}).remove(k)
				}
				before = nil
			}
		}
		after := next.byKind[kind]
		u := func() *xdsUpdate { return update(updates, xds.Group{Fleet: next.fleet, Kind: kind}) }
		for k, res := range after {
			if old, ok := before[k]; ok && proto.Equal(old, res) {
				continue
			}
			u().upsert(k, res)
			changed[kind] = append(changed[kind], k)
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				u().remove(k)
				changed[kind] = append(changed[kind], k)
			}
		}
	}
	return changed
}

type xdsUpdate struct{ *xds.Update }

func update(updates map[xds.Group]*xds.Update, g xds.Group) *xdsUpdate {
	u := updates[g]
	if u == nil {
		u = &xds.Update{Upsert: map[string]map[string]types.Resource{}, Remove: map[string][]string{}}
		updates[g] = u
	}
	return &xdsUpdate{u}
}

func (u *xdsUpdate) upsert(k xds.Key, r types.Resource) {
	if u.Upsert[k.TypeURL] == nil {
		u.Upsert[k.TypeURL] = map[string]types.Resource{}
	}
	u.Upsert[k.TypeURL][k.Name] = r
}

func (u *xdsUpdate) remove(k xds.Key) {
	u.Remove[k.TypeURL] = append(u.Remove[k.TypeURL], k.Name)
}

// Applied implements xds.Outcome; the verdict is recorded by Run.
func (p *Publisher) Applied(lb uint32, revision int64) {
	p.queue(outcome{lb: lb, revision: revision})
}

// Rejected implements xds.Outcome.
func (p *Publisher) Rejected(lb uint32, revision int64, kind xds.Kind, message string) {
	p.queue(outcome{lb: lb, revision: revision, rejected: true, kind: kind, message: message})
}

// reject writes a rejection to the store. A refused change is withdrawn
// from the kind of data plane that refused it: the load balancer's last
// accepted resources go back (or none, for a load balancer never
// accepted), so its previous configuration stays in force. A refusal of a
// configuration already in force elsewhere (revision 0) is only reported.
func (p *Publisher) reject(ctx context.Context, o outcome) {
	p.log.WarnContext(ctx, "xds: a client rejected a load balancer's configuration",
		"id", o.lb, "revision", o.revision, "kind", o.kind, "error", o.message)
	if _, err := p.store.SetRejected(ctx, o.lb, o.revision, "rejected by the data plane: "+o.message); err != nil {
		p.log.WarnContext(ctx, "xds: record rejected change", "id", o.lb, "err", err)
	}
	if o.revision == 0 {
		// A client refused a configuration the others accepted: report it,
		// but take nothing away from the clients that run it.
		return
	}
	p.mu.Lock()
	updates := map[xds.Group]*xds.Update{}
	if prev := p.current[o.lb]; prev != nil && o.kind != "" {
		next := withdrawn(prev, p.good[o.lb], o.kind)
		diff(prev, next, updates)
		p.current[o.lb] = next
	}
	rev := p.revision
	p.mu.Unlock()
	if err := p.cache.Apply(rev, updates); err != nil {
		p.log.ErrorContext(ctx, "xds: withdraw rejected configuration", "id", o.lb, "err", err)
	}
}

// withdrawn is prev with kind's resources replaced by the last accepted
// ones, or removed when those are what was refused.
func withdrawn(prev, good *resources, kind xds.Kind) *resources {
	next := &resources{fleet: prev.fleet, byKind: map[xds.Kind]map[xds.Key]types.Resource{}}
	for k, r := range prev.byKind {
		next.byKind[k] = r
	}
	var fallback map[xds.Key]types.Resource
	if good != nil && good.fleet == prev.fleet && !sameResources(good.byKind[kind], prev.byKind[kind]) {
		fallback = good.byKind[kind]
	}
	next.byKind[kind] = fallback
	return next
}

func sameResources(a, b map[xds.Key]types.Resource) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		if other, ok := b[k]; !ok || !proto.Equal(r, other) {
			return false
		}
	}
	return true
}

// Model converts a stored load balancer into the translator's input;
// addresses gives each node's IP addresses (nil: IP addresses as they are).
func Model(lb *store.LoadBalancer, addresses func(lb uint32, address string) []netip.Addr) *translator.LoadBalancer {
	if addresses == nil {
		addresses = ipOnly
	}
	m := &translator.LoadBalancer{
		ID: lb.ID, Name: lb.Name, Protocol: lb.Protocol, Port: lb.Port, Algorithm: lb.Algorithm,
		TimeoutSeconds: lb.Timeout, HalfClosed: lb.HalfClosed, HTTPSRedirect: lb.HTTPSRedirect,
		ConnectionLogging: lb.ConnectionLogging, ContentCaching: lb.ContentCaching, ErrorPage: lb.ErrorPage,
		CheckPassive: lb.CheckPassive, ClientKeepAliveSeconds: lb.ClientKeepAliveTimeout, BackendKeepAlive: lb.BackendKeepAlive,
	}
	for _, item := range lb.AccessList {
		m.AccessList = append(m.AccessList, translator.NetworkItem{Address: item.Address, Type: item.Type})
	}
	if t := lb.ConnectionThrottle; t != nil {
		m.Throttle = &translator.Throttle{MaxConnections: t.MaxConnections, MinConnections: t.MinConnections,
			MaxConnectionRate: t.MaxConnectionRate, RateInterval: t.RateInterval}
	}
	if sp := lb.SessionPersistence; sp != nil {
		m.Persistence = sp.PersistenceType
	}
	for _, v := range lb.VirtualIPs {
		m.VIPs = append(m.VIPs, translator.VIP{Address: v.Address})
	}
	for _, n := range lb.Nodes {
		m.Nodes = append(m.Nodes, translator.Node{
			ID: n.ID, Address: n.Address, Addresses: addresses(lb.ID, n.Address), Port: n.Port, Condition: n.Condition,
			Type: n.Type, Weight: n.Weight, Online: n.Status != "OFFLINE",
		})
	}
	return m
}

// ipOnly takes an IP address as it is and resolves no name.
func ipOnly(_ uint32, address string) []netip.Addr {
	if ip, err := netip.ParseAddr(address); err == nil {
		return []netip.Addr{ip.Unmap()}
	}
	return nil
}

// xdsLogger adapts slog to go-control-plane's logger, at debug level.
type xdsLogger struct{ log *slog.Logger }

func (l xdsLogger) Debugf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l xdsLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l xdsLogger) Warnf(format string, args ...any)  { l.log.Warn(fmt.Sprintf(format, args...)) }
func (l xdsLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
