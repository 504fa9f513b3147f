package api

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

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

// eventAuthor is the author the feed names for events the service writes.
const eventAuthor = "lbaas"

// ListNodeEvents lists one page of a load balancer's node service events,
// oldest first as in the reference, with a "next" link when there are more.
func (s *NodeEvents) ListNodeEvents(ctx context.Context, req *lbaasv1.ListNodeEventsRequest) (*lbaasv1.ListNodeEventsResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	page := store.EventPage{LoadBalancerID: req.GetLoadBalancerId(), Marker: req.GetMarker(), Limit: defaultPageSize}
	var v validation
	if req.Limit != nil {
		if req.GetLimit() < 1 {
			v.add("limit", "must be a positive number (got %d)", req.GetLimit())
		} else if req.GetLimit() < defaultPageSize {
			page.Limit = int(req.GetLimit())
		}
	}
	if req.Offset != nil {
		if req.GetOffset() < 0 {
			v.add("offset", "must not be negative (got %d)", req.GetOffset())
		}
		page.Offset = int(req.GetOffset())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := s.store.GetLoadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	limit := page.Limit
	page.Limit++ // one more tells whether there is a next page
	events, err := s.store.ListNodeEvents(ctx, page)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &lbaasv1.ListNodeEventsResponse{}
	if len(events) > limit {
		next := events[limit]
		events = events[:limit]
		out.Links = append(out.Links, &lbaasv1.Link{
			Rel: proto.String("next"),
			Href: proto.String(fmt.Sprintf("/v1.0/%s/loadbalancers/%d/nodes/events?limit=%d&marker=%d",
				req.GetAccount(), req.GetLoadBalancerId(), limit, next.ID)),
		})
	}
	for _, e := range events {
		out.NodeServiceEvents = append(out.NodeServiceEvents, apiNodeEvent(e))
	}
	return out, nil
}

func apiNodeEvent(e store.NodeEvent) *lbaasv1.NodeServiceEvent {
	return &lbaasv1.NodeServiceEvent{
		Id: proto.Uint32(e.ID), NodeId: proto.Uint32(e.NodeID), LoadbalancerId: proto.Uint32(e.LoadBalancerID),
		AccountId: accountID(e.Account), CallbackHost: proto.String(e.CallbackHost), Type: proto.String(e.Type), Category: proto.String(e.Category),
		Severity: proto.String(e.Severity), Title: proto.String(e.Title), Description: proto.String(e.Description),
		DetailedMessage: proto.String(e.DetailedMessage), Author: proto.String(eventAuthor),
		RelativeUri: proto.String(fmt.Sprintf("/%s/loadbalancers/%d/nodes/%d/events", e.Account, e.LoadBalancerID, e.NodeID)),
		Created:     proto.String(e.CreatedAt.UTC().Format(timeFormat)),
	}
}

// accountID is the account as the reference shows it in events: a number
// when it is one.
func accountID(account string) *structpb.Value {
	if n, err := strconv.ParseUint(account, 10, 53); err == nil {
		return structpb.NewNumberValue(float64(n))
	}
	return structpb.NewStringValue(account)
}
