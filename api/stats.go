package api

import (
	"context"
	"math"
	"time"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/usage"
)

// GetStats shows a load balancer's traffic numbers, the same whichever
// replica answers (usage.Stats: every replica's flushed rows, plus this
// replica's unwritten counters and live gauges); a load balancer nothing
// reported shows zeros. Which report feeds each field, and how fresh it
// is: README, Statistics (and loadstats' metricsMapping).
func (s *LoadBalancers) GetStats(ctx context.Context, req *lbaasv1.GetStatsRequest) (*lbaasv1.GetStatsResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if _, err := s.store.GetLoadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, s.lbError(ctx, err)
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	snap, err := usage.Stats(ctx, s.store, s.loadStats, s.replica, req.GetLoadBalancerId(), now())
	if err != nil {
		return nil, s.lbError(ctx, err)
	}
	t := snap.Totals
	return &lbaasv1.GetStatsResponse{
		ConnectTimeOut:    count(t.ConnectTimeouts),
		ConnectError:      count(t.ConnectErrors),
		ConnectFailure:    count(t.FailedConnections),
		DataTimedOut:      count(t.DataTimeouts),
		KeepAliveTimedOut: count(t.KeepAliveTimeouts),
		MaxConn:           count(snap.MaxActiveConnections),
		CurrentConn:       count(snap.ActiveConnections),
		// The secure listener shares the cluster: what happens on the
		// node side (connect timeouts, errors, failures) is not told
		// apart, and is counted in the plain fields.
		ConnectTimeOutSsl:    count(0),
		ConnectErrorSsl:      count(0),
		ConnectFailureSsl:    count(0),
		DataTimedOutSsl:      count(t.DataTimeoutsSSL),
		KeepAliveTimedOutSsl: count(t.KeepAliveTimeoutsSSL),
		MaxConnSsl:           count(snap.MaxActiveConnectionsSSL),
		CurrentConnSsl:       count(snap.ActiveConnectionsSSL),
		Requests:             count(t.Issued),
		RequestsSucceeded:    count(t.Succeeded),
		RequestErrors:        count(t.Errors),
		RequestsDropped:      count(t.Dropped),
		RequestsInProgress:   count(snap.InProgress),
	}, nil
}

// count is a counter as the API shows it: it stops at the largest uint32.
func count(n uint64) *uint32 {
	c := uint32(min(n, math.MaxUint32))
	return &c
}
