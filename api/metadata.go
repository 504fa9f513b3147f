package api

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// Metadata implements MetadataService: metadata items of load balancers and nodes.
//
// Metadata is the client's own key/value notes, not data-plane
// configuration: changing it leaves the load balancer's status (and data
// plane) alone, and is allowed in every status but DELETED. Each change
// still runs in one store transaction, so limit and unique-key checks are
// race-free.
type Metadata struct {
	lbaasv1.UnimplementedMetadataServiceServer
	lbChild
}

// NewMetadata returns the MetadataService.
func NewMetadata(st *store.Store, auth Authorizer, cfg Config) *Metadata {
	return &Metadata{lbChild: newLBChild(st, auth, cfg)}
}

// ListLoadBalancerMetadata lists a load balancer's metadata items.
func (s *Metadata) ListLoadBalancerMetadata(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.MetadataResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.list(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()})
}

// AddLoadBalancerMetadata adds metadata items to a load balancer.
func (s *Metadata) AddLoadBalancerMetadata(ctx context.Context, req *lbaasv1.AddMetadataRequest) (*lbaasv1.MetadataResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.add(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()}, req)
}

// DeleteLoadBalancerMetadata removes up to BATCH_DELETE_LIMIT metadata items
// of a load balancer, all or none.
func (s *Metadata) DeleteLoadBalancerMetadata(ctx context.Context, req *lbaasv1.DeleteMetadataRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.bulkDelete(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()}, req.GetId())
}

// GetLoadBalancerMeta shows one metadata item of a load balancer.
func (s *Metadata) GetLoadBalancerMeta(ctx context.Context, req *lbaasv1.MetaRef) (*lbaasv1.MetaResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.get(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()}, req.GetMetaId())
}

// UpdateLoadBalancerMeta changes the value of a load balancer's metadata item.
func (s *Metadata) UpdateLoadBalancerMeta(ctx context.Context, req *lbaasv1.UpdateMetaRequest) (*lbaasv1.MetaResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.update(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()}, req)
}

// DeleteLoadBalancerMeta removes one metadata item of a load balancer.
func (s *Metadata) DeleteLoadBalancerMeta(ctx context.Context, req *lbaasv1.MetaRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.deleteOne(ctx, metaScope{account: req.GetAccount(), lbID: req.GetLoadBalancerId()}, req.GetMetaId())
}

// ListNodeMetadata lists a node's metadata items.
func (s *Metadata) ListNodeMetadata(ctx context.Context, req *lbaasv1.NodeRef) (*lbaasv1.MetadataResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.list(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()))
}

// AddNodeMetadata adds metadata items to a node.
func (s *Metadata) AddNodeMetadata(ctx context.Context, req *lbaasv1.AddMetadataRequest) (*lbaasv1.MetadataResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.add(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()), req)
}

// DeleteNodeMetadata removes up to BATCH_DELETE_LIMIT metadata items of a
// node, all or none.
func (s *Metadata) DeleteNodeMetadata(ctx context.Context, req *lbaasv1.DeleteMetadataRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.bulkDelete(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()), req.GetId())
}

// GetNodeMeta shows one metadata item of a node.
func (s *Metadata) GetNodeMeta(ctx context.Context, req *lbaasv1.MetaRef) (*lbaasv1.MetaResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.get(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()), req.GetMetaId())
}

// UpdateNodeMeta changes the value of a node's metadata item.
func (s *Metadata) UpdateNodeMeta(ctx context.Context, req *lbaasv1.UpdateMetaRequest) (*lbaasv1.MetaResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.update(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()), req)
}

// DeleteNodeMeta removes one metadata item of a node.
func (s *Metadata) DeleteNodeMeta(ctx context.Context, req *lbaasv1.MetaRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return s.deleteOne(ctx, nodeScope(req.GetAccount(), req.GetLoadBalancerId(), req.GetNodeId()), req.GetMetaId())
}

// metaScope says whose metadata a request addresses: a load balancer's,
// or (node set) one of its nodes'.
type metaScope struct {
	account string
	lbID    uint32
	node    bool
	nodeID  uint32
}

func nodeScope(account string, lbID, nodeID uint32) metaScope {
	return metaScope{account: account, lbID: lbID, node: true, nodeID: nodeID}
}

// limit returns the absolute limit on the scope's items and its name.
func (s *Metadata) limit(sc metaScope) (uint32, string, string) {
	if sc.node {
		return s.limits.NodeMeta, "NODE_META_LIMIT", "node"
	}
	return s.limits.LoadBalancerMeta, "LOADBALANCER_META_LIMIT", "load balancer"
}

// metaOwner is the loaded load balancer or node that owns metadata items,
// with the store operations on them.
type metaOwner struct {
	what   string // "load balancer" or "node"
	items  []*lbaasv1.Meta
	add    func(tx *store.Tx, items []*lbaasv1.Meta) ([]*lbaasv1.Meta, error)
	set    func(tx *store.Tx, id uint32, value string) (*lbaasv1.Meta, error)
	remove func(tx *store.Tx, ids []uint32) error
}

