package health

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/openlbaas/lbaas/internal/logutil"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

// Node statuses the prober writes (api.NodeOnline, api.NodeOffline).
const (
	Online  = "ONLINE"
	Offline = "OFFLINE"
)

// LockKey is the PostgreSQL advisory lock the probing replica holds.
const LockKey int64 = 0x6c62_6161_7368_6d00 // "lbaashm\0"

// eventRetention is how long node service events are kept (reference: 90 days).
const eventRetention = 90 * 24 * time.Hour

// retryMax caps the wait between tries of a database read that keeps
// failing (the waits start at Options.Poll and double, with jitter).
const retryMax = 10 * time.Second

// Options configure a Prober.
type Options struct {
	Logger *slog.Logger
	// Poll is how often the store is read for changes committed elsewhere
	// (other replicas) and, when not probing, how often the lock is tried.
	// Local commits are seen at once. Default 1 s.
	Poll time.Duration
	// Concurrency bounds the probes in flight. Default 256.
	Concurrency int
	// Dialer makes every probe's connection: it resolves a node's name
	// before each probe and connects only to an address its guard allows.
	// The zero Dialer resolves no name and allows every address.
	Dialer netguard.Dialer
}

// Prober runs the health monitors.
type Prober struct {
	store *store.Store
	log   *slog.Logger
	poll  time.Duration
	sem   chan struct{}
	dial  netguard.Dialer
	// unit is what a monitor's delay counts in: a second (tests shorten it).
	unit time.Duration

	// started is when probing began: a node added after it is new, and its
	// first check decides its status (the reference checks a node when it
	// is added, before it serves).
	started time.Time

	mu      sync.Mutex
	targets map[uint32]*target // by node id
	wg      sync.WaitGroup

	// Warnings of failures that repeat, one kind each.
	lockWarn, readWarn, recordWarn *logutil.Limited
}

// target is one node under a health monitor, and the goroutine probing it.
type target struct {
	spec   spec
	cancel context.CancelFunc
	// status is the node's stored status as last known: the prober's own
	// writes, and what reconcile reads (others may write it too, as the
	// removal of a monitor does).
	status atomic.Value
}

// spec is what a node's probing depends on: a change restarts it.
type spec struct {
	lb      uint32
	node    uint32
	address string
	port    uint32
	monitor store.HealthMonitor
	added   time.Time
}

// New returns a prober of the store's load balancers.
func New(st *store.Store, opts Options) *Prober {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 256
	}
	return &Prober{
		store: st, log: opts.Logger, poll: opts.Poll, unit: time.Second, dial: opts.Dialer,
		sem: make(chan struct{}, opts.Concurrency), targets: map[uint32]*target{},
		lockWarn:   logutil.NewLimited(opts.Logger, logutil.Interval),
		readWarn:   logutil.NewLimited(opts.Logger, logutil.Interval),
		recordWarn: logutil.NewLimited(opts.Logger, logutil.Interval),
	}
}

// retry is the capped exponential backoff with jitter between tries of a
// database read that fails.
func (p *Prober) retry() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval: p.poll, MaxInterval: max(retryMax, p.poll),
		Multiplier: 2, RandomizationFactor: 0.5,
	}
}

