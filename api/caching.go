package api

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// ContentCachings implements ContentCachingService: content caching on or off.
type ContentCachings struct {
	lbaasv1.UnimplementedContentCachingServiceServer
	lbChild
}

// NewContentCachings returns the ContentCachingService.
func NewContentCachings(st *store.Store, auth Authorizer, cfg Config) *ContentCachings {
	return &ContentCachings{lbChild: newLBChild(st, auth, cfg)}
}

// GetContentCaching shows content caching (always off: see
// ContentCachingRefused).
func (s *ContentCachings) GetContentCaching(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.ContentCachingResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ContentCachingResponse{ContentCaching: &lbaasv1.Enabled{Enabled: proto.Bool(lb.ContentCaching)}}, nil
}

// UpdateContentCaching turns content caching off; turning it on is refused
// (ContentCachingRefused).
func (s *ContentCachings) UpdateContentCaching(ctx context.Context, req *lbaasv1.UpdateContentCachingRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetContentCaching()
	switch {
	case in == nil:
		return nil, BadRequest("contentCaching: is required")
	case in.Enabled == nil:
		return nil, BadRequest("contentCaching.enabled: is required (true or false)")
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		var v validation
		checkContentCaching(&v, "contentCaching.enabled", in.GetEnabled())
		if err := v.err(); err != nil {
			return err
		}
		lb.ContentCaching = in.GetEnabled()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
