package translator

import (
	"net/netip"
	"slices"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	directresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/direct_response/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The traffic features of a load balancer, as Envoy constructs.

const (
	directResponseFilter = "envoy.filters.network.direct_response"
	connLimitFilter      = "envoy.filters.network.connection_limit"
	netRateFilter        = "envoy.filters.network.local_ratelimit"
	httpProtocolOpts     = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	persistenceCookie    = "LBAAS_SESSION"
)

// DefaultErrorPage is served for the load balancer's own 5xx replies when
// no custom error page is set.
const DefaultErrorPage = `<!DOCTYPE html>
<html><head><title>Service Unavailable</title></head>
<body><h1>Service Unavailable</h1><p>The service is temporarily unavailable. Please try again later.</p></body></html>
`

// networkFilters come before the proxy filter of every TCP listener
// chain: connection throttling. (The access list is a filter chain of its
// own, see accessListChain.)
func networkFilters(lb *LoadBalancer) []*listenerv3.Filter {
	return throttleFilters(lb)
}

// accessListChain closes, at once, every connection from a network the
// access list refuses: the DENY networks less the ALLOW ones (ALLOW wins).
// Envoy picks this chain by the connection's source address before any
// filter runs, so a refused client never reaches a node, not even one
// that speaks first (FTP, SMTP, MySQL). "0.0.0.0/0 DENY", the reference's
// allow-list recipe, covers IPv6 clients too (::/0), as two halves of each
// family (see deniedNetworks). It returns nil when nothing is refused.
func accessListChain(lb *LoadBalancer) *listenerv3.FilterChain {
	denied := deniedNetworks(lb.AccessList)
	if len(denied) == 0 {
		return nil
	}
	match := &listenerv3.FilterChainMatch{}
	for _, p := range denied {
		match.DirectSourcePrefixRanges = append(match.DirectSourcePrefixRanges, &corev3.CidrRange{
			AddressPrefix: p.Addr().String(),
			PrefixLen:     wrapperspb.UInt32(uint32(p.Bits())),
		})
	}
	return &listenerv3.FilterChain{
		Name:             ResourceName(lb.ID) + "_access_list_deny",
		FilterChainMatch: match,
		Filters: []*listenerv3.Filter{{
			Name:       directResponseFilter,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&directresponsev3.Config{})},
		}},
	}
}

// deniedNetworks is the DENY networks less the ALLOW networks, in a
// stable order.
func deniedNetworks(items []NetworkItem) []netip.Prefix {
	var deny, allow []netip.Prefix
	for _, item := range items {
		p, err := prefixOf(item.Address)
		if err != nil {
			continue // the API stores canonical networks only
		}
		if item.Type == "ALLOW" {
			allow = append(allow, p)
			continue
		}
		deny = append(deny, p)
		if p.Bits() == 0 && p.Addr().Is4() {
			deny = append(deny, netip.MustParsePrefix("::/0"))
		}
	}
	var out []netip.Prefix
	for _, d := range deny {
		rest := []netip.Prefix{d}
		for _, a := range allow {
			var next []netip.Prefix
			for _, r := range rest {
				next = append(next, subtract(r, a)...)
			}
			rest = next
		}
		out = append(out, rest...)
	}
	// Never a /0: the serving chain matches every source (Envoy files a
	// chain without source ranges under /0 too), and two chains at one
	// prefix are a tie Envoy breaks arbitrarily (envoyproxy/envoy#34299).
	// Two halves are more specific than the serving chain, so they win.
	var split []netip.Prefix
	for _, p := range out {
		if p.Bits() == 0 {
			lo, hi := halves(p)
			split = append(split, lo, hi)
		} else {
			split = append(split, p)
		}
	}
	out = split
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// subtract returns p less q, as prefixes.
func subtract(p, q netip.Prefix) []netip.Prefix {
	switch {
	case p.Addr().Is4() != q.Addr().Is4() || !p.Overlaps(q):
		return []netip.Prefix{p}
	case q.Bits() <= p.Bits(): // q contains p
		return nil
	}
	lo, hi := halves(p)
	return append(subtract(lo, q), subtract(hi, q)...)
}

// halves splits a prefix into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits).Masked()
	b := lo.Addr().AsSlice()
	b[(bits-1)/8] |= 0x80 >> ((bits - 1) % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}

func prefixOf(network string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(network); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(network)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// throttleFilters enforce connection throttling per proxy: at most
// maxConnections concurrent connections on the listener, and at most
// maxConnectionRate new connections per rateInterval seconds (a token
// bucket). Envoy cannot count per client address for TCP connections;
// see the README for the exact semantics.
func throttleFilters(lb *LoadBalancer) []*listenerv3.Filter {
	t := lb.Throttle
	if t == nil {
		return nil
	}
	var out []*listenerv3.Filter
	name := ResourceName(lb.ID)
	if t.MaxConnections > 0 {
		out = append(out, &listenerv3.Filter{Name: connLimitFilter, ConfigType: &listenerv3.Filter_TypedConfig{
			TypedConfig: mustAny(&connlimitv3.ConnectionLimit{
				StatPrefix:     name + "_connection_limit",
				MaxConnections: wrapperspb.UInt64(uint64(t.MaxConnections)),
			}),
		}})
	}
	if t.MaxConnectionRate > 0 && t.RateInterval > 0 {
		out = append(out, &listenerv3.Filter{Name: netRateFilter, ConfigType: &listenerv3.Filter_TypedConfig{
			TypedConfig: mustAny(&netratelimitv3.LocalRateLimit{
				StatPrefix: name + "_connection_rate",
				TokenBucket: &typev3.TokenBucket{
					MaxTokens:     t.MaxConnectionRate,
					TokensPerFill: wrapperspb.UInt32(t.MaxConnectionRate),
					FillInterval:  durationpb.New(time.Duration(t.RateInterval) * time.Second),
				},
			}),
		}})
	}
	return out
}

// localReply serves the error page for the load balancer's own 5xx
// replies (no healthy node, upstream timeouts, ...). The page is the body,
// not a format string, so a '%' in it stays a '%'.
func localReply(lb *LoadBalancer) *hcmv3.LocalReplyConfig {
	page := lb.ErrorPage
	if page == "" {
		page = DefaultErrorPage
	}
	return &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
			StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
				Op:    accesslogv3.ComparisonFilter_GE,
				Value: &corev3.RuntimeUInt32{DefaultValue: 500, RuntimeKey: "lbaas.error_page.min_status"},
			}},
		}},
		Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: page}},
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: "%LOCAL_REPLY_BODY%"},
			}},
			ContentType: "text/html; charset=UTF-8",
		},
	}}}
}

