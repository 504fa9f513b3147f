package api

import (
	"context"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

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

func apiNetworkItems(items []store.NetworkItem) []*lbaasv1.NetworkItem {
	out := make([]*lbaasv1.NetworkItem, len(items))
	for i, item := range items {
		out[i] = &lbaasv1.NetworkItem{Id: proto.Uint32(item.ID), Address: proto.String(item.Address), Type: proto.String(item.Type)}
	}
	return out
}

// networkKey is what makes two access list addresses the same network: the
// canonical form, with a single-host prefix (a /32 or /128) equal to its
// address.
func networkKey(address string) string {
	if p, err := netip.ParsePrefix(address); err == nil && p.IsSingleIP() {
		return p.Addr().String()
	}
	return address
}

// GetAccessList shows the access list ({"accessList": []} when empty).
func (s *AccessLists) GetAccessList(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.AccessListResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	return &lbaasv1.AccessListResponse{AccessList: apiNetworkItems(lb.AccessList)}, nil
}

// AppendAccessList adds one or more network items to the access list. An
// address (or network) may appear only once in the list, and the list may
// hold at most ACCESS_LIST_LIMIT items.
func (s *AccessLists) AppendAccessList(ctx context.Context, req *lbaasv1.AppendAccessListRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetAccessList()
	if len(in) == 0 {
		return nil, BadRequest("accessList: give at least one network item")
	}
	if len(in) > int(s.limits.AccessList) {
		return nil, OverLimit(fmt.Sprintf("ACCESS_LIST_LIMIT: an access list may have at most %d items (got %d)", s.limits.AccessList, len(in)))
	}
	var v validation
	added := make([]store.NetworkItem, len(in))
	seen := map[string]bool{}
	for i, item := range in {
		field := fmt.Sprintf("accessList[%d]", i)
		added[i] = networkItem(&v, field, item)
		if item.Address == nil {
			continue
		}
		key := networkKey(added[i].Address)
		if seen[key] {
			v.add(field+".address", "%s appears more than once in the request", added[i].Address)
		}
		seen[key] = true
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		if total := len(lb.AccessList) + len(added); total > int(s.limits.AccessList) {
			return OverLimit(fmt.Sprintf("ACCESS_LIST_LIMIT: an access list may have at most %d items (it would have %d)", s.limits.AccessList, total))
		}
		existing := map[string]uint32{}
		for _, item := range lb.AccessList {
			existing[networkKey(item.Address)] = item.ID
		}
		var dup validation
		for i, item := range added {
			if id, ok := existing[networkKey(item.Address)]; ok {
				dup.add(fmt.Sprintf("accessList[%d].address", i), "%s is already in the access list (network item %d)", item.Address, id)
			}
		}
		if err := dup.err(); err != nil {
			return err
		}
		return tx.AddNetworkItems(lb, added)
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteAccessList deletes the network items named by ?id= (at most
// BATCH_DELETE_LIMIT, all or none), or the whole access list when no id is
// given.
func (s *AccessLists) DeleteAccessList(ctx context.Context, req *lbaasv1.DeleteAccessListRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if len(req.GetId()) == 0 {
		err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
			return tx.ClearAccessList(lb)
		})
		if err != nil {
			return nil, err
		}
		return &emptypb.Empty{}, nil
	}
	ids, err := batchIDs(req.GetId(), s.limits.BatchDelete)
	if err != nil {
		return nil, err
	}
	if err := s.deleteItems(ctx, req.GetAccount(), req.GetLoadBalancerId(), ids, false); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteNetworkItem deletes one network item (404 when the list has no such item).
func (s *AccessLists) DeleteNetworkItem(ctx context.Context, req *lbaasv1.DeleteNetworkItemRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	if err := s.deleteItems(ctx, req.GetAccount(), req.GetLoadBalancerId(), []uint32{req.GetNetworkItemId()}, true); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *AccessLists) deleteItems(ctx context.Context, account string, lbID uint32, ids []uint32, single bool) error {
	return s.commitChange(ctx, account, lbID, func(tx *store.Tx, lb *store.LoadBalancer) error {
		have := map[uint32]bool{}
		for _, item := range lb.AccessList {
			have[item.ID] = true
		}
		var missing []uint32
		for _, id := range ids {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		switch {
		case len(missing) > 0 && single:
			return NotFound("Network item not found")
		case len(missing) > 0:
			return BadRequest(fmt.Sprintf("id: network items %s are not in the access list of load balancer %d", joinIDs(missing), lb.ID))
		}
		return tx.DeleteNetworkItems(lb, ids)
	})
}
