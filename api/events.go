package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// NodeEvents implements NodeEventService: the node service events feed.
type NodeEvents struct {
	lbaasv1.UnimplementedNodeEventServiceServer
	lbChild
}

// NewNodeEvents returns the NodeEventService.
func NewNodeEvents(st *store.Store, auth Authorizer, cfg Config) *NodeEvents {
	return &NodeEvents{lbChild: newLBChild(st, auth, cfg)}
}
