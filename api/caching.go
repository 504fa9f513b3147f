package api

import (
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
