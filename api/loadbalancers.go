package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/ratelimit"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
)

// Config is what the services need to know about this deployment.
type Config struct {
	Limits Limits
	// Fleet is the proxy fleet new load balancers are placed on.
	Fleet           string
	SourceAddresses *lbaasv1.SourceAddresses
	Logger          *slog.Logger
	// AllowedDomains are the domains whose names nodes may use as their
	// address (a name must equal one or end with "." and one); empty
	// allows any domain name. GET /loadbalancers/alloweddomains lists them.
	AllowedDomains []string
	// ResolveNode checks a node's address (resolving a name) at
	// validation: an address or name that is or resolves to a denied
	// address (a *netguard.DeniedError) is refused. Nil allows any.
	ResolveNode func(ctx context.Context, address string) ([]netip.Addr, error)
	// RateLimits are the rate limits GET /limits shows (nil: rate
	// limiting is off).
	RateLimits *ratelimit.Limiter
	// Secrets seals the private keys of SSL termination (nil: SSL
	// termination cannot be configured, 503).
	Secrets *secrets.Keyring
	// LoadStats are the load reports aggregated per load balancer: this
	// replica's part of GET /loadbalancers/{id}/stats, the usage it has
	// not written yet and its live gauges (nil: none).
	LoadStats *loadstats.Service
	// UsageReplica names this replica's usage rows (usage.Recorder's
	// Replica): /stats adds its live gauges instead of its written ones.
	UsageReplica string
	// UsageRetention is how long usage is kept, the longest window usage
	// reports may ask for (usage.DefaultRetention when 0).
	UsageRetention time.Duration
	// Now is the clock of usage reports (time.Now when nil).
	Now func() time.Time
}

func nodePolicy(cfg Config) NodePolicy {
	return NodePolicy{AllowedDomains: normalDomains(cfg.AllowedDomains), Resolve: cfg.ResolveNode}
}

// LoadBalancers implements LoadBalancerService.
type LoadBalancers struct {
	lbaasv1.UnimplementedLoadBalancerServiceServer
	store           *store.Store
	auth            Authorizer
	limits          Limits
	fleet           string
	sourceAddresses *lbaasv1.SourceAddresses
	nodePolicy      NodePolicy
	loadStats       *loadstats.Service
	replica         string
	now             func() time.Time
	log             *slog.Logger
}

// NewLoadBalancers returns the LoadBalancerService.
func NewLoadBalancers(st *store.Store, auth Authorizer, cfg Config) *LoadBalancers {
	return &LoadBalancers{
		store: st, auth: auth, limits: cfg.Limits, fleet: cfg.Fleet,
		sourceAddresses: cfg.SourceAddresses, nodePolicy: nodePolicy(cfg), loadStats: cfg.LoadStats,
		replica: cfg.UsageReplica, now: cfg.Now, log: cfg.Logger,
	}
}

const defaultPageSize = 100

// ListLoadBalancers lists one page of the account's load balancers.
func (s *LoadBalancers) ListLoadBalancers(ctx context.Context, req *lbaasv1.ListLoadBalancersRequest) (*lbaasv1.ListLoadBalancersResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	f := store.ListFilter{
		Account: req.GetAccount(), Name: req.GetName(), NodeAddress: req.GetNodeaddress(),
		Marker: req.GetMarker(), Limit: defaultPageSize,
	}
	var v validation
	if req.Limit != nil {
		if req.GetLimit() < 1 {
			v.add("limit", "must be a positive number (got %d)", req.GetLimit())
		} else if req.GetLimit() < defaultPageSize {
			f.Limit = int(req.GetLimit())
		}
	}
	if req.Offset != nil {
		if req.GetOffset() < 0 {
			v.add("offset", "must not be negative (got %d)", req.GetOffset())
		}
		f.Offset = int(req.GetOffset())
	}
	if req.Status != nil {
		f.Status = req.GetStatus()
		if !oneOf(f.Status, store.StatusActive, store.StatusBuild, store.StatusPendingUpdate,
			store.StatusPendingDelete, store.StatusDeleted, store.StatusError, store.StatusSuspended) {
			v.add("status", "%q is not a load balancer status", f.Status)
		}
	}
	f.ChangesSince = changesSince(&v, req.ChangesSince)
	if err := v.err(); err != nil {
		return nil, err
	}
	lbs, err := s.store.ListLoadBalancers(ctx, f)
	if err != nil {
		return nil, storeError(ctx, s.log, err)
	}
	out := &lbaasv1.ListLoadBalancersResponse{LoadBalancers: make([]*lbaasv1.LoadBalancer, len(lbs))}
	for i, lb := range lbs {
		out.LoadBalancers[i] = apiListedLoadBalancer(lb)
	}
	return out, nil
}

