package api

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// lbChild is what the services of a load balancer's parts share.
type lbChild struct {
	store      *store.Store
	auth       Authorizer
	limits     Limits
	nodePolicy NodePolicy
	log        *slog.Logger
}

func newLBChild(st *store.Store, auth Authorizer, cfg Config) lbChild {
	return lbChild{store: st, auth: auth, limits: cfg.Limits, nodePolicy: nodePolicy(cfg), log: cfg.Logger}
}

// read authorizes the caller and loads a live load balancer of the account.
func (s *lbChild) read(ctx context.Context, account string, id uint32) (*store.LoadBalancer, error) {
	if err := s.auth.Authorize(ctx, account); err != nil {
		return nil, err
	}
	lb, err := s.store.GetLoadBalancer(ctx, account, id)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return lb, nil
}

// commitChange is how the services of a load balancer's parts (nodes,
// virtual IPs, health monitor, access list, throttle, persistence, logging,
// error page, caching) change it: see changeLoadBalancer.
func (s *lbChild) commitChange(ctx context.Context, account string, lbID uint32,
	change func(tx *store.Tx, lb *store.LoadBalancer) error) error {
	return changeLoadBalancer(ctx, s.store, s.log, account, lbID, store.StatusPendingUpdate, change)
}

// fail turns a store error into the fault: a missing load balancer is 404.
func (s *lbChild) fail(ctx context.Context, err error) error { return lbFault(ctx, s.log, err) }

// Nodes implements NodeService.
type Nodes struct {
	lbaasv1.UnimplementedNodeServiceServer
	lbChild
}

// NewNodes returns the NodeService.
func NewNodes(st *store.Store, auth Authorizer, cfg Config) *Nodes {
	return &Nodes{lbChild: newLBChild(st, auth, cfg)}
}

// ListNodes lists a load balancer's nodes.
func (s *Nodes) ListNodes(ctx context.Context, req *lbaasv1.ListNodesRequest) (*lbaasv1.ListNodesResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	var v validation
	since := changesSince(&v, req.ChangesSince)
	if err := v.err(); err != nil {
		return nil, err
	}
	nodes := lb.Nodes
	if !since.IsZero() {
		nodes = nil
		for _, n := range lb.Nodes {
			if !n.UpdatedAt.Before(since) {
				nodes = append(nodes, n)
			}
		}
	}
	return &lbaasv1.ListNodesResponse{Nodes: apiNodes(nodes)}, nil
}

// GetNode shows one node.
func (s *Nodes) GetNode(ctx context.Context, req *lbaasv1.GetNodeRequest) (*lbaasv1.NodeResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	n := findNode(lb, req.GetNodeId())
	if n == nil {
		return nil, NotFound("Node not found")
	}
	return &lbaasv1.NodeResponse{Node: apiNode(*n)}, nil
}

func findNode(lb *store.LoadBalancer, id uint32) *store.Node {
	for i := range lb.Nodes {
		if lb.Nodes[i].ID == id {
			return &lb.Nodes[i]
		}
	}
	return nil
}

