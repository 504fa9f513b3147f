package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// HealthMonitors implements HealthMonitorService: the active health monitor.
type HealthMonitors struct {
	lbaasv1.UnimplementedHealthMonitorServiceServer
	lbChild
}

// NewHealthMonitors returns the HealthMonitorService.
func NewHealthMonitors(st *store.Store, auth Authorizer, cfg Config) *HealthMonitors {
	return &HealthMonitors{lbChild: newLBChild(st, auth, cfg)}
}