// ParseTime accepts the ISO 8601 forms the reference shows, with or
// without a colon in the zone offset.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// GetLoadBalancer shows one load balancer.
func (s *LoadBalancers) GetLoadBalancer(ctx context.Context, req *lbaasv1.GetLoadBalancerRequest) (*lbaasv1.LoadBalancerResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	lb, err := s.store.GetLoadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, s.lbError(ctx, err)
	}
	return &lbaasv1.LoadBalancerResponse{LoadBalancer: s.apiLoadBalancer(lb)}, nil
}

func (s *LoadBalancers) lbError(ctx context.Context, err error) error {
	return lbFault(ctx, s.log, err)
}

// CreateLoadBalancer validates and stores a new load balancer in BUILD.
func (s *LoadBalancers) CreateLoadBalancer(ctx context.Context, req *lbaasv1.CreateLoadBalancerRequest) (*lbaasv1.LoadBalancerResponse, error) {
	account := req.GetAccount()
	if err := s.auth.Authorize(ctx, account); err != nil {
		return nil, err
	}
	in := req.GetLoadBalancer()
	if in == nil {
		return nil, BadRequest("loadBalancer: is required")
	}
	lb, vips, err := s.newLoadBalancer(ctx, account, in)
	if err != nil {
		return nil, err
	}
	_, err = s.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.LockAccount(account); err != nil {
			return err
		}
		n, err := tx.CountLoadBalancers(account)
		if err != nil {
			return err
		}
		if n >= int64(s.limits.LoadBalancers) {
			return OverLimit(fmt.Sprintf("LOADBALANCER_LIMIT: the account may have at most %d load balancers", s.limits.LoadBalancers))
		}
		for _, want := range vips {
			vip, err := s.obtainVirtualIPs(tx, account, lb, want)
			if err != nil {
				return err
			}
			lb.VirtualIPs = append(lb.VirtualIPs, vip...)
		}
		if err := checkIPv6Limit(lb.VirtualIPs, s.limits); err != nil {
			return err
		}
		return tx.CreateLoadBalancer(lb)
	})
	if err != nil {
		return nil, s.lbError(ctx, err)
	}
	s.log.InfoContext(ctx, "load balancer created", "account", account, "id", lb.ID, "protocol", lb.Protocol, "port", lb.Port)
	return &lbaasv1.LoadBalancerResponse{LoadBalancer: s.apiLoadBalancer(lb)}, nil
}

