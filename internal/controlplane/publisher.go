// Package controlplane connects the store to the data plane: it turns each
// committed revision into Envoy resources (translator), publishes what
// changed (xds), and writes back the status the fleet's acknowledgements
// decide.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// resources are one load balancer's published resources per kind,
// marshalled once: the same bytes are diffed here and sent to every client.
type resources struct {
	fleet  string
	byKind map[xds.Kind]map[xds.Key]*anypb.Any
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
	// load reads the changed load balancers (the store's, but for tests
	// that make it fail).
	load func(context.Context, []uint32) ([]*store.LoadBalancer, error)
	// retry spaces the attempts after a store failure (capped exponential,
	// with jitter); retryAt is when the next may run.
	retry         *backoff.ExponentialBackOff
	retryAt       time.Time
	nodeAddresses func(lb uint32, address string) []netip.Addr
	drainTime     time.Duration
	// keys and secretsEntitled: see Options.
	keys            *secrets.Keyring
	secretsEntitled func(ctx context.Context, fleet string) bool
	// replica is this process's id among the replicas sharing a
	// PostgreSQL database, and lease the length of its lease, taken at
	// leaseStart; "" on SQLite (one process, no lease).
	replica     string
	lease       time.Duration
	leaseStart  time.Time
	leaseLapsed atomic.Bool
	// fleets are those recorded as having clients here (run by Run only).
	fleets         []string
	fleetsRecorded bool

	mu       sync.Mutex
	revision int64
	current  map[uint32]*resources // what the cache holds
	good     map[uint32]*resources // what the fleet last accepted
	// draining maps a load balancer to the revision of its change that
	// rebuilds its Envoy listener (the proxies drain its connections).
	draining map[uint32]drainingChange
	// kept is, for load balancers in ERROR, what a kind of data plane
	// keeps running instead of what it refused (also in the store).
	kept map[uint32]map[xds.Kind]kept
	// verdicts queue the tracker's outcomes for Run, which records them;
	// wake tells Run there are some. (The tracker may report from Run
	// itself, so the queue must never block.)
	verdicts []outcome
	wake     chan struct{}
	// suspected are NACKs to isolate; isolations are those under way.
	suspected  []suspicion
	isolations []*isolation
}

type outcome struct {
	lb       uint32
	revision int64
	rejected bool
	kind     xds.Kind
	message  string
	retried  bool
	// local: the publisher held the change back (message is the status
	// description as is); no data plane saw it.
	local bool
}

// Options configure the publisher.
type Options struct {
	// DefaultFleet serves xDS clients whose node names no cluster.
	DefaultFleet string
	// AccessLogPath is where Envoy writes connection logs ("{lb}" becomes
	// the load balancer's resource name).
	AccessLogPath string
	// Limits bound what one xDS client may cost (xds.DefaultLimits when zero).
	Limits xds.Limits
	// NodeAddresses gives the IP addresses a node's traffic may go to: its
	// address when allowed, or what its name resolves to (nodedns.Cache
	// Lookup). Nil takes IP addresses as they are and resolves no name.
	NodeAddresses func(lb uint32, address string) []netip.Addr
	// DrainTime is the Envoys' drain time (their --drain-time-s), said in
	// the status description of a change that rebuilds a listener when no
	// connected Envoy of the fleet declares its own in its bootstrap;
	// envoy.DefaultDrainTime when zero.
	DrainTime time.Duration
	// Lease is how long a replica counts for status without renewing its
	// lease, on PostgreSQL (DefaultLease when zero); see Run.
	Lease time.Duration
	// Probes says that this replica runs the health prober (it then takes
	// its share of the monitors).
	Probes bool
	// Metrics are the tracker's (new ones when nil), so that a rebuilt
	// publisher keeps counting in the same series.
	Metrics *xds.Metrics
	// Keys open the sealed private keys of SSL termination.
	Keys *secrets.Keyring
	// SecretsEntitled tells whether an xDS stream (its context: its gRPC
	// peer) is authenticated as a client of fleet; only such streams get
	// secrets. Nil when the xDS port does not authenticate its clients:
	// then no terminating load balancer is published (see tls.go).
	SecretsEntitled func(ctx context.Context, fleet string) bool
}