func (o *metaOwner) find(id uint32) *lbaasv1.Meta {
	for _, m := range o.items {
		if m.GetId() == id {
			return m
		}
	}
	return nil
}

func metaNotFound() error { return NotFound("Metadata item not found") }

func metaItem(id uint32, key, value string) *lbaasv1.Meta {
	return &lbaasv1.Meta{Id: proto.Uint32(id), Key: proto.String(key), Value: proto.String(value)}
}

func lbMetaItems(items []store.LoadBalancerMeta) []*lbaasv1.Meta {
	out := make([]*lbaasv1.Meta, len(items))
	for i, m := range items {
		out[i] = metaItem(m.ID, m.Key, m.Value)
	}
	return out
}

func nodeMetaItems(items []store.NodeMeta) []*lbaasv1.Meta {
	out := make([]*lbaasv1.Meta, len(items))
	for i, m := range items {
		out[i] = metaItem(m.ID, m.Key, m.Value)
	}
	return out
}

// owner finds the owner of the scope's metadata in lb (loaded with its
// nodes and metadata): a node that is not lb's is not found.
func owner(lb *store.LoadBalancer, sc metaScope) (*metaOwner, error) {
	if !sc.node {
		return &metaOwner{
			what:  "load balancer",
			items: lbMetaItems(lb.Metadata),
			add: func(tx *store.Tx, in []*lbaasv1.Meta) ([]*lbaasv1.Meta, error) {
				items := make([]store.LoadBalancerMeta, len(in))
				for i, m := range in {
					items[i] = store.LoadBalancerMeta{Key: m.GetKey(), Value: m.GetValue()}
				}
				if err := tx.AddLoadBalancerMeta(lb, items); err != nil {
					return nil, err
				}
				return lbMetaItems(items), nil
			},
			set: func(tx *store.Tx, id uint32, value string) (*lbaasv1.Meta, error) {
				for i := range lb.Metadata {
					if m := &lb.Metadata[i]; m.ID == id {
						m.Value = value
						return metaItem(m.ID, m.Key, m.Value), tx.SaveLoadBalancerMeta(m)
					}
				}
				return nil, metaNotFound()
			},
			remove: func(tx *store.Tx, ids []uint32) error { return tx.DeleteLoadBalancerMeta(lb, ids) },
		}, nil
	}
	n := findNode(lb, sc.nodeID)
	if n == nil {
		return nil, NotFound("Node not found")
	}
	return &metaOwner{
		what:  "node",
		items: nodeMetaItems(n.Metadata),
		add: func(tx *store.Tx, in []*lbaasv1.Meta) ([]*lbaasv1.Meta, error) {
			items := make([]store.NodeMeta, len(in))
			for i, m := range in {
				items[i] = store.NodeMeta{Key: m.GetKey(), Value: m.GetValue()}
			}
			if err := tx.AddNodeMeta(n, items); err != nil {
				return nil, err
			}
			return nodeMetaItems(items), nil
		},
		set: func(tx *store.Tx, id uint32, value string) (*lbaasv1.Meta, error) {
			for i := range n.Metadata {
				if m := &n.Metadata[i]; m.ID == id {
					m.Value = value
					return metaItem(m.ID, m.Key, m.Value), tx.SaveNodeMeta(m)
				}
			}
			return nil, metaNotFound()
		},
		remove: func(tx *store.Tx, ids []uint32) error { return tx.DeleteNodeMeta(n, ids) },
	}, nil
}

// read loads the scope's owner outside a transaction.
func (s *Metadata) read(ctx context.Context, sc metaScope) (*metaOwner, error) {
	lb, err := s.store.GetLoadBalancer(ctx, sc.account, sc.lbID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return owner(lb, sc)
}

// write runs fn on the scope's owner in one store transaction. It does not
// save the load balancer: metadata is not data-plane configuration, so
// the status stays and no change is recorded for the data plane.
func (s *Metadata) write(ctx context.Context, sc metaScope, fn func(*store.Tx, *metaOwner) error) error {
	_, err := s.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.LockAccount(sc.account); err != nil {
			return err
		}
		lb, err := tx.LoadBalancer(sc.account, sc.lbID)
		if err != nil {
			return err
		}
		o, err := owner(lb, sc)
		if err != nil {
			return err
		}
		return fn(tx, o)
	})
	if err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