// AddNodes adds nodes to a load balancer.
func (s *Nodes) AddNodes(ctx context.Context, req *lbaasv1.AddNodesRequest) (*lbaasv1.ListNodesResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	var v validation
	if len(req.GetNodes()) == 0 {
		return nil, BadRequest("nodes: give at least one node")
	}
	var added []store.Node
	for i, in := range req.GetNodes() {
		if len(in.GetMetadata()) > int(s.limits.NodeMeta) {
			return nil, OverLimit(fmt.Sprintf("NODE_META_LIMIT: a node may have at most %d metadata items (nodes[%d])", s.limits.NodeMeta, i))
		}
		added = append(added, nodeFromRequest(ctx, &v, fmt.Sprintf("nodes[%d]", i), in, s.nodePolicy))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		if total := len(lb.Nodes) + len(added); total > int(s.limits.Nodes) {
			return OverLimit(fmt.Sprintf("NODE_LIMIT: a load balancer may have at most %d nodes (it would have %d)", s.limits.Nodes, total))
		}
		var dup validation
		duplicateNodes(&dup, "nodes", lb.Nodes, added)
		if err := dup.err(); err != nil {
			return err
		}
		return tx.AddNodes(lb, added)
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ListNodesResponse{Nodes: apiNodes(added)}, nil
}

// nodeUpdate validates the attributes of a node update.
func nodeUpdate(v *validation, field string, in *lbaasv1.NodeUpdate) {
	if in.Condition == nil && in.Weight == nil && in.Type == nil {
		v.add(field, "give at least one of condition, weight, type")
	}
	if in.Condition != nil && !oneOf(in.GetCondition(), "ENABLED", "DISABLED", "DRAINING") {
		v.add(field+".condition", "must be ENABLED, DISABLED or DRAINING (got %q)", in.GetCondition())
	}
	if in.Type != nil && !oneOf(in.GetType(), "PRIMARY", "SECONDARY") {
		v.add(field+".type", "must be PRIMARY or SECONDARY (got %q)", in.GetType())
	}
	if in.Weight != nil {
		validWeight(v, field+".weight", in.GetWeight())
	}
}

func applyNodeUpdate(n *store.Node, in *lbaasv1.NodeUpdate) {
	if in.Condition != nil {
		n.Condition = in.GetCondition()
	}
	if in.Weight != nil {
		n.Weight = in.GetWeight()
	}
	if in.Type != nil {
		n.Type = in.GetType()
	}
}

// UpdateNode changes a node's condition, weight or type.
func (s *Nodes) UpdateNode(ctx context.Context, req *lbaasv1.UpdateNodeRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	var v validation
	in := req.GetNode()
	if in == nil {
		return nil, BadRequest("node: is required")
	}
	if in.Id != nil {
		v.add("node.id", "is not an updatable attribute")
	}
	nodeUpdate(&v, "node", in)
	if err := v.err(); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		n := findNode(lb, req.GetNodeId())
		if n == nil {
			return NotFound("Node not found")
		}
		applyNodeUpdate(n, in)
		return tx.SaveNode(n)
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// BulkUpdateNodes changes several nodes at once, all or none.
func (s *Nodes) BulkUpdateNodes(ctx context.Context, req *lbaasv1.BulkUpdateNodesRequest) (*lbaasv1.ListNodesResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	var v validation
	if len(req.GetNodes()) == 0 {
		v.add("nodes", "give at least one node")
	}
	seen := map[uint32]bool{}
	for i, in := range req.GetNodes() {
		field := fmt.Sprintf("nodes[%d]", i)
		if in.Id == nil {
			v.add(field+".id", "is required")
		} else if seen[in.GetId()] {
			v.add(field+".id", "node %d appears more than once", in.GetId())
		}
		seen[in.GetId()] = true
		nodeUpdate(&v, field, in)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var updated []store.Node
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		var missing []uint32
		for _, in := range req.GetNodes() {
			n := findNode(lb, in.GetId())
			if n == nil {
				missing = append(missing, in.GetId())
				continue
			}
			applyNodeUpdate(n, in)
			if err := tx.SaveNode(n); err != nil {
				return err
			}
			updated = append(updated, *n)
		}
		if len(missing) > 0 {
			return BadRequest(fmt.Sprintf("Node ids %s are not a part of your loadbalancer", joinIDs(missing)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.ListNodesResponse{Nodes: apiNodes(updated)}, nil
}

// DeleteNode removes one node.
func (s *Nodes) DeleteNode(ctx context.Context, req *lbaasv1.DeleteNodeRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.deleteNodes(ctx, req.GetAccount(), req.GetLoadBalancerId(), []uint32{req.GetNodeId()}, true)
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// BulkDeleteNodes removes up to BATCH_DELETE_LIMIT nodes, all or none.
func (s *Nodes) BulkDeleteNodes(ctx context.Context, req *lbaasv1.BulkDeleteNodesRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	ids, err := batchIDs(req.GetId(), s.limits.BatchDelete)
	if err != nil {
		return nil, err
	}
	if err := s.deleteNodes(ctx, req.GetAccount(), req.GetLoadBalancerId(), ids, false); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *Nodes) deleteNodes(ctx context.Context, account string, lbID uint32, ids []uint32, single bool) error {
	return s.commitChange(ctx, account, lbID, func(tx *store.Tx, lb *store.LoadBalancer) error {
		var missing []uint32
		for _, id := range ids {
			if findNode(lb, id) == nil {
				missing = append(missing, id)
			}
		}
		switch {
		case len(missing) > 0 && single:
			return NotFound("Node not found")
		case len(missing) > 0:
			return BadRequest(fmt.Sprintf("Node ids %s are not a part of your loadbalancer", joinIDs(missing)))
		}
		return tx.DeleteNodes(lb, ids)
	})
}