// New builds the cache, tracker and publisher from the store's current
// state: every live load balancer is translated and published, and those
// waiting for the data plane are tracked.
func New(ctx context.Context, st *store.Store, opts Options, log *slog.Logger) (*Publisher, error) {
	// Start from a revision of our own: xDS versions carry it, so they
	// keep increasing across restarts even when nothing else was written.
	// On PostgreSQL the same transaction takes the replica's lease.
	p := newPublisher(st, opts, log)
	var rev int64
	var err error
	if st.Dialect() == "postgres" {
		p.replica, p.lease, p.leaseStart = newReplicaID(), opts.Lease, time.Now()
		if p.lease <= 0 {
			p.lease = DefaultLease
		}
		rev, err = st.RegisterReplica(ctx, p.replica, p.lease, opts.Probes)
	} else {
		rev, err = st.Update(ctx, func(*store.Tx) error { return nil })
	}
	if err != nil {
		return nil, err
	}
	if err := p.loadKept(ctx); err != nil {
		return nil, err
	}
	p.revision = rev
	p.cache = xds.NewCache(opts.DefaultFleet, rev)
	p.entitledStreams()
	limits := opts.Limits
	if limits == (xds.Limits{}) {
		limits = xds.DefaultLimits
	}
	p.tracker = xds.NewTracker(p.cache, p, limits, log, opts.Metrics)
	p.tracker.OnClientsChanged(p.poke)
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
	p.tracker.Expect(pending)
	if err := p.cache.Apply(rev, updates); err != nil {
		return nil, err
	}
	for id, r := range p.current {
		p.good[id] = r
	}
	return p, nil
}

func newPublisher(st *store.Store, opts Options, log *slog.Logger) *Publisher {
	p := &Publisher{
		store: st, log: log, poll: time.Second, accessLogPath: opts.AccessLogPath, nodeAddresses: opts.NodeAddresses,
		drainTime: opts.DrainTime, keys: opts.Keys, secretsEntitled: opts.SecretsEntitled,
		current: map[uint32]*resources{}, good: map[uint32]*resources{}, draining: map[uint32]drainingChange{},
		kept:  map[uint32]map[xds.Kind]kept{},
		wake:  make(chan struct{}, 1),
		retry: backoff.NewExponentialBackOff(),
	}
	p.retry.InitialInterval = 100 * time.Millisecond
	p.retry.MaxInterval = 30 * time.Second
	if st != nil {
		p.load = st.LoadBalancersByID
	}
	return p
}

// Cache is the xDS cache to serve.
func (p *Publisher) Cache() *xds.Cache { return p.cache }

// Tracker follows the xDS streams.
func (p *Publisher) Tracker() *xds.Tracker { return p.tracker }

// Replica is this replica's id on PostgreSQL ("" on SQLite).
func (p *Publisher) Replica() string { return p.replica }

// Run publishes every revision committed from now on and records the
// fleet's verdicts, until ctx ends (it then returns nil, having ended the
// replica's lease) or, on PostgreSQL, until the replica's lease expires:
// it then returns ErrLeaseLost, and the caller must stop serving xDS from
// this publisher (its clients go to another replica; a new publisher
// starts from the store again).
func (p *Publisher) Run(ctx context.Context) error {
	outer := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if p.replica != "" {
		go p.keepLease(ctx, p.leaseStart.Add(p.lease), func() { cancel(ErrLeaseLost) })
		defer func() {
			if outer.Err() != nil {
				// A clean stop: the others need not wait for the lease.
				bye, done := context.WithTimeout(context.Background(), 2*time.Second)
				defer done()
				if err := p.store.RemoveReplica(bye, p.replica); err != nil {
					p.log.Warn("xds: end the replica's lease", "err", err)
				}
			}
		}()
	} else {
		go p.prune(ctx)
	}
	revs, stop := p.store.Subscribe()
	defer stop()
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	go p.tracker.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return lost(ctx)
		case <-revs:
		case <-tick.C:
		case <-p.wake:
		}
		if wait := time.Until(p.retryAt); wait > 0 {
			// The store failed recently: wait out the backoff (new
			// revisions and verdicts keep until then).
			select {
			case <-ctx.Done():
				return lost(ctx)
			case <-time.After(wait):
			}
		}
		ok := p.syncFleets(ctx) && p.sync(ctx) && p.recordVerdicts(ctx) && p.isolate(ctx)
		if ok {
			p.retry.Reset()
			p.retryAt = time.Time{}
		} else {
			p.retryAt = time.Now().Add(p.retry.NextBackOff())
		}
	}
}

