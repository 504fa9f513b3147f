package usage

import (
	"context"
	"sort"
	"time"

	"github.com/openlbaas/lbaas/store"
)

// AccountRecord is the account's load balancers and virtual IPs from
// Start on.
type AccountRecord struct {
	Start                                     time.Time
	LoadBalancers, PublicVIPs, ServicenetVIPs uint32
}

// LoadBalancerUsage is one load balancer's records in an account's usage.
type LoadBalancerUsage struct {
	ID      uint32
	Name    string
	Records []Record
}

// Account is an account's usage over [from, to): what it had at from and
// after each event, and the records of each load balancer it had.
func Account(ctx context.Context, st *store.Store, account string, from, to, now time.Time) ([]AccountRecord, []LoadBalancerUsage, error) {
	ids, names, err := st.AccountLoadBalancerIDs(ctx, account, to)
	if err != nil {
		return nil, nil, err
	}
	to = minTime(to, now)
	events, err := st.UsageEvents(ctx, ids, from, to)
	if err != nil {
		return nil, nil, err
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	current := map[uint32]store.UsageEvent{}
	var recs []AccountRecord
	snapshot := func(at time.Time) {
		r := AccountRecord{Start: at}
		for _, e := range current {
			if e.Deleted() {
				continue
			}
			r.LoadBalancers++
			r.PublicVIPs += uint32(e.PublicVIPs)
			r.ServicenetVIPs += uint32(e.ServicenetVIPs)
		}
		if n := len(recs); n > 0 && recs[n-1].Start.Equal(at) {
			recs[n-1] = r
			return
		}
		recs = append(recs, r)
	}
	i := 0
	for ; i < len(events) && events[i].At.Before(from); i++ {
		current[events[i].LoadBalancerID] = events[i]
	}
	snapshot(from)
	for ; i < len(events); i++ {
		current[events[i].LoadBalancerID] = events[i]
		snapshot(events[i].At)
	}
	byLB, err := records(ctx, st, ids, from, to, now)
	if err != nil {
		return nil, nil, err
	}
	var lbs []LoadBalancerUsage
	for _, id := range ids {
		if rs := byLB[id]; len(rs) > 0 {
			lbs = append(lbs, LoadBalancerUsage{ID: id, Name: names[id], Records: rs})
		}
	}
	return recs, lbs, nil
}
