package health

import (
	"context"
	"log/slog"
	"math/rand/v2"
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

// Shards split the monitored load balancers (by id modulo Shards) among
// the replicas that probe: each shard is probed by the replica holding its
// PostgreSQL advisory lock, ShardKey(i).
const Shards = 16

// LockKey is the advisory lock of shard 0; shard i's is LockKey|i.
const LockKey int64 = 0x6c62_6161_7368_6d00 // "lbaashm\0"

// ShardKey is the advisory lock of a shard.
func ShardKey(shard int) int64 { return LockKey | int64(shard) }

func shardOf(lb uint32) int { return int(lb % Shards) }

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
	// Lease is the replicas' lease (--replica-lease): a replica cut off
	// from the database loses its shards' locks within it, so that the
	// others take them over. Default 15 s.
	Lease time.Duration
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

	lease time.Duration
	// offset is where this replica starts looking for free shards, so
	// that replicas starting together do not all try the same ones.
	offset int
	// shards are those this replica holds (by Run only); moved are those
	// it took over from another replica, whose nodes were probed recently.
	shards, moved map[int]bool

	mu      sync.Mutex
	held    int                // shards held, for Shards
	targets map[uint32]*target // by node id
	wg      sync.WaitGroup

	// Warnings of failures that repeat, one kind each.
	lockWarn, readWarn, recordWarn *logutil.Limited
}

// target is one node under a health monitor, and the goroutine probing it.
type target struct {
	spec   spec
	cancel context.CancelFunc
	// moved says that its shard came from another replica, which probed
	// it until then: its first probe waits one delay (no node is probed
	// twice in an interval), and it is not new.
	moved bool
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
	if opts.Lease <= 0 {
		opts.Lease = 15 * time.Second
	}
	return &Prober{
		store: st, log: opts.Logger, poll: opts.Poll, unit: time.Second, dial: opts.Dialer,
		lease: opts.Lease, offset: rand.IntN(Shards), shards: map[int]bool{}, moved: map[int]bool{},
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

// Run probes until ctx ends. The load balancers are split in Shards
// shards; each replica takes, with PostgreSQL advisory locks on one
// session, its fair share of them (Shards over the live replicas that
// probe, rounded up), so probing grows with the replicas and no node is
// probed by two at once. A replica that dies frees its locks (its session
// ends; one cut off from the database, after idle_session_timeout = the
// lease), and once its lease lapses the others' shares grow to take its
// shards. Run returns once every probe has stopped.
func (p *Prober) Run(ctx context.Context) {
	p.started = time.Now()
	defer p.stopAll()
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	retry := p.retry()
	for {
		locks, err := p.store.AdvisoryLocks(ctx, p.lease)
		if err == nil {
			retry.Reset()
			p.lockWarn.Recovered(ctx, "health: have a database session for the shard locks again")
			p.lead(ctx, locks, tick.C)
			p.shards = map[int]bool{}
			if err := locks.Close(); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "health: release the shard locks", "err", err)
			}
		}
		if ctx.Err() != nil {
			return
		}
		wait := p.poll
		if err != nil {
			wait = retry.NextBackOff()
			p.lockWarn.Warn(ctx, "health: open a database session for the shard locks", "err", err, "retry_in", wait)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// balance takes free shards up to this replica's fair share and gives back
// those beyond it; it reports whether the shards held changed.
func (p *Prober) balance(ctx context.Context, locks *store.AdvisoryLocks) (bool, error) {
	n, err := p.store.LiveProbers(ctx)
	if err != nil {
		return false, err
	}
	fair := (Shards + max(n, 1) - 1) / max(n, 1)
	changed := false
	for shard := Shards - 1; shard >= 0 && len(p.shards) > fair; shard-- {
		if !p.shards[shard] {
			continue
		}
		// Stop its probes before another replica can take it.
		delete(p.shards, shard)
		p.stopShard(shard)
		changed = true
		if err := locks.Unlock(ctx, ShardKey(shard)); err != nil {
			return true, err
		}
	}
	// With another prober alive, a shard taken may have been probed just
	// now by the replica that had it.
	moved := n > 1
	for i := 0; i < Shards && len(p.shards) < fair; i++ {
		shard := (p.offset + i) % Shards
		if p.shards[shard] {
			continue
		}
		ok, err := locks.TryLock(ctx, ShardKey(shard))
		if err != nil {
			return changed, err
		}
		if ok {
			p.shards[shard], p.moved[shard], changed = true, moved, true
		}
	}
	return changed, nil
}

// stopShard stops probing a shard's nodes.
func (p *Prober) stopShard(shard int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range p.targets {
		if shardOf(t.spec.lb) == shard {
			t.cancel()
			delete(p.targets, id)
		}
	}
}

// Shards returns how many shards this replica probes.
func (p *Prober) Shards() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// lead probes the shards it holds while its session lasts.
func (p *Prober) lead(ctx context.Context, locks *store.AdvisoryLocks, tick <-chan time.Time) {
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
		if err := locks.Check(ctx); err != nil {
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "health: lost the shard locks; stopping the health monitors", "err", err)
			}
			return
		}
		changed, err := p.balance(ctx, locks)
		p.mu.Lock()
		p.held = len(p.shards)
		p.mu.Unlock()
		if changed {
			seen = -1
		}
		var rev int64
		if err == nil {
			rev, err = p.store.Revision(ctx)
		}
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
		if p.shards[0] && time.Since(pruned) > time.Hour {
			// One replica (shard 0's) prunes.
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
		if !p.shards[shardOf(lb.ID)] {
			continue // another replica's
		}
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
		t := &target{spec: s, cancel: cancel, moved: p.moved[shardOf(s.lb)]}
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
	first := time.Duration(0)
	if t.moved {
		first = delay // probed by the replica that had its shard
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	failures := 0
	if s.added.After(p.started) && !t.moved {
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