// newLoadBalancer validates a create request into a store model and the
// virtual IPs it asks for.
func (s *LoadBalancers) newLoadBalancer(ctx context.Context, account string, in *lbaasv1.LoadBalancerRequest) (*store.LoadBalancer, []vipWant, error) {
	var v validation
	lb := &store.LoadBalancer{
		Account: account, Name: in.GetName(), Protocol: in.GetProtocol(), Port: in.GetPort(),
		Algorithm: "RANDOM", Status: store.StatusBuild, Timeout: defaultTimeout,
		HalfClosed: in.GetHalfClosed(), HTTPSRedirect: in.GetHttpsRedirect(), Fleet: s.fleet,
		ConnectionLogging: in.GetConnectionLogging().GetEnabled(),
		ContentCaching:    in.GetContentCaching().GetEnabled(),
		CheckPassive:      in.GetCheckPassive(), BackendKeepAlive: in.GetBackendKeepAlive(),
		ClientKeepAliveTimeout: defaultClientKeepAlive,
	}
	if in.ClientKeepAliveTimeout != nil {
		lb.ClientKeepAliveTimeout = in.GetClientKeepAliveTimeout()
		validKeepAlive(&v, "loadBalancer.clientKeepAliveTimeout", lb.ClientKeepAliveTimeout)
	}
	if in.Name == nil {
		v.add("loadBalancer.name", "is required")
	} else {
		validName(&v, "loadBalancer.name", lb.Name)
	}
	proto, known := lookupProtocol(lb.Protocol)
	switch {
	case in.Protocol == nil:
		v.add("loadBalancer.protocol", "is required")
	case !known:
		v.add("loadBalancer.protocol", "%q is not a supported protocol", lb.Protocol)
	}
	switch {
	case in.Port != nil:
		validPort(&v, "loadBalancer.port", lb.Port)
	case known && proto.Port == 0:
		v.add("loadBalancer.port", "is required for protocol %s", lb.Protocol)
	default:
		lb.Port = proto.Port
	}
	if in.Algorithm != nil {
		lb.Algorithm = in.GetAlgorithm()
		if !knownAlgorithm(lb.Algorithm) {
			v.add("loadBalancer.algorithm", "%q is not a supported algorithm", lb.Algorithm)
		}
	}
	if in.Timeout != nil {
		lb.Timeout = in.GetTimeout()
		validTimeout(&v, "loadBalancer.timeout", lb.Timeout)
	}
	checkHalfClosed(&v, "loadBalancer.halfClosed", lb.HalfClosed, lb.Protocol)
	checkHTTPSRedirect(&v, "loadBalancer.httpsRedirect", lb.HTTPSRedirect, lb.Protocol, lb.Port, nil)
	checkContentCaching(&v, "loadBalancer.contentCaching", lb.ContentCaching)
	if lb.ConnectionLogging && IsUDP(lb.Protocol) {
		v.add("loadBalancer.connectionLogging", "is not available for protocol %s", lb.Protocol)
	}

	vips := s.requestedVirtualIPs(&v, in.GetVirtualIps())
	if err := s.attachChildren(ctx, &v, lb, in); err != nil {
		return nil, nil, err
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return lb, vips, nil
}

// defaultClientKeepAlive is Tencent CLB's default idle timeout of client
// connections, in seconds.
const defaultClientKeepAlive = 75

func validKeepAlive(v *validation, field string, t uint32) {
	if t < 1 || t > 3600 {
		v.add(field, "must be from 1 to 3600 seconds (got %d)", t)
	}
}

func validTimeout(v *validation, field string, t uint32) {
	if t < 1 || t > maxTimeout {
		v.add(field, "must be from 1 to %d seconds (got %d)", maxTimeout, t)
	}
}

func (s *LoadBalancers) requestedVirtualIPs(v *validation, in []*lbaasv1.VirtualIpRequest) []vipWant {
	if len(in) == 0 {
		v.add("loadBalancer.virtualIps", "at least one virtual IP is required")
	}
	var out []vipWant
	seen := map[uint32]bool{}
	for i, r := range in {
		w := virtualIPRequest(v, fmt.Sprintf("loadBalancer.virtualIps[%d]", i), r)
		if r.Id != nil {
			if seen[w.id] {
				v.add(w.field+".id", "virtual IP %d appears more than once", w.id)
			}
			seen[w.id] = true
		}
		out = append(out, w)
	}
	return out
}

// attachChildren validates the optional sub-objects of a create request
// into lb. Limits give overLimit faults, which win over validation errors.
func (s *LoadBalancers) attachChildren(ctx context.Context, v *validation, lb *store.LoadBalancer, in *lbaasv1.LoadBalancerRequest) error {
	if n := len(in.GetNodes()); n > int(s.limits.Nodes) {
		return OverLimit(fmt.Sprintf("NODE_LIMIT: a load balancer may have at most %d nodes (got %d)", s.limits.Nodes, n))
	}
	if n := len(in.GetAccessList()); n > int(s.limits.AccessList) {
		return OverLimit(fmt.Sprintf("ACCESS_LIST_LIMIT: an access list may have at most %d items (got %d)", s.limits.AccessList, n))
	}
	if n := len(in.GetMetadata()); n > int(s.limits.LoadBalancerMeta) {
		return OverLimit(fmt.Sprintf("LOADBALANCER_META_LIMIT: a load balancer may have at most %d metadata items (got %d)", s.limits.LoadBalancerMeta, n))
	}
	for i, n := range in.GetNodes() {
		if len(n.GetMetadata()) > int(s.limits.NodeMeta) {
			return OverLimit(fmt.Sprintf("NODE_META_LIMIT: a node may have at most %d metadata items (loadBalancer.nodes[%d])", s.limits.NodeMeta, i))
		}
		lb.Nodes = append(lb.Nodes, nodeFromRequest(ctx, v, fmt.Sprintf("loadBalancer.nodes[%d]", i), n, s.nodePolicy))
	}
	duplicateNodes(v, "loadBalancer.nodes", nil, lb.Nodes)
	seen := map[string]bool{}
	for i, item := range in.GetAccessList() {
		field := fmt.Sprintf("loadBalancer.accessList[%d]", i)
		ni := networkItem(v, field, item)
		if seen[ni.Address] {
			v.add(field+".address", "%s appears more than once in the access list", ni.Address)
		}
		seen[ni.Address] = true
		lb.AccessList = append(lb.AccessList, ni)
	}
	for i, m := range in.GetMetadata() {
		validMeta(v, fmt.Sprintf("loadBalancer.metadata[%d]", i), m)
		lb.Metadata = append(lb.Metadata, store.LoadBalancerMeta{Key: m.GetKey(), Value: m.GetValue()})
	}
	validUniqueKeys(v, "loadBalancer.metadata", in.GetMetadata())
	if hm := in.GetHealthMonitor(); hm != nil {
		lb.HealthMonitor = healthMonitor(v, "loadBalancer.healthMonitor", lb.Protocol, hm)
	}
	if sp := in.GetSessionPersistence(); sp != nil {
		lb.SessionPersistence = sessionPersistence(v, "loadBalancer.sessionPersistence", lb.Protocol, sp)
	}
	if ct := in.GetConnectionThrottle(); ct != nil {
		lb.ConnectionThrottle = connectionThrottle(v, "loadBalancer.connectionThrottle", ct)
	}
	return nil
}

// obtainVirtualIPs allocates the addresses a request asks for, or finds the
// shared one it names and checks that lb may listen on it.
func (s *LoadBalancers) obtainVirtualIPs(tx *store.Tx, account string, lb *store.LoadBalancer, want vipWant) ([]store.VirtualIP, error) {
	if want.typ == "" {
		vip, err := tx.VirtualIP(account, want.id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, BadRequest(fmt.Sprintf("%s.id: virtual IP %d does not exist", want.field, want.id))
		}
		if err != nil {
			return nil, err
		}
		if err := checkPortFree(tx, want.field, vip, lb); err != nil {
			return nil, err
		}
		return []store.VirtualIP{*vip}, nil
	}
	versions := []string{want.version}
	if want.version == "" {
		versions = []string{"IPV4", "IPV6"}
		if want.typ == "SERVICENET" {
			versions = []string{"IPV4"}
		}
	}
	var out []store.VirtualIP
	for _, version := range versions {
		vip, err := tx.AllocateVirtualIP(account, want.typ, version)
		switch {
		case errors.Is(err, store.ErrOutOfVirtualIPs):
			return nil, OutOfVirtualIPs()
		case errors.Is(err, store.ErrNoPool) && want.version == "":
			continue // this deployment offers no such version: give what it has
		case errors.Is(err, store.ErrNoPool):
			return nil, BadRequest(fmt.Sprintf("%s: no %s %s virtual IPs are offered in this region", want.field, want.typ, version))
		case err != nil:
			return nil, err
		}
		out = append(out, *vip)
	}
	if len(out) == 0 {
		return nil, BadRequest(fmt.Sprintf("%s: no %s virtual IPs are offered in this region", want.field, want.typ))
	}
	return out, nil
}

// checkPortFree enforces that load balancers sharing a virtual IP use
// distinct ports, unless their protocols are designed to share one. An
// HTTPS load balancer with httpsRedirect also holds port 80 (it answers
// plain HTTP there with the redirect).
func checkPortFree(tx *store.Tx, field string, vip *store.VirtualIP, lb *store.LoadBalancer) error {
	listeners, err := tx.Listeners(vip.ID)
	if err != nil {
		return err
	}
	mine := ports(lb.Port, lb.Protocol, lb.HTTPSRedirect)
	for _, l := range listeners {
		if l.LoadBalancerID == lb.ID || sharePort(l.Protocol, lb.Protocol) {
			continue
		}
		for _, p := range ports(l.Port, l.Protocol, l.HTTPSRedirect) {
			if slices.Contains(mine, p) {
				return BadRequest(fmt.Sprintf("%s: port %d of virtual IP %d (%s) is already used by load balancer %d",
					field, p, vip.ID, vip.Address, l.LoadBalancerID))
			}
		}
	}
	return nil
}

// ports are the ports a load balancer listens on.
func ports(port uint32, protocol string, httpsRedirect bool) []uint32 {
	if protocol == "HTTPS" && httpsRedirect && port != 80 {
		return []uint32{port, 80}
	}
	return []uint32{port}
}

func checkIPv6Limit(vips []store.VirtualIP, limits Limits) error {
	n := 0
	for _, v := range vips {
		if v.IPVersion == "IPV6" {
			n++
		}
	}
	if n > int(limits.IPv6) {
		return OverLimit(fmt.Sprintf("IPV6_LIMIT: a load balancer may have at most %d IPv6 virtual IPs", limits.IPv6))
	}
	return nil
}

// mutable loads a load balancer for a change and refuses one that is busy.
func mutable(tx *store.Tx, account string, id uint32) (*store.LoadBalancer, error) {
	lb, err := tx.LoadBalancer(account, id)
	if err != nil {
		return nil, err
	}
	if lb.Status != store.StatusActive && lb.Status != store.StatusError {
		return nil, Immutable(lb)
	}
	return lb, nil
}

// changeLoadBalancer is the one path of every change to a load balancer:
// in one store.Update it locks the account (changes of one account are
// serialised, so limit and port checks hold), loads the load balancer,
// refuses a busy one (422 immutableEntity), lets change (when not nil)
// validate and apply the change, then moves the load balancer to status
// (PENDING_UPDATE or PENDING_DELETE) and saves it, so that the data plane
// republishes it. An error from change (a fault) rolls everything back.
// Callers have authorized the request.
func changeLoadBalancer(ctx context.Context, st *store.Store, log *slog.Logger, account string, id uint32, status string,
	change func(tx *store.Tx, lb *store.LoadBalancer) error) error {
	_, err := st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.LockAccount(account); err != nil {
			return err
		}
		lb, err := mutable(tx, account, id)
		if err != nil {
			return err
		}
		if change != nil {
			if err := change(tx, lb); err != nil {
				return err
			}
		}
		lb.Status = status
		return tx.SaveLoadBalancer(lb)
	})
	if err != nil {
		return lbFault(ctx, log, err)
	}
	return nil
}

