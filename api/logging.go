package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// ConnectionLoggings implements ConnectionLoggingService: connection logging on or off.
type ConnectionLoggings struct {
	lbaasv1.UnimplementedConnectionLoggingServiceServer
	lbChild
}

// NewConnectionLoggings returns the ConnectionLoggingService.
func NewConnectionLoggings(st *store.Store, auth Authorizer, cfg Config) *ConnectionLoggings {
	return &ConnectionLoggings{lbChild: newLBChild(st, auth, cfg)}
}