func (s *Metadata) list(ctx context.Context, sc metaScope) (*lbaasv1.MetadataResponse, error) {
	o, err := s.read(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &lbaasv1.MetadataResponse{Metadata: o.items}, nil
}

func (s *Metadata) get(ctx context.Context, sc metaScope, id uint32) (*lbaasv1.MetaResponse, error) {
	o, err := s.read(ctx, sc)
	if err != nil {
		return nil, err
	}
	m := o.find(id)
	if m == nil {
		return nil, metaNotFound()
	}
	return &lbaasv1.MetaResponse{Meta: m}, nil
}

// addedItems validates the items of an add request, given as one item
// ("meta", the reference's example) or a list ("metadata", what clients
// send). It returns them with the field name of each.
func (s *Metadata) addedItems(sc metaScope, req *lbaasv1.AddMetadataRequest) ([]*lbaasv1.Meta, []string, error) {
	var items []*lbaasv1.Meta
	var fields []string
	switch {
	case req.Meta != nil && len(req.GetMetadata()) > 0:
		return nil, nil, BadRequest("meta: give either meta (one item) or metadata (a list of items), not both")
	case req.Meta != nil:
		items, fields = []*lbaasv1.Meta{req.GetMeta()}, []string{"meta"}
	case len(req.GetMetadata()) > 0:
		items = req.GetMetadata()
		for i := range items {
			fields = append(fields, fmt.Sprintf("metadata[%d]", i))
		}
	default:
		return nil, nil, BadRequest(`metadata: give at least one item, as {"meta":{"key":...,"value":...}} or {"metadata":[{"key":...,"value":...}]}`)
	}
	limit, name, what := s.limit(sc)
	if len(items) > int(limit) {
		return nil, nil, OverLimit(fmt.Sprintf("%s: a %s may have at most %d metadata items (got %d)", name, what, limit, len(items)))
	}
	var v validation
	for i, m := range items {
		if m == nil {
			v.add(fields[i], "is required")
			continue
		}
		validMeta(&v, fields[i], m)
	}
	validUniqueKeys(&v, "metadata", items)
	return items, fields, v.err()
}

func (s *Metadata) add(ctx context.Context, sc metaScope, req *lbaasv1.AddMetadataRequest) (*lbaasv1.MetadataResponse, error) {
	items, fields, err := s.addedItems(sc, req)
	if err != nil {
		return nil, err
	}
	limit, name, what := s.limit(sc)
	var created []*lbaasv1.Meta
	err = s.write(ctx, sc, func(tx *store.Tx, o *metaOwner) error {
		if total := len(o.items) + len(items); total > int(limit) {
			return OverLimit(fmt.Sprintf("%s: a %s may have at most %d metadata items (it would have %d)", name, what, limit, total))
		}
		existing := map[string]uint32{}
		for _, m := range o.items {
			existing[m.GetKey()] = m.GetId()
		}
		var v validation
		for i, m := range items {
			if id, ok := existing[m.GetKey()]; ok {
				v.add(fields[i]+".key", "%q is already the key of metadata item %d of this %s", m.GetKey(), id, o.what)
			}
		}
		if err := v.err(); err != nil {
			return err
		}
		var err error
		created, err = o.add(tx, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.MetadataResponse{Metadata: created}, nil
}

// validMetaValue checks a metadata value: 1 to 256 UTF-8 characters.
func validMetaValue(v *validation, field string, s *string) {
	switch {
	case s == nil || *s == "":
		v.add(field, "is required")
	case !utf8.ValidString(*s):
		v.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(*s) > maxMetaLength:
		v.add(field, "must be at most %d characters long", maxMetaLength)
	}
}

func (s *Metadata) update(ctx context.Context, sc metaScope, req *lbaasv1.UpdateMetaRequest) (*lbaasv1.MetaResponse, error) {
	in := req.GetMeta()
	if in == nil {
		return nil, BadRequest(`meta: is required, as {"meta":{"value":...}}`)
	}
	var v validation
	if in.Id != nil {
		v.add("meta.id", "is immutable: only the value of a metadata item can be changed")
	}
	if in.Key != nil {
		v.add("meta.key", "is immutable: only the value of a metadata item can be changed")
	}
	validMetaValue(&v, "meta.value", in.Value)
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *lbaasv1.Meta
	err := s.write(ctx, sc, func(tx *store.Tx, o *metaOwner) error {
		var err error
		out, err = o.set(tx, req.GetMetaId(), in.GetValue())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.MetaResponse{Meta: out}, nil
}

func (s *Metadata) bulkDelete(ctx context.Context, sc metaScope, ids []uint32) (*emptypb.Empty, error) {
	ids, err := batchIDs(ids, s.limits.BatchDelete)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, sc, func(tx *store.Tx, o *metaOwner) error {
		var missing []uint32
		for _, id := range ids {
			if o.find(id) == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return BadRequest(fmt.Sprintf("Metadata ids %s are not a part of your %s", joinIDs(missing), o.what))
		}
		return o.remove(tx, ids)
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *Metadata) deleteOne(ctx context.Context, sc metaScope, id uint32) (*emptypb.Empty, error) {
	err := s.write(ctx, sc, func(tx *store.Tx, o *metaOwner) error {
		if o.find(id) == nil {
			return metaNotFound()
		}
		return o.remove(tx, []uint32{id})
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
