package controlplane

import (
	"context"
	"errors"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// isolation finds which of several changes a client refused when its NACK
// did not say (an Envoy-shaped error naming nothing, of a response
// carrying several changes). Every suspect is withdrawn from that kind of
// data plane, then published again alone, one after the other: the change
// a client refuses alone is the culprit (its NACK then has one suspect and
// is pinned on it), the others are applied. No load balancer the client
// accepted is ever put in ERROR, and the suspects stay PENDING meanwhile.
type isolation struct {
	kind    xds.Kind
	queue   []*xds.Pending
	held    map[uint32]*resources // what each suspect publishes
	current uint32                // the suspect being tried alone; 0 none
}

// Suspected implements xds.Outcome.
func (p *Publisher) Suspected(kind xds.Kind, suspects []*xds.Pending, message string) {
	p.mu.Lock()
	p.suspected = append(p.suspected, suspicion{kind: kind, suspects: suspects, message: message})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

type suspicion struct {
	kind     xds.Kind
	suspects []*xds.Pending
	message  string
}

// freshRevision takes a store revision for a step of an isolation, so a
// client's acknowledgement of an earlier version cannot count for it, and
// publishes every commit before it (sync), so that no change committed
// earlier is reported applied for an acknowledgement of a version that
// lacks it once the step is applied at that revision.
func (p *Publisher) freshRevision(ctx context.Context) (int64, error) {
	rev, err := p.store.Update(ctx, func(*store.Tx) error { return nil })
	if err == nil && !p.sync(ctx) {
		err = errSync
	}
	return rev, err
}

var errSync = errors.New("publishing the revisions before it failed")

// isolate starts the isolations the tracker asked for; it reports false
// when the store failed (they are kept for the next attempt).
func (p *Publisher) isolate(ctx context.Context) bool {
	p.mu.Lock()
	todo := p.suspected
	p.suspected = nil
	p.mu.Unlock()
	for i, s := range todo {
		rev, err := p.freshRevision(ctx)
		if err != nil {
			p.log.WarnContext(ctx, "xds: isolate refused changes; retrying with backoff", "err", err)
			p.mu.Lock()
			p.suspected = append(todo[i:], p.suspected...)
			p.mu.Unlock()
			return false
		}
		iso := &isolation{kind: s.kind, held: map[uint32]*resources{}}
		updates := map[xds.Group]*xds.Update{}
		p.mu.Lock()
		for _, sp := range s.suspects {
			for _, other := range p.isolations {
				if other.current == sp.LoadBalancer {
					other.current = 0 // moved to this isolation
				}
			}
			prev := p.current[sp.LoadBalancer]
			if prev == nil {
				continue
			}
			next := withdrawn(prev, p.good[sp.LoadBalancer], s.kind)
			diff(prev, next, updates)
			p.current[sp.LoadBalancer] = next
			iso.held[sp.LoadBalancer] = prev
			iso.queue = append(iso.queue, sp)
		}
		p.isolations = append(p.isolations, iso)
		p.mu.Unlock()
		p.log.InfoContext(ctx, "xds: trying refused changes one at a time", "kind", s.kind, "suspects", len(iso.queue), "error", s.message)
		if err := p.cache.Apply(rev, updates); err != nil {
			p.log.ErrorContext(ctx, "xds: withdraw suspected changes", "err", err)
		}
	}
	return p.advanceIsolations(ctx)
}

// settledInIsolation notes that a suspect's trial ended (applied or
// rejected); the next one is then tried.
func (p *Publisher) settledInIsolation(lb uint32) {
	for _, iso := range p.isolations {
		if iso.current == lb {
			iso.current = 0
		}
	}
}

// advanceIsolations publishes, for each isolation with no trial running,
// its next suspect alone; finished isolations are dropped.
func (p *Publisher) advanceIsolations(ctx context.Context) bool {
	for {
		p.mu.Lock()
		var iso *isolation
		var next *xds.Pending
		kept := p.isolations[:0]
		for _, is := range p.isolations {
			if is.current == 0 && len(is.queue) == 0 {
				continue // done
			}
			kept = append(kept, is)
			if iso == nil && is.current == 0 {
				iso, next = is, is.queue[0]
			}
		}
		p.isolations = kept
		p.mu.Unlock()
		if iso == nil {
			return true
		}
		rev, err := p.freshRevision(ctx)
		if err != nil {
			p.log.WarnContext(ctx, "xds: isolate refused changes; retrying with backoff", "err", err)
			return false
		}
		p.mu.Lock()
		iso.queue = iso.queue[1:]
		held := iso.held[next.LoadBalancer]
		delete(iso.held, next.LoadBalancer)
		prev := p.current[next.LoadBalancer]
		if prev == nil || held == nil {
			p.mu.Unlock()
			continue // changed or deleted since: the new change supersedes the trial
		}
		updates := map[xds.Group]*xds.Update{}
		changed := diff(prev, held, updates)
		p.current[next.LoadBalancer] = held
		iso.current = next.LoadBalancer
		p.mu.Unlock()
		p.tracker.Expect([]*xds.Pending{{LoadBalancer: next.LoadBalancer, Fleet: next.Fleet, Revision: next.Revision,
			Since: rev, Changed: changed}})
		if err := p.cache.Apply(rev, updates); err != nil {
			p.log.ErrorContext(ctx, "xds: publish a suspected change alone", "id", next.LoadBalancer, "err", err)
		}
	}
}

// supersede drops a load balancer from the isolations: a newer change of
// it is being published the ordinary way. Callers hold p.mu.
func (p *Publisher) supersede(lb uint32) {
	for _, iso := range p.isolations {
		if iso.current == lb {
			iso.current = 0
		}
		delete(iso.held, lb)
	}
}
