package usage

import (
	"context"
	"time"

	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/store"
)

// Stats are load balancer id's numbers of GET /stats, the same whichever
// replica answers:
//   - counters: the sums of every replica's all-time rows (since the load
//     balancer was created; they are not pruned) plus what this
//     replica absorbed and has not written yet (stats' PendingUsage), so
//     its own reporters' traffic shows at once and another replica's
//     after that replica's next flush;
//   - gauges: what every other live replica wrote at its last flush (one
//     that has not flushed for 3 of its flush intervals is left out) plus
//     this replica's live reporters (stats' Snapshot);
//   - MaxActiveConnections (and SSL): the highest minute sample of open
//     connections summed over the replicas in the last
//     store.MaxConnectionsWindow, or the current ones when higher.
//
// replica is this replica's rows (the Recorder's Replica); stats may be
// nil (no reporters: the database's numbers alone).
func Stats(ctx context.Context, st *store.Store, stats *loadstats.Service, replica string, id uint32, now time.Time) (loadstats.Snapshot, error) {
	t, err := st.LoadBalancerStats(ctx, id, now, replica)
	if err != nil {
		return loadstats.Snapshot{}, err
	}
	c := loadstats.Counts{
		Issued: count(t.Requests), Succeeded: count(t.RequestsSucceeded), Errors: count(t.RequestErrors),
		Dropped: count(t.RequestsDropped), FailedConnections: count(t.ConnectFailures),
		ConnectTimeouts: count(t.ConnectTimeouts), ConnectErrors: count(t.ConnectErrors),
		DataTimeouts: count(t.DataTimeouts), KeepAliveTimeouts: count(t.KeepAliveTimeouts),
		DataTimeoutsSSL: count(t.DataTimeoutsSSL), KeepAliveTimeoutsSSL: count(t.KeepAliveTimeoutsSSL),
	}
	g := loadstats.Gauges{InProgress: count(t.InProgress), ActiveConnections: count(t.Connections), ActiveConnectionsSSL: count(t.ConnectionsSSL)}
	if stats != nil {
		for _, u := range stats.PendingUsage(id) {
			c.Add(u.Counts)
		}
		g.Add(stats.Snapshot(id).Gauges)
	}
	return loadstats.Snapshot{Totals: c, Gauges: g,
		MaxActiveConnections:    max(count(t.MaxConnections), g.ActiveConnections),
		MaxActiveConnectionsSSL: max(count(t.MaxConnectionsSSL), g.ActiveConnectionsSSL),
	}, nil
}

// count is a database sum as a counter (never negative).
func count(n int64) uint64 { return uint64(max(n, 0)) }
