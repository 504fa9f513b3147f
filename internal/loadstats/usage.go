package loadstats

import (
	"time"
)

// Usage is what this process absorbed of one load balancer during one
// minute, for the database's per-replica rows (store.AddUsage): counters
// as deltas, so a row is written once and a restart loses at most what was
// not taken yet. Polled marks the minute's one sample of the open
// connections (the gauges of the live reporters when it was taken).
type Usage struct {
	LoadBalancerID uint32
	Minute         time.Time // UTC, on the minute
	Counts
	Polled                      bool
	Connections, ConnectionsSSL uint64
}

type usageKey struct {
	lb     uint32
	minute int64 // unix seconds
}

// TakeUsage returns what was absorbed since the last call, by load
// balancer and minute, and forgets it. The first call of each minute also
// samples the open connections of every load balancer that has any (one
// sample per minute, so averages do not depend on how often it is called).
func (s *Service) TakeUsage(now time.Time) []Usage {
	minute := now.UTC().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastPoll.Equal(minute) {
		s.lastPoll = minute
		for id, lb := range s.lbs {
			if len(lb.reporters) == 0 {
				continue
			}
			g := s.gauges(lb, now)
			if g.ActiveConnections == 0 && g.ActiveConnectionsSSL == 0 {
				continue
			}
			k := usageKey{id, minute.Unix()}
			u := s.pending[k]
			if u == nil {
				u = &Usage{LoadBalancerID: id, Minute: minute}
				s.pending[k] = u
			}
			u.Polled, u.Connections, u.ConnectionsSSL = true, g.ActiveConnections, g.ActiveConnectionsSSL
		}
	}
	out := make([]Usage, 0, len(s.pending))
	for _, u := range s.pending {
		out = append(out, *u)
	}
	clear(s.pending)
	return out
}

// ReturnUsage gives back what TakeUsage returned and could not be written:
// the next TakeUsage returns it again.
func (s *Service) ReturnUsage(us []Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		k := usageKey{u.LoadBalancerID, u.Minute.Unix()}
		p := s.pending[k]
		if p == nil {
			c := u
			s.pending[k] = &c
			continue
		}
		p.Counts.add(u.Counts)
		if u.Polled && !p.Polled {
			p.Polled, p.Connections, p.ConnectionsSSL = true, u.Connections, u.ConnectionsSSL
		}
	}
}
