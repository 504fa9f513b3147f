package api

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// HealthMonitors implements HealthMonitorService: the active health monitor.
// The monitor is only configuration here; package health probes the nodes
// and writes their status.
type HealthMonitors struct {
	lbaasv1.UnimplementedHealthMonitorServiceServer
	lbChild
}

// NewHealthMonitors returns the HealthMonitorService.
func NewHealthMonitors(st *store.Store, auth Authorizer, cfg Config) *HealthMonitors {
	return &HealthMonitors{lbChild: newLBChild(st, auth, cfg)}
}

// GetHealthMonitor shows the health monitor, or {} when there is none.
func (s *HealthMonitors) GetHealthMonitor(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.HealthMonitorResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	out := &lbaasv1.HealthMonitorResponse{HealthMonitor: &lbaasv1.HealthMonitor{}}
	if lb.HealthMonitor != nil {
		out.HealthMonitor = apiHealthMonitor(lb.HealthMonitor)
	}
	return out, nil
}

// UpdateHealthMonitor sets (or replaces) the health monitor.
func (s *HealthMonitors) UpdateHealthMonitor(ctx context.Context, req *lbaasv1.UpdateHealthMonitorRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetHealthMonitor()
	if in == nil {
		return nil, BadRequest("healthMonitor: is required")
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		var v validation
		hm := healthMonitor(&v, "healthMonitor", lb.Protocol, in)
		if err := v.err(); err != nil {
			return err
		}
		lb.HealthMonitor = hm
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteHealthMonitor removes the health monitor. As the reference says,
// every node it had put OFFLINE goes back ONLINE, whatever its health
// (passive monitoring still ejects failing nodes in the data plane).
func (s *HealthMonitors) DeleteHealthMonitor(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		if lb.HealthMonitor == nil {
			return Unprocessable(fmt.Sprintf("Load balancer '%d' has no health monitor to delete.", lb.ID))
		}
		for i := range lb.Nodes {
			if n := &lb.Nodes[i]; n.Status == NodeOffline {
				if err := tx.SetNodeStatus(lb, n, NodeOnline, "Health monitor deleted"); err != nil {
					return err
				}
			}
		}
		lb.HealthMonitor = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
