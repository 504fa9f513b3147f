// Package nodedns resolves the names customers give as node addresses, in
// the control plane, so that proxies receive IP endpoints only: every
// address goes through the guard (netguard) before it is published, and no
// proxy resolves a customer's name itself (a name could point at the
// proxies' own host, and could answer differently to each resolver).
//
// The publisher reads the current addresses (Lookup, never blocking); Run
// re-resolves every name on a fixed, bounded interval and, when a name's
// addresses change, records a store change of the load balancers using it,
// so the normal publish path republishes them. Go's resolver gives no TTL,
// so the interval is fixed (Options.Refresh, 5 s to 5 min) rather than the
// record's TTL; it still honours the hosts file, resolv.conf and search
// domains exactly as the rest of the system does.
package nodedns

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

// Bounds of the re-resolution interval, and its default.
const (
	MinRefresh     = 5 * time.Second
	MaxRefresh     = 5 * time.Minute
	DefaultRefresh = 30 * time.Second
	// lookupTimeout bounds one resolution.
	lookupTimeout = 5 * time.Second
	// prewarmTimeout bounds the resolutions at start.
	prewarmTimeout = 10 * time.Second
	// concurrency bounds the resolutions in flight.
	concurrency = 8
)

// Options configure a Cache.
type Options struct {
	Guard *netguard.Guard
	// Resolver looks names up; nil resolves none (every name "did not
	// resolve"), which keeps tests off the network.
	Resolver netguard.Resolver
	// Refresh is how often names are resolved again (clamped to MinRefresh
	// and MaxRefresh; default DefaultRefresh).
	Refresh time.Duration
	Logger  *slog.Logger
}

// Cache holds what each node name resolves to, as the guard allows it.
type Cache struct {
	guard    *netguard.Guard
	resolver netguard.Resolver
	refresh  time.Duration
	log      *slog.Logger
	kick     chan struct{}
	lookups  *prometheus.CounterVec
	retry    []uint32 // load balancers a failed touch left (Run's own)

	mu    sync.Mutex
	names map[string]*entry
}

// entry is one name's last resolution.
type entry struct {
	addrs    []netip.Addr // allowed addresses, sorted; nil when none
	resolved time.Time    // zero: not yet
	// waiting are load balancers published while the name was not yet
	// resolved: they are republished once it is.
	waiting map[uint32]bool
}

// New returns a cache; Run keeps it fresh.
func New(opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch {
	case opts.Refresh == 0:
		opts.Refresh = DefaultRefresh
	case opts.Refresh < MinRefresh:
		opts.Refresh = MinRefresh
	case opts.Refresh > MaxRefresh:
		opts.Refresh = MaxRefresh
	}
	return &Cache{
		guard: opts.Guard, resolver: opts.Resolver, refresh: opts.Refresh, log: opts.Logger,
		kick: make(chan struct{}, 1), names: map[string]*entry{},
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lbaas_node_name_lookups_total",
			Help: "Resolutions of node names by the control plane, by result (ok, not_resolved, denied).",
		}, []string{"result"}),
	}
}

// Collector exports the cache's metrics.
func (c *Cache) Collector() prometheus.Collector { return c.lookups }

// Refresh is the re-resolution interval in force.
func (c *Cache) Refresh() time.Duration { return c.refresh }

// Resolve resolves a node address now, through the guard, and remembers
// the outcome: the API calls it when validating a node, so that the
// publication that follows has the addresses at once. It returns the
// allowed addresses, netguard.ErrNotResolved, or a *netguard.NameError or
// *netguard.DeniedError for a denied address.
func (c *Cache) Resolve(ctx context.Context, address string) ([]netip.Addr, error) {
	if _, err := netip.ParseAddr(address); err == nil {
		return c.guard.Resolve(ctx, nil, address)
	}
	addrs, err := c.lookup(ctx, address)
	c.mu.Lock()
	e := c.entry(address)
	e.addrs, e.resolved = addrs, time.Now()
	c.mu.Unlock()
	return addrs, err
}

func (c *Cache) lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := c.guard.Resolve(ctx, c.resolver, name)
	var denied *netguard.DeniedError
	switch {
	case err == nil:
		c.lookups.WithLabelValues("ok").Inc()
	case errors.As(err, &denied):
		c.lookups.WithLabelValues("denied").Inc()
		c.log.InfoContext(ctx, "nodedns: a node name resolves to a denied address; it gets no traffic", "name", name, "err", err)
	default:
		c.lookups.WithLabelValues("not_resolved").Inc()
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs, err
}

