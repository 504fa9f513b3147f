package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// ErrorPages implements ErrorPageService: the custom error page.
type ErrorPages struct {
	lbaasv1.UnimplementedErrorPageServiceServer
	lbChild
}

// NewErrorPages returns the ErrorPageService.
func NewErrorPages(st *store.Store, auth Authorizer, cfg Config) *ErrorPages {
	return &ErrorPages{lbChild: newLBChild(st, auth, cfg)}
}
