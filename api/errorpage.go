package api

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

// DefaultErrorPage is the error page of a load balancer without a custom
// one. It is the page the data plane serves (the translator's), so that
// what GET .../errorpage shows is what clients get.
const DefaultErrorPage = translator.DefaultErrorPage

// MaxErrorPageLength is the longest custom error page, in characters.
const MaxErrorPageLength = 65536

// ErrorPages implements ErrorPageService: the custom error page.
type ErrorPages struct {
	lbaasv1.UnimplementedErrorPageServiceServer
	lbChild
}

// NewErrorPages returns the ErrorPageService.
func NewErrorPages(st *store.Store, auth Authorizer, cfg Config) *ErrorPages {
	return &ErrorPages{lbChild: newLBChild(st, auth, cfg)}
}

// errorPageOf is the page a load balancer serves: its custom page, or the
// default one when it has none or is not (any more) an HTTP load balancer
// (reference: changing to a non-HTTP protocol restores the default page).
func errorPageOf(lb *store.LoadBalancer) string {
	if lb.ErrorPage == "" || lb.Protocol != "HTTP" {
		return DefaultErrorPage
	}
	return lb.ErrorPage
}

// GetErrorPage shows the error page, the default one unless a custom one is set.
func (s *ErrorPages) GetErrorPage(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.ErrorPageResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ErrorPageResponse{Errorpage: &lbaasv1.ErrorPage{Content: proto.String(errorPageOf(lb))}}, nil
}

// UpdateErrorPage sets the custom error page of an HTTP load balancer;
// it replaces any page set before.
func (s *ErrorPages) UpdateErrorPage(ctx context.Context, req *lbaasv1.UpdateErrorPageRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetErrorpage()
	if in == nil {
		return nil, BadRequest("errorpage: is required")
	}
	content := in.GetContent()
	switch n := utf8.RuneCountInString(content); {
	case strings.TrimSpace(content) == "":
		return nil, BadRequest("errorpage.content: is required (the HTML of the page)")
	case n > MaxErrorPageLength:
		return nil, BadRequest(fmt.Sprintf("errorpage.content: must be at most %d characters long (got %d)", MaxErrorPageLength, n))
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		if lb.Protocol != "HTTP" {
			return BadRequest(fmt.Sprintf("errorpage: a custom error page is only available for HTTP load balancers (this one is %s)", lb.Protocol))
		}
		lb.ErrorPage = content
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteErrorPage removes the custom error page: the default one is served again.
func (s *ErrorPages) DeleteErrorPage(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		lb.ErrorPage = ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
