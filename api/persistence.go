package api

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// SessionPersistences implements SessionPersistenceService: session persistence.
type SessionPersistences struct {
	lbaasv1.UnimplementedSessionPersistenceServiceServer
	lbChild
}

// NewSessionPersistences returns the SessionPersistenceService.
func NewSessionPersistences(st *store.Store, auth Authorizer, cfg Config) *SessionPersistences {
	return &SessionPersistences{lbChild: newLBChild(st, auth, cfg)}
}

// GetSessionPersistence shows the persistence mode ({"sessionPersistence": {}} when disabled).
func (s *SessionPersistences) GetSessionPersistence(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.SessionPersistenceResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	out := &lbaasv1.SessionPersistence{}
	if sp := lb.SessionPersistence; sp != nil {
		out.PersistenceType = proto.String(sp.PersistenceType)
	}
	return &lbaasv1.SessionPersistenceResponse{SessionPersistence: out}, nil
}

// UpdateSessionPersistence enables session persistence, or changes its
// mode: HTTP_COOKIE needs an HTTP load balancer, SOURCE_IP an HTTP or HTTPS
// one, SSL_ID an HTTPS one.
func (s *SessionPersistences) UpdateSessionPersistence(ctx context.Context, req *lbaasv1.UpdateSessionPersistenceRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetSessionPersistence()
	switch {
	case in == nil:
		return nil, BadRequest("sessionPersistence: is required")
	case in.PersistenceType == nil:
		return nil, BadRequest("sessionPersistence.persistenceType: is required (HTTP_COOKIE, SOURCE_IP or SSL_ID)")
	case !oneOf(in.GetPersistenceType(), "HTTP_COOKIE", "SOURCE_IP", "SSL_ID"):
		return nil, BadRequest(fmt.Sprintf("sessionPersistence.persistenceType: must be HTTP_COOKIE, SOURCE_IP or SSL_ID (got %q)", in.GetPersistenceType()))
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		var v validation
		sp := sessionPersistence(&v, "sessionPersistence", lb.Protocol, in)
		if err := v.err(); err != nil {
			return err
		}
		lb.SessionPersistence = sp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteSessionPersistence disables session persistence; when it is already
// disabled the answer is 422 unprocessableEntity (reference).
func (s *SessionPersistences) DeleteSessionPersistence(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		if lb.SessionPersistence == nil {
			return Unprocessable(fmt.Sprintf("Session persistence is not enabled on load balancer '%d'.", lb.ID))
		}
		lb.SessionPersistence = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
