package usage

import (
	"context"
	"time"

	"github.com/openlbaas/lbaas/store"
)

// Record is one span of a load balancer's usage: an hour, or the part of
// an hour from an event on (Event set). An hour's traffic goes on its last
// span.
type Record struct {
	ID                                  uint32 // unique per load balancer
	Start, End                          time.Time
	AverageConnections, AverageConnsSSL float64
	Requests, RequestErrors             int64
	BytesIn, BytesOut                   int64
	BytesInSSL, BytesOutSSL             int64
	NumVIPs                             uint32
	NumPolls                            uint32
	VIPType, SSLMode                    string
	Event                               string // the event the span starts with, if any
}

// idEpoch is where the hours of record ids count from.
var idEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Records are a load balancer's usage records over [from, to), up to now:
// from its creation (or from) to its deletion (or to), split at every hour
// and every event.
func Records(ctx context.Context, st *store.Store, id uint32, from, to, now time.Time) ([]Record, error) {
	all, err := records(ctx, st, []uint32{id}, from, to, now)
	return all[id], err
}

func records(ctx context.Context, st *store.Store, ids []uint32, from, to, now time.Time) (map[uint32][]Record, error) {
	to = minTime(to, now)
	out := map[uint32][]Record{}
	if !from.Before(to) {
		return out, nil
	}
	events, err := st.UsageEvents(ctx, ids, from, to)
	if err != nil {
		return nil, err
	}
	series, err := st.UsageSeries(ctx, ids, store.UsageStepHour, from.Truncate(time.Hour), to)
	if err != nil {
		return nil, err
	}
	byLB := map[uint32][]store.UsageEvent{}
	for _, e := range events {
		byLB[e.LoadBalancerID] = append(byLB[e.LoadBalancerID], e)
	}
	hours := map[uint32]map[int64]store.UsageTotals{}
	for _, h := range series {
		if hours[h.LoadBalancerID] == nil {
			hours[h.LoadBalancerID] = map[int64]store.UsageTotals{}
		}
		hours[h.LoadBalancerID][h.Start.Unix()] = h
	}
	for _, id := range ids {
		if rs := spans(byLB[id], hours[id], from, to, now); len(rs) > 0 {
			out[id] = rs
		}
	}
	return out, nil
}

// spans cuts [from, to) at hours and events; events are oldest first, the
// first one possibly before from (the state the window starts in).
func spans(events []store.UsageEvent, hours map[int64]store.UsageTotals, from, to, now time.Time) []Record {
	if len(events) == 0 {
		return nil
	}
	i, start := 0, from
	var state store.UsageEvent
	if events[0].At.Before(from) {
		state, i = events[0], 1
	} else {
		start = events[0].At // created in the window
	}
	var out []Record
	for {
		event := ""
		for i < len(events) && !events[i].At.After(start) {
			state, event = events[i], events[i].Type
			i++
		}
		if state.Deleted() {
			if event != "" {
				// Deletion ends the usage: a span of no length marks it.
				out = append(out, record(state, event, state.At, state.At, nil, now))
			}
			return out
		}
		if !start.Before(to) {
			return out
		}
		hourEnd := start.Truncate(time.Hour).Add(time.Hour)
		end := minTime(hourEnd, to)
		if i < len(events) && events[i].At.Before(end) {
			end = events[i].At
		}
		var h *store.UsageTotals
		if t, ok := hours[start.Truncate(time.Hour).Unix()]; ok && (end.Equal(hourEnd) || end.Equal(to)) {
			h = &t // the hour's traffic goes on its last span
		}
		out = append(out, record(state, event, start, end, h, now))
		start = end
	}
}

func record(state store.UsageEvent, event string, start, end time.Time, h *store.UsageTotals, now time.Time) Record {
	// Ids: odd for a span an event opens (from the event's id), even for
	// the others (from the hour), so unique per load balancer.
	r := Record{
		ID:    uint32(start.Sub(idEpoch)/time.Hour) * 2,
		Start: start, End: end, Event: event,
		NumVIPs: uint32(state.PublicVIPs + state.ServicenetVIPs), SSLMode: state.SSLMode, VIPType: "PUBLIC",
	}
	if state.PublicVIPs == 0 && state.ServicenetVIPs > 0 {
		r.VIPType = "SERVICENET"
	}
	if event != "" {
		r.ID = uint32(state.ID)*2 + 1
	}
	if h != nil {
		r.BytesIn, r.BytesOut, r.BytesInSSL, r.BytesOutSSL = h.BytesIn, h.BytesOut, h.BytesInSSL, h.BytesOutSSL
		r.Requests, r.RequestErrors = h.Requests, h.RequestErrors
		r.NumPolls = uint32(h.Polls)
		// The hour's open connections, sampled once a minute by each
		// replica, averaged over the minutes of the hour so far.
		hour := h.Start
		minutes := minTime(hour.Add(time.Hour), now).Sub(hour).Minutes()
		if minutes < 1 {
			minutes = 1
		}
		r.AverageConnections = float64(h.Connections) / float64(int(minutes))
		r.AverageConnsSSL = float64(h.ConnectionsSSL) / float64(int(minutes))
	}
	return r
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
