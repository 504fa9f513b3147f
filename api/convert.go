package api

import (
	"time"

	"google.golang.org/protobuf/proto"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// timeFormat is the reference's date format, in UTC.
const timeFormat = "2006-01-02T15:04:05Z"

func apiTime(t time.Time) *lbaasv1.Time {
	return &lbaasv1.Time{Time: t.UTC().Format(timeFormat)}
}

func apiVirtualIP(v store.VirtualIP) *lbaasv1.VirtualIp {
	return &lbaasv1.VirtualIp{
		Id: proto.Uint32(v.ID), Address: proto.String(v.Address),
		Type: proto.String(v.Type), IpVersion: proto.String(v.IPVersion),
	}
}

func apiVirtualIPs(vips []store.VirtualIP) []*lbaasv1.VirtualIp {
	out := make([]*lbaasv1.VirtualIp, len(vips))
	for i, v := range vips {
		out[i] = apiVirtualIP(v)
	}
	return out
}

func apiNode(n store.Node) *lbaasv1.Node {
	out := &lbaasv1.Node{
		Id: proto.Uint32(n.ID), Address: proto.String(n.Address), Port: proto.Uint32(n.Port),
		Condition: proto.String(n.Condition), Status: proto.String(nodeStatus(n)),
		Weight: proto.Uint32(n.Weight), Type: proto.String(n.Type),
	}
	for _, m := range n.Metadata {
		out.Metadata = append(out.Metadata, &lbaasv1.Meta{Id: proto.Uint32(m.ID), Key: proto.String(m.Key), Value: proto.String(m.Value)})
	}
	return out
}

func apiNodes(nodes []store.Node) []*lbaasv1.Node {
	out := make([]*lbaasv1.Node, len(nodes))
	for i, n := range nodes {
		out[i] = apiNode(n)
	}
	return out
}

// apiListedLoadBalancer is the short form lists show.
func apiListedLoadBalancer(lb store.ListedLoadBalancer) *lbaasv1.LoadBalancer {
	return &lbaasv1.LoadBalancer{
		Id: proto.Uint32(lb.ID), Name: proto.String(lb.Name), Protocol: proto.String(lb.Protocol),
		Port: proto.Uint32(lb.Port), Algorithm: proto.String(lb.Algorithm), Status: proto.String(lb.Status),
		Timeout: proto.Uint32(lb.Timeout), NodeCount: proto.Uint32(lb.NodeCount),
		VirtualIps: apiVirtualIPs(lb.VirtualIPs), Created: apiTime(lb.CreatedAt), Updated: apiTime(lb.UpdatedAt),
	}
}

// apiLoadBalancer is the full form details and creates show.
func (s *LoadBalancers) apiLoadBalancer(lb *store.LoadBalancer) *lbaasv1.LoadBalancer {
	out := &lbaasv1.LoadBalancer{
		Id: proto.Uint32(lb.ID), Name: proto.String(lb.Name), Protocol: proto.String(lb.Protocol),
		Port: proto.Uint32(lb.Port), Algorithm: proto.String(lb.Algorithm), Status: proto.String(lb.Status),
		Timeout: proto.Uint32(lb.Timeout), HalfClosed: proto.Bool(lb.HalfClosed),
		HttpsRedirect: proto.Bool(lb.HTTPSRedirect), NodeCount: proto.Uint32(uint32(len(lb.Nodes))),
		VirtualIps: apiVirtualIPs(lb.VirtualIPs), Nodes: apiNodes(lb.Nodes),
		Cluster: &lbaasv1.Cluster{Name: proto.String(lb.Fleet)},
		Created: apiTime(lb.CreatedAt), Updated: apiTime(lb.UpdatedAt),
		SourceAddresses:   s.sourceAddresses,
		ConnectionLogging: &lbaasv1.Enabled{Enabled: proto.Bool(lb.ConnectionLogging)},
		ContentCaching:    &lbaasv1.Enabled{Enabled: proto.Bool(lb.ContentCaching)},
	}
	if lb.StatusDescription != "" {
		out.StatusDescription = proto.String(lb.StatusDescription)
	}
	out.NodesStatus = nodesStatus(lb.Nodes)
	out.CheckPassive = proto.Bool(lb.CheckPassive)
	out.ClientKeepAliveTimeout = proto.Uint32(lb.ClientKeepAliveTimeout)
	out.BackendKeepAlive = proto.Bool(lb.BackendKeepAlive)
	if sp := lb.SessionPersistence; sp != nil {
		out.SessionPersistence = &lbaasv1.SessionPersistence{PersistenceType: proto.String(sp.PersistenceType)}
	}
	if ct := lb.ConnectionThrottle; ct != nil {
		out.ConnectionThrottle = &lbaasv1.ConnectionThrottle{
			MaxConnections: proto.Uint32(ct.MaxConnections), MinConnections: proto.Uint32(ct.MinConnections),
			MaxConnectionRate: proto.Uint32(ct.MaxConnectionRate), RateInterval: proto.Uint32(ct.RateInterval),
		}
	}
	if hm := lb.HealthMonitor; hm != nil {
		out.HealthMonitor = apiHealthMonitor(hm)
	}
	for _, item := range lb.AccessList {
		out.AccessList = append(out.AccessList, &lbaasv1.NetworkItem{
			Id: proto.Uint32(item.ID), Address: proto.String(item.Address), Type: proto.String(item.Type)})
	}
	for _, m := range lb.Metadata {
		out.Metadata = append(out.Metadata, &lbaasv1.Meta{Id: proto.Uint32(m.ID), Key: proto.String(m.Key), Value: proto.String(m.Value)})
	}
	return out
}

// nodeStatus is a node's status as shown: a DISABLED node takes no
// traffic and is OFFLINE whatever its health; the others show their
// measured health.
func nodeStatus(n store.Node) string {
	if n.Condition == ConditionDisabled {
		return NodeOffline
	}
	return n.Status
}

// nodesStatus counts nodes in rotation (up) and out of it (down), by
// measured health and condition (Linode's nodes_status).
func nodesStatus(nodes []store.Node) *lbaasv1.NodesStatus {
	var up, down uint32
	for _, n := range nodes {
		if nodeStatus(n) == NodeOffline {
			down++
		} else {
			up++
		}
	}
	return &lbaasv1.NodesStatus{Up: proto.Uint32(up), Down: proto.Uint32(down)}
}

// Node statuses, measured by health monitoring.
const (
	NodeOnline  = "ONLINE"
	NodeOffline = "OFFLINE"
)

// ConditionDisabled is the condition of a node taken out of rotation by
// its owner.
const ConditionDisabled = "DISABLED"

func apiHealthMonitor(hm *store.HealthMonitor) *lbaasv1.HealthMonitor {
	out := &lbaasv1.HealthMonitor{
		Type: proto.String(hm.Type), Delay: proto.Uint32(hm.Delay), Timeout: proto.Uint32(hm.Timeout),
		AttemptsBeforeDeactivation: proto.Uint32(hm.AttemptsBeforeDeactivation),
	}
	if hm.Type == "HTTP" || hm.Type == "HTTPS" {
		out.Path = proto.String(hm.Path)
		out.StatusRegex = proto.String(hm.StatusRegex)
		out.BodyRegex = proto.String(hm.BodyRegex)
		if hm.HostHeader != "" {
			out.HostHeader = proto.String(hm.HostHeader)
		}
		if hm.CheckBody != "" {
			out.CheckBody = proto.String(hm.CheckBody)
		}
	}
	return out
}