// sleep waits d, or less if ctx ends; it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run probes until ctx ends. With several replicas on PostgreSQL only the
// one holding the advisory lock LockKey probes; the others wait to take
// over. Run returns once every probe has stopped.
func (p *Prober) Run(ctx context.Context) {
	p.started = time.Now()
	defer p.stopAll()
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	retry := p.retry()
	waiting := false
	for {
		lock, ok, err := p.store.TryAdvisoryLock(ctx, LockKey)
		if err == nil {
			retry.Reset()
			p.lockWarn.Recovered(ctx, "health: took the prober lock again")
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait := retry.NextBackOff()
			p.lockWarn.Warn(ctx, "health: take the prober lock", "err", err, "retry_in", wait)
			if !sleep(ctx, wait) {
				return
			}
			continue
		case !ok:
			if !waiting {
				p.log.InfoContext(ctx, "health: another replica runs the health monitors; standing by")
				waiting = true
			}
		default:
			waiting = false
			p.lead(ctx, lock, tick.C)
			if err := lock.Release(); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "health: release the prober lock", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lead probes while the lock holds.
func (p *Prober) lead(ctx context.Context, lock *store.AdvisoryLock, tick <-chan time.Time) {
	defer p.stopAll()
	revs, stop := p.store.Subscribe()
	defer stop()
	var seen int64 = -1
	var pruned, reconciled time.Time
	retry := p.retry()
	// Every commit wakes the loop, the prober's own included: a floor
	// between reloads keeps a burst of status changes from turning into
	// as many reads of every monitored load balancer.
	gap := p.poll / 5
	for {
		if wait := gap - time.Since(reconciled); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if err := lock.Check(ctx); err != nil {
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "health: lost the prober lock; stopping the health monitors", "err", err)
			}
			return
		}
		rev, err := p.store.Revision(ctx)
		if err == nil && rev != seen {
			if err = p.reconcile(ctx); err == nil {
				seen = rev
			}
			reconciled = time.Now()
		}
		if err != nil {
			// The database fails: try again later and later (capped),
			// rather than at every tick and commit.
			if ctx.Err() != nil {
				return
			}
			wait := retry.NextBackOff()
			p.readWarn.Warn(ctx, "health: read the health monitors", "err", err, "retry_in", wait)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		retry.Reset()
		p.readWarn.Recovered(ctx, "health: reading the health monitors again")
		if time.Since(pruned) > time.Hour {
			pruned = time.Now()
			if _, err := p.store.PruneNodeEvents(ctx, time.Now().Add(-eventRetention)); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "health: prune node service events", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-revs:
		case <-tick:
		}
	}
}

// reconcile starts probing the nodes that need it and stops the others.
func (p *Prober) reconcile(ctx context.Context) error {
	lbs, err := p.store.MonitoredLoadBalancers(ctx)
	if err != nil {
		return err
	}
	want := map[uint32]spec{}
	status := map[uint32]string{}
	for _, lb := range lbs {
		for _, n := range lb.Nodes {
			if n.Condition == "DISABLED" {
				continue // gets no traffic whatever its health
			}
			want[n.ID] = spec{lb: lb.ID, node: n.ID, address: n.Address, port: n.Port, monitor: *lb.HealthMonitor, added: n.CreatedAt}
			status[n.ID] = n.Status
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range p.targets {
		if s, ok := want[id]; !ok || s != t.spec {
			t.cancel()
			delete(p.targets, id)
		}
	}
	for id, s := range want {
		if t, ok := p.targets[id]; ok {
			t.status.Store(status[id])
			continue
		}
		c, err := NewChecker(s.monitor, s.address, s.port, p.dial)
		if err != nil {
			// The API validates monitors, so this is a bug; say so once.
			p.log.ErrorContext(ctx, "health: cannot check node", "lb", s.lb, "node", s.node, "err", err)
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		t := &target{spec: s, cancel: cancel}
		t.status.Store(status[id])
		p.targets[id] = t
		p.wg.Add(1)
		go p.watch(tctx, t, c)
	}
	return nil
}

// Targets returns the number of nodes being probed.
func (p *Prober) Targets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.targets)
}

// stopAll stops every probe and waits for them.
func (p *Prober) stopAll() {
	p.mu.Lock()
	for id, t := range p.targets {
		t.cancel()
		delete(p.targets, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// watch probes one node every delay seconds, at once first: it goes
// OFFLINE after attemptsBeforeDeactivation consecutive failures and back
// ONLINE after one success.
func (p *Prober) watch(ctx context.Context, t *target, c *Checker) {
	defer p.wg.Done()
	defer c.Close()
	s := t.spec
	delay := time.Duration(max(s.monitor.Delay, 1)) * p.unit
	attempts := int(s.monitor.AttemptsBeforeDeactivation)
	if attempts < 1 {
		attempts = 1
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	if s.added.After(p.started) {
		// A node added while we probe fails its first check outright.
		failures = attempts - 1
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		err := p.check(ctx, c)
		if ctx.Err() != nil {
			return
		}
		status := t.status.Load().(string)
		switch {
		case err == nil:
			failures = 0
			if status != Online && p.record(ctx, s, Online, "Node is working") {
				t.status.Store(Online)
			}
		default:
			failures++
			if failures >= attempts && status != Offline && p.record(ctx, s, Offline, err.Error()) {
				t.status.Store(Offline)
			}
		}
		timer.Reset(max(delay-time.Since(start), 0))
	}
}

// check runs one probe within the concurrency bound.
func (p *Prober) check(ctx context.Context, c *Checker) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	return c.Check(ctx)
}

// record writes a status change; it reports whether the store now has it
// (false after a database error: the next probe tries again).
func (p *Prober) record(ctx context.Context, s spec, status, detail string) bool {
	changed, err := p.store.SetNodeStatus(ctx, s.lb, s.node, status, detail)
	if err != nil {
		if ctx.Err() == nil {
			p.recordWarn.Warn(ctx, "health: record node status", "lb", s.lb, "node", s.node, "status", status, "err", err)
		}
		return false
	}
	p.recordWarn.Recovered(ctx, "health: recording node statuses again")
	if changed {
		p.log.InfoContext(ctx, "health: node status changed", "lb", s.lb, "node", s.node,
			"address", s.address, "port", s.port, "status", status, "detail", detail)
	}
	return true
}
