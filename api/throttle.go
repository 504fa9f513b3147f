package api

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

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

// GetConnectionThrottle shows the throttle ({"connectionThrottle": {}} when none is set).
func (s *ConnectionThrottles) GetConnectionThrottle(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.ConnectionThrottleResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	out := &lbaasv1.ConnectionThrottle{}
	if ct := lb.ConnectionThrottle; ct != nil {
		out = &lbaasv1.ConnectionThrottle{
			MaxConnections: proto.Uint32(ct.MaxConnections), MinConnections: proto.Uint32(ct.MinConnections),
			MaxConnectionRate: proto.Uint32(ct.MaxConnectionRate), RateInterval: proto.Uint32(ct.RateInterval),
		}
	}
	return &lbaasv1.ConnectionThrottleResponse{ConnectionThrottle: out}, nil
}

// UpdateConnectionThrottle creates the throttle (every attribute is then
// required) or updates it (as few as one attribute; the others keep their
// values), as the reference's note says.
func (s *ConnectionThrottles) UpdateConnectionThrottle(ctx context.Context, req *lbaasv1.UpdateConnectionThrottleRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetConnectionThrottle()
	if in == nil {
		return nil, BadRequest("connectionThrottle: is required")
	}
	attrs := []struct {
		name string
		set  bool
	}{
		{"maxConnections", in.MaxConnections != nil}, {"minConnections", in.MinConnections != nil},
		{"maxConnectionRate", in.MaxConnectionRate != nil}, {"rateInterval", in.RateInterval != nil},
	}
	var names []string
	given := false
	for _, a := range attrs {
		names = append(names, a.name)
		given = given || a.set
	}
	if !given {
		return nil, BadRequest("connectionThrottle: give at least one of " + strings.Join(names, ", "))
	}
	var v validation
	connectionThrottle(&v, "connectionThrottle", in) // the ranges of the attributes given
	if err := v.err(); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		if lb.ConnectionThrottle == nil {
			var missing validation
			for _, a := range attrs {
				if !a.set {
					missing.add("connectionThrottle."+a.name, "is required when creating the connection throttle")
				}
			}
			if err := missing.err(); err != nil {
				return err
			}
			lb.ConnectionThrottle = &store.ConnectionThrottle{}
		}
		ct := lb.ConnectionThrottle
		if in.MaxConnections != nil {
			ct.MaxConnections = in.GetMaxConnections()
		}
		if in.MinConnections != nil {
			ct.MinConnections = in.GetMinConnections()
		}
		if in.MaxConnectionRate != nil {
			ct.MaxConnectionRate = in.GetMaxConnectionRate()
		}
		if in.RateInterval != nil {
			ct.RateInterval = in.GetRateInterval()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteConnectionThrottle removes the throttle; removing none is not an error.
func (s *ConnectionThrottles) DeleteConnectionThrottle(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		lb.ConnectionThrottle = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
