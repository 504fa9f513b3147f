package api

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

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

// GetConnectionLogging shows whether connection logging is on.
func (s *ConnectionLoggings) GetConnectionLogging(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.ConnectionLoggingResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ConnectionLoggingResponse{ConnectionLogging: &lbaasv1.Enabled{Enabled: proto.Bool(lb.ConnectionLogging)}}, nil
}

// UpdateConnectionLogging turns connection logging on or off. It cannot be
// turned on for the UDP protocols (UDP, UDP_STREAM, DNS_UDP), as the
// reference notes.
func (s *ConnectionLoggings) UpdateConnectionLogging(ctx context.Context, req *lbaasv1.UpdateConnectionLoggingRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetConnectionLogging()
	switch {
	case in == nil:
		return nil, BadRequest("connectionLogging: is required")
	case in.Enabled == nil:
		return nil, BadRequest("connectionLogging.enabled: is required (true or false)")
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		if in.GetEnabled() && IsUDP(lb.Protocol) {
			return BadRequest(fmt.Sprintf("connectionLogging.enabled: connection logging is not available for protocol %s", lb.Protocol))
		}
		lb.ConnectionLogging = in.GetEnabled()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
