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

// pend makes lb's pending usage that of minute (unix seconds), spilling
// an earlier minute's, and marks lb for the next TakeUsage.
func (s *Service) pend(id uint32, lb *lbState, minute int64) {
	switch lb.usageMinute {
	case minute:
		return
	case 0:
		s.dirty = append(s.dirty, id)
	default:
		s.spilled = append(s.spilled, Usage{LoadBalancerID: id, Minute: time.Unix(lb.usageMinute, 0).UTC(), Counts: lb.usage})
		lb.usage = Counts{}
	}
	lb.usageMinute = minute
}

// TakeUsage returns what was absorbed since the last call, by load
// balancer and minute, and forgets it. The first call of each minute also
// samples the open connections of every load balancer that has any (one
// sample per minute, so averages do not depend on how often it is called)
// and sweeps the expired reporters out of the sums.
func (s *Service) TakeUsage(now time.Time) []Usage {
	minute := now.UTC().Truncate(time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	var polled map[uint32]Gauges
	if !s.lastPoll.Equal(minute) {
		s.lastPoll = minute
		polled = map[uint32]Gauges{}
		for id, lb := range s.lbs {
			if len(lb.reporters) == 0 {
				continue
			}
			if g := s.gauges(lb, now); g.ActiveConnections != 0 || g.ActiveConnectionsSSL != 0 {
				polled[id] = g
				s.pend(id, lb, minute.Unix())
			}
		}
	}
	out := s.spilled
	s.spilled = nil
	for _, id := range s.dirty {
		lb := s.lbs[id]
		u := Usage{LoadBalancerID: id, Minute: time.Unix(lb.usageMinute, 0).UTC(), Counts: lb.usage}
		if g, ok := polled[id]; ok && lb.usageMinute == minute.Unix() {
			u.Polled, u.Connections, u.ConnectionsSSL = true, g.ActiveConnections, g.ActiveConnectionsSSL
		}
		out = append(out, u)
		lb.usage, lb.usageMinute = Counts{}, 0
	}
	s.dirty = s.dirty[:0]
	return out
}

// ReturnUsage gives back what TakeUsage returned and could not be written:
// the next TakeUsage returns it again.
func (s *Service) ReturnUsage(us []Usage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spilled = append(s.spilled, us...)
}

// PendingUsage is what this replica absorbed for load balancer id and has
// not written yet (TakeUsage would return it), by minute: reads of recent
// history add it to the database's rows, so this replica's own traffic
// shows before the next flush.
func (s *Service) PendingUsage(id uint32) []Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Usage
	for _, u := range s.spilled {
		if u.LoadBalancerID == id {
			out = append(out, u)
		}
	}
	if lb, ok := s.lbs[id]; ok && lb.usageMinute != 0 {
		out = append(out, Usage{LoadBalancerID: id, Minute: time.Unix(lb.usageMinute, 0).UTC(), Counts: lb.usage})
	}
	return out
}

// LiveGauges are the non-zero gauges of every load balancer at now (the
// sums of the live reporters' latest intervals), for the database's
// per-replica rows of GET /stats; it sweeps the expired reporters out.
func (s *Service) LiveGauges(now time.Time) map[uint32]Gauges {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint32]Gauges{}
	for id, lb := range s.lbs {
		if len(lb.reporters) == 0 {
			continue
		}
		if g := s.gauges(lb, now); g != (Gauges{}) {
			out[id] = g
		}
	}
	return out
}
