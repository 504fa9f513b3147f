package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// AccessLists implements AccessListService: the access list of a load balancer.
type AccessLists struct {
	lbaasv1.UnimplementedAccessListServiceServer
	lbChild
}

// NewAccessLists returns the AccessListService.
func NewAccessLists(st *store.Store, auth Authorizer, cfg Config) *AccessLists {
	return &AccessLists{lbChild: newLBChild(st, auth, cfg)}
}
