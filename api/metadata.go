package api

import (
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// Metadata implements MetadataService: metadata items of load balancers and nodes.
type Metadata struct {
	lbaasv1.UnimplementedMetadataServiceServer
	lbChild
}

// NewMetadata returns the MetadataService.
func NewMetadata(st *store.Store, auth Authorizer, cfg Config) *Metadata {
	return &Metadata{lbChild: newLBChild(st, auth, cfg)}
}
