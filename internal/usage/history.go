package usage

import (
	"context"
	"time"

	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/store"
)

// Windows of the history: how many steps of how long.
var Windows = map[string]struct {
	Step  time.Duration
	Steps int
}{
	"hour": {time.Minute, 60},
	"day":  {5 * time.Minute, 288},
}

// Point is one step of a load balancer's history: counters are what
// happened during the step, Connections the average of the open
// connections sampled once a minute.
type Point struct {
	Time                    time.Time
	Requests, RequestErrors int64
	Connections             float64
	BytesIn, BytesOut       int64
}

// History is a load balancer's last steps of a window, oldest first, the
// current step last, steps without numbers as zeros. What this replica's
// reporters (stats; nil for none) sent and it has not written yet is
// added, as Stats does, so its own traffic shows before its next flush
// (another replica's shows after that replica's flush).
func History(ctx context.Context, st *store.Store, stats *loadstats.Service, id uint32, window string, now time.Time) ([]Point, error) {
	w := Windows[window]
	end := now.UTC().Truncate(w.Step).Add(w.Step)
	begin := end.Add(-time.Duration(w.Steps) * w.Step)
	rows, err := st.UsageSeries(ctx, []uint32{id}, store.UsageStepMinute, begin, end)
	if err != nil {
		return nil, err
	}
	points := make([]Point, w.Steps)
	for i := range points {
		points[i].Time = begin.Add(time.Duration(i) * w.Step)
	}
	minutes := float64(w.Step / time.Minute)
	for _, r := range rows {
		p := &points[int(r.Start.Sub(begin)/w.Step)]
		p.Requests += r.Requests
		p.RequestErrors += r.RequestErrors
		p.BytesIn += r.BytesIn
		p.BytesOut += r.BytesOut
		p.Connections += float64(r.Connections) / minutes
	}
	var pending []loadstats.Usage
	if stats != nil {
		pending = stats.PendingUsage(id)
	}
	for _, u := range pending {
		if u.Minute.Before(begin) || !u.Minute.Before(end) {
			continue
		}
		p := &points[int(u.Minute.Sub(begin)/w.Step)]
		p.Requests += clamp(u.Issued)
		p.RequestErrors += clamp(u.Errors)
		p.BytesIn += clamp(u.BytesIn)
		p.BytesOut += clamp(u.BytesOut)
	}
	return points, nil
}
