package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// ConnectionThrottles implements ConnectionThrottleService: connection throttling.
type ConnectionThrottles struct {
	lbaasv1.UnimplementedConnectionThrottleServiceServer
	lbChild
}

// NewConnectionThrottles returns the ConnectionThrottleService.
func NewConnectionThrottles(st *store.Store, auth Authorizer, cfg Config) *ConnectionThrottles {
	return &ConnectionThrottles{lbChild: newLBChild(st, auth, cfg)}
}