// lost is what Run returns once ctx ended: ErrLeaseLost, or nil.
func lost(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

func (p *Publisher) queue(o outcome) {
	p.mu.Lock()
	p.verdicts = append(p.verdicts, o)
	p.mu.Unlock()
	p.poke()
}

// poke wakes Run.
func (p *Publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// recordVerdicts writes the queued verdicts: all applied changes in one
// transaction, then each rejection. It reports false when the store
// failed; the verdicts not recorded stay queued for the next attempt.
func (p *Publisher) recordVerdicts(ctx context.Context) bool {
	p.mu.Lock()
	verdicts := p.verdicts
	p.verdicts = nil
	p.mu.Unlock()
	var applied []store.Applied
	var failed []outcome
	for _, o := range verdicts {
		if o.rejected {
			if !p.reject(ctx, o) {
				o.retried = true
				failed = append(failed, o)
				continue
			}
			p.mu.Lock()
			p.settledInIsolation(o.lb)
			delete(p.draining, o.lb) // the status tells the refusal
			p.mu.Unlock()
		} else {
			applied = append(applied, store.Applied{ID: o.lb, Revision: o.revision, Description: p.drainNotice(o.lb, o.revision)})
		}
	}
	if len(applied) > 0 {
		setApplied := p.store.SetApplied
		if p.replica != "" {
			// The status is what every live replica's clients applied.
			setApplied = func(ctx context.Context, applied []store.Applied) ([]uint32, error) {
				return p.store.RecordApplied(ctx, p.replica, applied)
			}
		}
		if _, err := setApplied(ctx, applied); err != nil {
			p.log.WarnContext(ctx, "xds: record applied changes; retrying with backoff", "count", len(applied), "err", err)
			// The changes stay applied in the data plane; keep their verdicts.
			for _, a := range applied {
				failed = append(failed, outcome{lb: a.ID, revision: a.Revision})
			}
			applied = nil
		}
	}
	if len(failed) > 0 {
		p.mu.Lock()
		p.verdicts = append(failed, p.verdicts...)
		p.mu.Unlock()
	}
	if len(applied) == 0 {
		return len(failed) == 0
	}
	p.mu.Lock()
	for _, a := range applied {
		if r, ok := p.current[a.ID]; ok {
			p.good[a.ID] = r
		} else {
			delete(p.good, a.ID)
		}
		p.settledInIsolation(a.ID)
	}
	p.mu.Unlock()
	return len(failed) == 0
}

// sync publishes the changes committed since the last published revision,
// all or nothing: every changed load balancer is read before anything is
// staged, and the published revision advances only once the cache holds
// them. It reports false when the store failed (nothing was published;
// the next attempt starts from the same revision).
func (p *Publisher) sync(ctx context.Context) bool {
	p.mu.Lock()
	since := p.revision
	p.mu.Unlock()
	changes, err := p.store.ChangesSince(ctx, since)
	if err != nil {
		p.log.WarnContext(ctx, "xds: read changes; retrying with backoff", "err", err)
		return false
	}
	if len(changes) == 0 {
		return true
	}
	latest := changes[len(changes)-1].Revision
	seen := map[uint32]bool{}
	var ids []uint32
	for _, c := range changes {
		if !seen[c.LoadBalancerID] {
			ids = append(ids, c.LoadBalancerID)
		}
		seen[c.LoadBalancerID] = true
	}
	lbs, err := p.load(ctx, ids)
	if err != nil {
		p.log.WarnContext(ctx, "xds: load changed load balancers; retrying with backoff", "count", len(ids), "err", err)
		return false
	}
	updates := map[xds.Group]*xds.Update{}
	var pending []*xds.Pending
	p.mu.Lock()
	for _, lb := range lbs {
		if pend := p.stage(lb, updates); pend != nil {
			pending = append(pending, pend)
		}
	}
	p.mu.Unlock()
	// The tracker learns of the changes before any client can answer
	// them, so that a NACK arriving at once is attributed.
	p.tracker.Expect(pending)
	if err := p.cache.Apply(latest, updates); err != nil {
		// Only a resource of the wrong type fails here: a bug, not a
		// store failure; what was valid is published.
		p.log.ErrorContext(ctx, "xds: publish", "revision", latest, "err", err)
	}
	p.mu.Lock()
	p.revision = latest
	p.mu.Unlock()
	return true
}

// stage translates a load balancer (or its removal) into updates, and
// returns what the fleet must acknowledge when it waits for the data plane.
// Callers hold p.mu (or run before the publisher is shared).
func (p *Publisher) stage(lb *store.LoadBalancer, updates map[xds.Group]*xds.Update) *xds.Pending {
	next := &resources{fleet: lb.Fleet, byKind: map[xds.Kind]map[xds.Key]*anypb.Any{}}
	live := lb.Status != store.StatusPendingDelete && lb.Status != store.StatusDeleted
	if live {
		m := Model(lb, p.nodeAddresses)
		m.AccessLogPath = p.accessLogPath
		var out *translator.Output
		var err error
		m.TLS, err = p.termination(lb)
		if err == nil {
			out, err = translator.Translate(m)
		}
		if err == nil {
			// What fails validation would be refused by every proxy.
			err = out.Validate()
		}
		var envoy, grpc map[xds.Key]*anypb.Any
		if err == nil {
			envoy, err = keyed(out.Envoy)
		}
		if err == nil {
			grpc, err = keyed(out.GRPC)
		}
		if err != nil {
			// The API only stores what translates, so this is a bug (or a
			// termination this control plane may not publish, tls.go); the
			// load balancer's previous configuration stays in force.
			var held notPublished
			local := errors.As(err, &held)
			if !local {
				p.log.Error("xds: translate", "id", lb.ID, "err", err)
			}
			p.verdicts = append(p.verdicts, outcome{lb: lb.ID, revision: lb.Revision, rejected: true, message: err.Error(), local: local})
			select {
			case p.wake <- struct{}{}:
			default:
			}
			return nil
		}
		next.byKind[xds.KindEnvoy] = envoy
		next.byKind[xds.KindGRPC] = grpc
		if lb.Status == store.StatusError {
			// What a kind of data plane refused stays withdrawn from it.
			for kind, k := range p.kept[lb.ID] {
				if k.fleet == lb.Fleet {
					next.byKind[kind] = keptWithSecrets(lb.ID, k.resources, next.byKind[kind])
				}
			}
		} else {
			delete(p.kept, lb.ID)
		}
	}
	p.noteDraining(lb, p.current[lb.ID], next)
	changed := diff(p.current[lb.ID], next, updates)
	p.supersede(lb.ID)
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

// keyed marshals a load balancer's resources, once for every client.
func keyed(r translator.Resources) (map[xds.Key]*anypb.Any, error) {
	out := map[xds.Key]*anypb.Any{}
	add := func(typeURL, name string, res types.Resource) error {
		a, err := xds.Marshal(res)
		if err != nil {
			return fmt.Errorf("marshal %s: %w", name, err)
		}
		out[xds.Key{TypeURL: typeURL, Name: name}] = a
		return nil
	}
	var errs []error
	for _, l := range r.Listeners {
		errs = append(errs, add(resource.ListenerType, l.GetName(), l))
	}
	for _, rc := range r.Routes {
		errs = append(errs, add(resource.RouteType, rc.GetName(), rc))
	}
	for _, c := range r.Clusters {
		errs = append(errs, add(resource.ClusterType, c.GetName(), c))
	}
	for _, e := range r.Endpoints {
		errs = append(errs, add(resource.EndpointType, e.GetClusterName(), e))
	}
	for _, e := range r.Extensions {
		errs = append(errs, add(resource.ExtensionConfigType, e.GetName(), e))
	}
	for _, s := range r.Secrets {
		errs = append(errs, add(resource.SecretType, s.GetName(), s))
	}
	return out, errors.Join(errs...)
}

// diff adds to updates what turns prev into next, per group, and returns
// the keys that changed per kind. A fleet move removes from the old
// fleet's groups and adds to the new one's.
func diff(prev, next *resources, updates map[xds.Group]*xds.Update) map[xds.Kind][]xds.Key {
	changed := map[xds.Kind][]xds.Key{}
	for _, kind := range []xds.Kind{xds.KindEnvoy, xds.KindGRPC} {
		var before map[xds.Key]*anypb.Any
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
			if old, ok := before[k]; ok && xds.EqualAny(old, res) {
				continue
			}
			u().upsert(k, res)
			changed[kind] = append(changed[kind], k)
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				u().remove(k)
				// Removed endpoints, routes and filter configurations are
				// never sent in state of the world, nor in delta to a client
				// that has dropped them: the removal of the cluster or
				// listener naming them is what clients acknowledge.
				if !named(k.TypeURL) {
					changed[kind] = append(changed[kind], k)
				}
			}
		}
	}
	return changed
}

// named tells the types a client subscribes to by name once a cluster or
// listener names them.
func named(typeURL string) bool {
	return typeURL == resource.EndpointType || typeURL == resource.RouteType || typeURL == resource.ExtensionConfigType ||
		typeURL == resource.SecretType
}

type xdsUpdate struct{ *xds.Update }

func update(updates map[xds.Group]*xds.Update, g xds.Group) *xdsUpdate {
	u := updates[g]
	if u == nil {
		u = &xds.Update{Upsert: map[string]map[string]*anypb.Any{}, Remove: map[string][]string{}}
		updates[g] = u
	}
	return &xdsUpdate{u}
}

func (u *xdsUpdate) upsert(k xds.Key, r *anypb.Any) {
	if u.Upsert[k.TypeURL] == nil {
		u.Upsert[k.TypeURL] = map[string]*anypb.Any{}
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
// It reports false when the store failed (the verdict is kept).
func (p *Publisher) reject(ctx context.Context, o outcome) bool {
	if !o.retried && !o.local {
		p.log.WarnContext(ctx, "xds: a client rejected a load balancer's configuration",
			"id", o.lb, "revision", o.revision, "kind", o.kind, "error", o.message)
	}
	// What this kind of data plane keeps running instead is kept with
	// the ERROR, so that a restart does not publish the refused one again.
	var keep []store.AcceptedConfig
	p.mu.Lock()
	if prev := p.current[o.lb]; prev != nil && o.kind != "" && o.revision != 0 {
		next := withdrawn(prev, p.good[o.lb], o.kind)
		b, err := encodeResources(withoutSecrets(next.byKind[o.kind]))
		if err == nil {
			keep = append(keep, store.AcceptedConfig{Kind: string(o.kind), Fleet: prev.fleet, Config: b})
		}
	}
	p.mu.Unlock()
	description := "rejected by the data plane: " + o.message
	if o.local {
		description = o.message
	}
	if _, err := p.store.SetRejected(ctx, o.lb, o.revision, description, keep...); err != nil {
		p.log.WarnContext(ctx, "xds: record rejected change; retrying with backoff", "id", o.lb, "err", err)
		return false
	}
	if o.revision == 0 {
		// A client refused a configuration the others accepted: report it,
		// but take nothing away from the clients that run it.
		return true
	}
	p.mu.Lock()
	updates := map[xds.Group]*xds.Update{}
	if prev := p.current[o.lb]; prev != nil && o.kind != "" {
		next := withdrawn(prev, p.good[o.lb], o.kind)
		diff(prev, next, updates)
		p.current[o.lb] = next
		if p.kept[o.lb] == nil {
			p.kept[o.lb] = map[xds.Kind]kept{}
		}
		p.kept[o.lb][o.kind] = kept{fleet: next.fleet, resources: next.byKind[o.kind]}
	}
	rev := p.revision
	p.mu.Unlock()
	if err := p.cache.Apply(rev, updates); err != nil {
		p.log.ErrorContext(ctx, "xds: withdraw rejected configuration", "id", o.lb, "err", err)
	}
	return true
}

// withdrawn is prev with kind's resources replaced by the last accepted
// ones, or removed when those are what was refused.
func withdrawn(prev, good *resources, kind xds.Kind) *resources {
	next := &resources{fleet: prev.fleet, byKind: map[xds.Kind]map[xds.Key]*anypb.Any{}}
	for k, r := range prev.byKind {
		next.byKind[k] = r
	}
	var fallback map[xds.Key]*anypb.Any
	if good != nil && good.fleet == prev.fleet && !sameResources(good.byKind[kind], prev.byKind[kind]) {
		fallback = good.byKind[kind]
	}
	next.byKind[kind] = fallback
	return next
}

func sameResources(a, b map[xds.Key]*anypb.Any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		if other, ok := b[k]; !ok || !xds.EqualAny(r, other) {
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
