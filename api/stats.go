package api

import (
	"context"
	"math"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/loadstats"
)

// GetStats shows a load balancer's traffic numbers, from the load reports
// (LRS) this replica aggregated; a load balancer nothing reported shows
// zeros. What feeds each field (README, Statistics):
//   - currentConn: the reporters' open connections (LRS
//     total_active_connections), maxConn the highest sum seen;
//   - connectFailure: failed connection attempts (LRS
//     total_fail_connections);
//   - requests, requestsSucceeded, requestErrors, requestsDropped,
//     requestsInProgress: the reported requests;
//   - connectTimeOut, connectError, dataTimedOut, keepAliveTimedOut: 0,
//     as no report carries them yet (Envoy's metrics service, issue 12);
//   - the ...Ssl twins: 0, as no load balancer terminates SSL yet.
func (s *LoadBalancers) GetStats(ctx context.Context, req *lbaasv1.GetStatsRequest) (*lbaasv1.GetStatsResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if _, err := s.store.GetLoadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, s.lbError(ctx, err)
	}
	var snap loadstats.Snapshot
	if s.loadStats != nil {
		snap = s.loadStats.Snapshot(req.GetLoadBalancerId())
	}
	zero := func() *uint32 { return new(uint32) }
	return &lbaasv1.GetStatsResponse{
		ConnectTimeOut:       zero(),
		ConnectError:         zero(),
		ConnectFailure:       count(snap.Totals.FailedConnections),
		DataTimedOut:         zero(),
		KeepAliveTimedOut:    zero(),
		MaxConn:              count(snap.MaxActiveConnections),
		CurrentConn:          count(snap.ActiveConnections),
		ConnectTimeOutSsl:    zero(),
		ConnectErrorSsl:      zero(),
		ConnectFailureSsl:    zero(),
		DataTimedOutSsl:      zero(),
		KeepAliveTimedOutSsl: zero(),
		MaxConnSsl:           zero(),
		CurrentConnSsl:       zero(),
		Requests:             count(snap.Totals.Issued),
		RequestsSucceeded:    count(snap.Totals.Succeeded),
		RequestErrors:        count(snap.Totals.Errors),
		RequestsDropped:      count(snap.Totals.Dropped),
		RequestsInProgress:   count(snap.InProgress),
	}, nil
}

// count is a counter as the API shows it: it stops at the largest uint32.
func count(n uint64) *uint32 {
	c := uint32(min(n, math.MaxUint32))
	return &c
}