// lbFault turns a store error into the fault: a missing load balancer is 404.
func lbFault(ctx context.Context, log *slog.Logger, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return NotFound("Load balancer not found")
	}
	return storeError(ctx, log, err)
}

// UpdateLoadBalancer changes a load balancer's attributes.
func (s *LoadBalancers) UpdateLoadBalancer(ctx context.Context, req *lbaasv1.UpdateLoadBalancerRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetLoadBalancer()
	if in == nil || (in.Name == nil && in.Protocol == nil && in.Port == nil && in.Algorithm == nil &&
		in.Timeout == nil && in.HalfClosed == nil && in.HttpsRedirect == nil && in.CheckPassive == nil &&
		in.ClientKeepAliveTimeout == nil && in.BackendKeepAlive == nil) {
		return nil, BadRequest("loadBalancer: give at least one of name, algorithm, protocol, port, timeout, halfClosed, httpsRedirect")
	}
	err := changeLoadBalancer(ctx, s.store, s.log, req.GetAccount(), req.GetLoadBalancerId(), store.StatusPendingUpdate,
		func(tx *store.Tx, lb *store.LoadBalancer) error {
			if err := applyUpdate(lb, in); err != nil {
				return err
			}
			for _, vip := range lb.VirtualIPs {
				if err := checkPortFree(tx, "loadBalancer.port", &vip, lb); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// applyUpdate validates an update against lb and applies it.
func applyUpdate(lb *store.LoadBalancer, in *lbaasv1.LoadBalancerUpdate) error {
	var v validation
	if in.Name != nil {
		lb.Name = in.GetName()
		validName(&v, "loadBalancer.name", lb.Name)
	}
	if in.Protocol != nil && in.GetProtocol() != lb.Protocol {
		p, ok := lookupProtocol(in.GetProtocol())
		if !ok {
			v.add("loadBalancer.protocol", "%q is not a supported protocol", in.GetProtocol())
		}
		lb.Protocol = p.Name
		// Changing the protocol disables session persistence, and leaving
		// HTTP restores the default error page (reference).
		lb.SessionPersistence = nil
		if lb.Protocol != "HTTP" {
			lb.ErrorPage = ""
		}
		if lb.HealthMonitor != nil && IsUDP(lb.Protocol) {
			v.add("loadBalancer.protocol", "remove the health monitor before switching to %s", lb.Protocol)
		}
		if lb.ConnectionLogging && IsUDP(lb.Protocol) {
			v.add("loadBalancer.protocol", "disable connection logging before switching to %s", lb.Protocol)
		}
		if lb.SSLTermination != nil && (IsSecureProtocol(lb.Protocol) || IsUDP(lb.Protocol)) {
			v.add("loadBalancer.protocol", "delete the SSL termination before switching to %s", lb.Protocol)
		}
	}
	if in.Port != nil {
		lb.Port = in.GetPort()
		validPort(&v, "loadBalancer.port", lb.Port)
		if lb.SSLTermination != nil && lb.SSLTermination.SecurePort == lb.Port {
			v.add("loadBalancer.port", "%d is the SSL termination's securePort", lb.Port)
		}
	}
	if in.Algorithm != nil {
		lb.Algorithm = in.GetAlgorithm()
		if !knownAlgorithm(lb.Algorithm) {
			v.add("loadBalancer.algorithm", "%q is not a supported algorithm", lb.Algorithm)
		}
	}
	if in.Timeout != nil {
		lb.Timeout = in.GetTimeout()
		validTimeout(&v, "loadBalancer.timeout", lb.Timeout)
	}
	if in.HalfClosed != nil {
		lb.HalfClosed = in.GetHalfClosed()
	}
	if in.HttpsRedirect != nil {
		lb.HTTPSRedirect = in.GetHttpsRedirect()
	}
	if in.CheckPassive != nil {
		lb.CheckPassive = in.GetCheckPassive()
	}
	if in.BackendKeepAlive != nil {
		lb.BackendKeepAlive = in.GetBackendKeepAlive()
	}
	if in.ClientKeepAliveTimeout != nil {
		lb.ClientKeepAliveTimeout = in.GetClientKeepAliveTimeout()
		validKeepAlive(&v, "loadBalancer.clientKeepAliveTimeout", lb.ClientKeepAliveTimeout)
	}
	checkHalfClosed(&v, "loadBalancer.halfClosed", lb.HalfClosed, lb.Protocol)
	checkHTTPSRedirect(&v, "loadBalancer.httpsRedirect", lb.HTTPSRedirect, lb.Protocol, lb.Port, lb.SSLTermination)
	return v.err()
}

// DeleteLoadBalancer starts deleting a load balancer.
func (s *LoadBalancers) DeleteLoadBalancer(ctx context.Context, req *lbaasv1.DeleteLoadBalancerRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := changeLoadBalancer(ctx, s.store, s.log, req.GetAccount(), req.GetLoadBalancerId(), store.StatusPendingDelete,
		func(_ *store.Tx, lb *store.LoadBalancer) error {
			lb.SSLTermination = nil // its private key goes with it
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// BulkDeleteLoadBalancers deletes up to BATCH_DELETE_LIMIT load balancers,
// all or none.
func (s *LoadBalancers) BulkDeleteLoadBalancers(ctx context.Context, req *lbaasv1.BulkDeleteLoadBalancersRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	ids, err := batchIDs(req.GetId(), s.limits.BatchDelete)
	if err != nil {
		return nil, err
	}
	_, err = s.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.LockAccount(req.GetAccount()); err != nil {
			return err
		}
		var missing, busy []string
		var lbs []*store.LoadBalancer
		for _, id := range ids {
			lb, err := tx.LoadBalancer(req.GetAccount(), id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				missing = append(missing, fmt.Sprint(id))
				continue
			case err != nil:
				return err
			case lb.Status != store.StatusActive && lb.Status != store.StatusError:
				busy = append(busy, fmt.Sprintf("%d (%s)", id, lb.Status))
			}
			lbs = append(lbs, lb)
		}
		var msgs []string
		if len(missing) > 0 {
			msgs = append(msgs, fmt.Sprintf("id: load balancers %s could not be found", strings.Join(missing, ",")))
		}
		if len(busy) > 0 {
			msgs = append(msgs, fmt.Sprintf("id: load balancers %s are immutable and cannot be deleted", strings.Join(busy, ",")))
		}
		if len(msgs) > 0 {
			return BadRequest(msgs...)
		}
		for _, lb := range lbs {
			lb.Status = store.StatusPendingDelete
			lb.SSLTermination = nil // its private key goes with it
			if err := tx.SaveLoadBalancer(lb); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.lbError(ctx, err)
	}
	return &emptypb.Empty{}, nil
}

// batchIDs checks the id list of a bulk delete.
func batchIDs(ids []uint32, limit uint32) ([]uint32, error) {
	if len(ids) == 0 {
		return nil, BadRequest("id: give at least one id (?id=1&id=2)")
	}
	if len(ids) > int(limit) {
		return nil, BadRequest(fmt.Sprintf("id: at most %d ids per request (BATCH_DELETE_LIMIT), got %d", limit, len(ids)))
	}
	seen := map[uint32]bool{}
	var out []uint32
	for _, id := range ids {
		if !seen[id] {
			out = append(out, id)
		}
		seen[id] = true
	}
	return out, nil
}

// changesSince validates the changes-since query parameter of a list (the
// zero time when there is none).
func changesSince(v *validation, param *string) time.Time {
	if param == nil {
		return time.Time{}
	}
	t, err := ParseTime(*param)
	if err != nil {
		v.add("changes-since", "%q is not an ISO 8601 date and time", *param)
	}
	return t
}