// entry returns name's entry, creating it. Callers hold c.mu.
func (c *Cache) entry(name string) *entry {
	e := c.names[name]
	if e == nil {
		e = &entry{}
		c.names[name] = e
	}
	return e
}

// Lookup returns the addresses load balancer lb may send a node's traffic
// to: an IP address itself when the guard allows it, a name's last allowed
// resolution. It never blocks: a name not resolved yet has no addresses
// for now, is resolved at once in the background, and lb is republished
// when it has some.
func (c *Cache) Lookup(lb uint32, address string) []netip.Addr {
	if ip, err := netip.ParseAddr(address); err == nil {
		if err := c.guard.Check(ip); err != nil {
			c.log.Warn("nodedns: a node address is denied; it gets no traffic", "lb", lb, "err", err)
			return nil
		}
		return []netip.Addr{ip.Unmap()}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(address)
	if e.resolved.IsZero() {
		if e.waiting == nil {
			e.waiting = map[uint32]bool{}
		}
		e.waiting[lb] = true
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return slices.Clone(e.addrs)
}

// Prewarm resolves the names of every live load balancer (at start, before
// the first publication, so a restart does not publish named nodes without
// addresses).
func (c *Cache) Prewarm(ctx context.Context, st *store.Store) error {
	names, err := st.NodeNames(ctx)
	if err != nil {
		return err
	}
	// Bounded: a DNS outage must not hold the start; what is left resolves
	// in the background (Lookup).
	ctx, cancel := context.WithTimeout(ctx, prewarmTimeout)
	defer cancel()
	c.resolveAll(ctx, mapsKeys(names))
	return nil
}

// Run re-resolves the names of live load balancers every refresh interval,
// and names the publisher asked for at once, until ctx ends. Load
// balancers whose names now resolve differently are recorded as changed in
// the store, in one transaction per round.
func (c *Cache) Run(ctx context.Context, st *store.Store) {
	tick := time.NewTicker(c.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			c.touch(ctx, st, c.resolveWaiting(ctx))
		case <-tick.C:
			c.touch(ctx, st, c.sweep(ctx, st))
		}
	}
}

// resolveWaiting resolves the names not resolved yet, and returns the load
// balancers waiting for those that now have addresses.
func (c *Cache) resolveWaiting(ctx context.Context) []uint32 {
	c.mu.Lock()
	var names []string
	for name, e := range c.names {
		if e.resolved.IsZero() {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	c.resolveAll(ctx, names)
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint32
	for _, name := range names {
		e := c.names[name]
		if e == nil || e.resolved.IsZero() {
			continue
		}
		if len(e.addrs) > 0 {
			for id := range e.waiting {
				ids = append(ids, id)
			}
		}
		e.waiting = nil
	}
	return ids
}

// sweep resolves every name in use again, forgets names no longer used,
// and returns the load balancers whose names changed.
func (c *Cache) sweep(ctx context.Context, st *store.Store) []uint32 {
	used, err := st.NodeNames(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.WarnContext(ctx, "nodedns: read the node names", "err", err)
		}
		return nil
	}
	c.mu.Lock()
	before := map[string][]netip.Addr{}
	for name, e := range c.names {
		if _, ok := used[name]; !ok && e.waiting == nil {
			delete(c.names, name)
			continue
		}
		before[name] = e.addrs
	}
	c.mu.Unlock()
	c.resolveAll(ctx, mapsKeys(used))
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []uint32
	for name, lbs := range used {
		e := c.names[name]
		if old, ok := before[name]; e != nil && (!ok || !slices.Equal(old, e.addrs)) {
			ids = append(ids, lbs...)
		}
	}
	return ids
}

// resolveAll resolves the names, a few at a time, into the cache.
func (c *Cache) resolveAll(ctx context.Context, names []string) {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, name := range names {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			addrs, _ := c.lookup(ctx, name)
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			e := c.entry(name)
			e.addrs, e.resolved = addrs, time.Now()
			c.mu.Unlock()
		}()
	}
	wg.Wait()
}

// touch records the load balancers as changed, so they are republished;
// after a database error they are tried again with the next round.
func (c *Cache) touch(ctx context.Context, st *store.Store, ids []uint32) {
	ids = append(ids, c.retry...)
	c.retry = nil
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if _, err := st.TouchLoadBalancers(ctx, ids); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "nodedns: record changed node addresses", "load_balancers", len(ids), "err", err)
		c.retry = ids
	}
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
