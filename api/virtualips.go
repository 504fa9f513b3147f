package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// VirtualIPs implements VirtualIpService.
type VirtualIPs struct {
	lbaasv1.UnimplementedVirtualIpServiceServer
	lbChild
	// lbs creates the load balancers of shared virtual IPs.
	lbs *LoadBalancers
}

// NewVirtualIPs returns the VirtualIpService.
func NewVirtualIPs(st *store.Store, auth Authorizer, cfg Config) *VirtualIPs {
	return &VirtualIPs{lbChild: newLBChild(st, auth, cfg), lbs: NewLoadBalancers(st, auth, cfg)}
}

// ListVirtualIps lists a load balancer's virtual IPs.
func (s *VirtualIPs) ListVirtualIps(ctx context.Context, req *lbaasv1.ListVirtualIpsRequest) (*lbaasv1.ListVirtualIpsResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ListVirtualIpsResponse{VirtualIps: apiVirtualIPs(lb.VirtualIPs)}, nil
}

// AddVirtualIp adds an IPv6 virtual IP: a new one by type, or one of the
// account's existing IPv6 virtual IPs by id.
func (s *VirtualIPs) AddVirtualIp(ctx context.Context, req *lbaasv1.AddVirtualIpRequest) (*lbaasv1.VirtualIp, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if req.LoadBalancer != nil {
		if req.VirtualIp != nil {
			return nil, BadRequest("loadBalancer: give a virtual IP or a load balancer sharing this one's, not both")
		}
		return s.addShared(ctx, req)
	}
	in := req.GetVirtualIp()
	if in == nil {
		return nil, BadRequest("virtualIp: is required")
	}
	var v validation
	want := virtualIPRequest(&v, "virtualIp", in)
	if in.Id == nil && want.version != "IPV6" {
		v.add("virtualIp.ipVersion", "must be set to IPV6")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var added store.VirtualIP
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		vip, err := s.obtain(tx, lb, want)
		if err != nil {
			return err
		}
		if err := checkIPv6Limit(append(lb.VirtualIPs, *vip), s.limits); err != nil {
			return err
		}
		added = *vip
		return tx.AttachVirtualIP(lb, vip)
	})
	if err != nil {
		return nil, err
	}
	return apiVirtualIP(added), nil
}

// addShared creates the load balancer of the request, which shares virtual
// IPs of the load balancer of the path (the reference's "Add shared virtual
// IP version 6"), and answers its IPv6 virtual IP (else its first).
func (s *VirtualIPs) addShared(ctx context.Context, req *lbaasv1.AddVirtualIpRequest) (*lbaasv1.VirtualIp, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	own := map[uint32]bool{}
	for _, v := range lb.VirtualIPs {
		own[v.ID] = true
	}
	var v validation
	want := req.GetLoadBalancer().GetVirtualIps()
	if len(want) == 0 {
		v.add("loadBalancer.virtualIps", "is required: the virtual IPs of load balancer %d to share, by id", lb.ID)
	}
	for i, vip := range want {
		if vip.Id == nil || !own[vip.GetId()] {
			v.add(fmt.Sprintf("loadBalancer.virtualIps[%d].id", i), "must name a virtual IP of load balancer %d", lb.ID)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	out, err := s.lbs.CreateLoadBalancer(ctx, &lbaasv1.CreateLoadBalancerRequest{Account: req.GetAccount(), LoadBalancer: req.GetLoadBalancer()})
	if err != nil {
		return nil, err
	}
	vips := out.GetLoadBalancer().GetVirtualIps()
	for _, vip := range vips {
		if vip.GetIpVersion() == "IPV6" {
			return vip, nil
		}
	}
	return vips[0], nil
}

func (s *VirtualIPs) obtain(tx *store.Tx, lb *store.LoadBalancer, want vipWant) (*store.VirtualIP, error) {
	if want.typ != "" {
		vip, err := tx.AllocateVirtualIP(lb.Account, want.typ, "IPV6")
		switch {
		case errors.Is(err, store.ErrOutOfVirtualIPs):
			return nil, OutOfVirtualIPs()
		case errors.Is(err, store.ErrNoPool):
			return nil, BadRequest(fmt.Sprintf("virtualIp: no %s IPV6 virtual IPs are offered in this region", want.typ))
		}
		return vip, err
	}
	vip, err := tx.VirtualIP(lb.Account, want.id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, BadRequest(fmt.Sprintf("virtualIp.id: virtual IP %d does not exist", want.id))
	}
	if err != nil {
		return nil, err
	}
	if vip.IPVersion != "IPV6" {
		return nil, BadRequest(fmt.Sprintf("virtualIp.id: virtual IP %d is not an IPV6 address", want.id))
	}
	for _, have := range lb.VirtualIPs {
		if have.ID == vip.ID {
			return nil, BadRequest(fmt.Sprintf("virtualIp.id: virtual IP %d is already on this load balancer", want.id))
		}
	}
	return vip, checkPortFree(tx, "virtualIp.id", vip, lb)
}

// DeleteVirtualIp removes one virtual IP; the last one stays.
func (s *VirtualIPs) DeleteVirtualIp(ctx context.Context, req *lbaasv1.DeleteVirtualIpRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if err := s.remove(ctx, req.GetAccount(), req.GetLoadBalancerId(), []uint32{req.GetVirtualIpId()}, true); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// BulkDeleteVirtualIps removes up to BATCH_DELETE_LIMIT virtual IPs, all or none.
func (s *VirtualIPs) BulkDeleteVirtualIps(ctx context.Context, req *lbaasv1.BulkDeleteVirtualIpsRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	ids, err := batchIDs(req.GetId(), s.limits.BatchDelete)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, req.GetAccount(), req.GetLoadBalancerId(), ids, false); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *VirtualIPs) remove(ctx context.Context, account string, lbID uint32, ids []uint32, single bool) error {
	return s.commitChange(ctx, account, lbID, func(tx *store.Tx, lb *store.LoadBalancer) error {
		have := map[uint32]bool{}
		for _, v := range lb.VirtualIPs {
			have[v.ID] = true
		}
		var missing []uint32
		for _, id := range ids {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		switch {
		case len(missing) > 0 && single:
			return NotFound("Virtual IP not found")
		case len(missing) > 0:
			return BadRequest(fmt.Sprintf("id: virtual IPs %s are not a part of your loadbalancer", joinIDs(missing)))
		case len(ids) >= len(lb.VirtualIPs):
			return BadRequest("virtualIps: a load balancer must keep at least one virtual IP; the last one cannot be removed")
		}
		return tx.DetachVirtualIPs(lb, ids)
	})
}
