package api

import (
	"context"
	"strings"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// sourceAddressLists lists the configured source addresses the way the
// regional and cluster source address resources show them. This
// deployment has one set for the region, so both show the same.
func sourceAddressLists(sa *lbaasv1.SourceAddresses) *lbaasv1.SourceAddressLists {
	out := &lbaasv1.SourceAddressLists{}
	add := func(list *[]string, v *string) {
		if v != nil && *v != "" {
			*list = append(*list, strings.SplitN(*v, "/", 2)[0])
		}
	}
	add(&out.Ipv4Publicnets, sa.Ipv4Public)
	add(&out.Ipv4Servicenets, sa.Ipv4Servicenet)
	add(&out.Ipv6Publicnets, sa.Ipv6Public)
	add(&out.Ipv6Servicenets, sa.Ipv6Servicenet)
	return out
}

// GetRegionalSourceAddresses shows the addresses traffic from this
// region's load balancers comes from.
func (c *Catalog) GetRegionalSourceAddresses(ctx context.Context, req *lbaasv1.GetRegionalSourceAddressesRequest) (*lbaasv1.GetRegionalSourceAddressesResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return &lbaasv1.GetRegionalSourceAddressesResponse{RegionalSourceAddresses: sourceAddressLists(c.sources)}, nil
}

// GetClusterSourceAddresses shows the addresses traffic from one load
// balancer comes from.
func (s *LoadBalancers) GetClusterSourceAddresses(ctx context.Context, req *lbaasv1.GetClusterSourceAddressesRequest) (*lbaasv1.GetClusterSourceAddressesResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if _, err := s.store.GetLoadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, s.lbError(ctx, err)
	}
	return &lbaasv1.GetClusterSourceAddressesResponse{ClusterSourceAddresses: sourceAddressLists(s.sourceAddresses)}, nil
}