// httpFilters is the HTTP filter chain: the router alone. Content caching
// is stored and shown by the API but emits no cache filter: Envoy's cache
// filters (envoy.filters.http.cache and cache_v2, status "wip") fetch a
// miss through an async client that skips the route's hash policy
// (persistence), timeout and error page, and store responses with
// Set-Cookie for every client; their simple cache is one per proxy that
// never evicts. docs/architecture.md ("Content caching") has the source.
func httpFilters(*LoadBalancer) []*hcmv3.HttpFilter {
	return []*hcmv3.HttpFilter{router()}
}

// clientIdleTimeout closes idle client connections (Tencent CLB's
// keep-alive timeout).
func clientIdleTimeout(lb *LoadBalancer) *corev3.HttpProtocolOptions {
	s := lb.ClientKeepAliveSeconds
	if s == 0 {
		return nil
	}
	return &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Duration(s) * time.Second)}
}

// persistent tells whether the load balancer pins clients to nodes, which
// needs a consistent-hash cluster.
func persistent(lb *LoadBalancer) bool { return lb.Persistence != "" }

// routeHashPolicy picks the node from the session cookie (HTTP_COOKIE:
// Envoy sets it on the first reply) or the client address (SOURCE_IP).
func routeHashPolicy(lb *LoadBalancer) []*routev3.RouteAction_HashPolicy {
	switch lb.Persistence {
	case "HTTP_COOKIE":
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: persistenceCookie, Ttl: durationpb.New(0), Path: "/"},
		}}}
	case "SOURCE_IP", "SSL_ID":
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}}
	}
	return nil
}

// tcpHashPolicy pins TCP connections (HTTPS passthrough) to a node by
// client address. Envoy cannot read the TLS session id, so SSL_ID is
// served as source-address persistence.
func tcpHashPolicy(lb *LoadBalancer) []*typev3.HashPolicy {
	if !persistent(lb) {
		return nil
	}
	return []*typev3.HashPolicy{{PolicySpecifier: &typev3.HashPolicy_SourceIp_{SourceIp: &typev3.HashPolicy_SourceIp{}}}}
}

// clusterFeatures applies persistence, passive-check tuning and backend
// keep-alive to an Envoy cluster.
func clusterFeatures(lb *LoadBalancer, c *clusterv3.Cluster) {
	if persistent(lb) {
		c.LbPolicy = clusterv3.Cluster_RING_HASH
	}
	if lb.CheckPassive && Family(lb.Protocol) == FamilyHTTP {
		// Linode's check_passive: a single 5xx takes the node out.
		c.OutlierDetection.Consecutive_5Xx = wrapperspb.UInt32(1)
		c.OutlierDetection.EnforcingConsecutive_5Xx = wrapperspb.UInt32(100)
	}
	if Family(lb.Protocol) == FamilyHTTP && !lb.BackendKeepAlive {
		// DigitalOcean's default: one request per connection to a node.
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOpts: mustAny(&upstreamhttpv3.HttpProtocolOptions{
				CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{MaxRequestsPerConnection: wrapperspb.UInt32(1)},
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
				}},
			}),
		}
	}
}

// grpcRouteConfig is the route a proxyless gRPC client gets when sessions
// persist: it hashes on the client's channel (grpc-go's
// "io.grpc.channel_id" filter state), so every call of a channel goes to
// the same node of the ring.
func grpcRouteConfig(lb *LoadBalancer) *routev3.RouteConfiguration {
	rc := routeConfig(ResourceName(lb.ID), lb)
	rc.VirtualHosts[0].Routes[0].GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{
		PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{
			FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: "io.grpc.channel_id"},
		},
	}}
	return rc
}
