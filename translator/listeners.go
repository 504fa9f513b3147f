package translator

import (
	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	matcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	udpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/udp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Well-known extension names.
const (
	hcmFilter      = "envoy.filters.network.http_connection_manager"
	udpProxyFilter = "envoy.filters.udp_listener.udp_proxy"
	routerFilter   = "envoy.filters.http.router"
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only for messages that always marshal
	}
	return a
}

// envoyListeners builds the listener on the load balancer's virtual IPs:
// one listener, the first VIP as its address and the others as additional
// addresses, and the filter configurations it takes over ECDS. HTTP
// listeners take their routes over RDS and every TCP listener its proxy
// filter over ECDS, so an edit of the load balancer other than its
// throttle leaves the listener as it is and Envoy drains nothing (see
// ecds.go).
func envoyListeners(lb *LoadBalancer) ([]*listenerv3.Listener, []*corev3.TypedExtensionConfig) {
	if len(lb.VIPs) == 0 {
		return nil, nil
	}
	name := ResourceName(lb.ID)
	var l *listenerv3.Listener
	var serving *listenerv3.FilterChain
	var proxy *corev3.TypedExtensionConfig
	var proxyMsg proto.Message // the proxy filter's configuration (TCP listeners)
	switch Family(lb.Protocol) {
	case FamilyHTTP:
		hcm := httpConnectionManager(name)
		hcm.RouteSpecifier = rdsFor(name)
		hcm.HttpFilters = httpFilters(lb)
		hcm.AccessLog = accessLogs(lb, true)
		hcm.LocalReplyConfig = localReply(lb)
		hcm.CommonHttpProtocolOptions = clientIdleTimeout(lb)
		proxyMsg = hcm
		serving, proxy = servingChain(lb, FamilyHTTP, hcm)
		l = tcpListener(name, lb.VIPs, lb.Port, chains(lb, serving)...)
	case FamilyUDP:
		l = udpListener(name, lb)
	default:
		proxyMsg = tcpProxy(name, lb)
		serving, proxy = servingChain(lb, FamilyTCP, proxyMsg)
		l = tcpListener(name, lb.VIPs, lb.Port, chains(lb, serving)...)
	}
	listeners := []*listenerv3.Listener{l}
	var extensions []*corev3.TypedExtensionConfig
	if proxy != nil {
		extensions = append(extensions, proxy)
	}
	if lb.TLS != nil && proxyMsg != nil {
		var secureProxy *corev3.TypedExtensionConfig
		listeners, secureProxy = terminating(lb, l, proxyMsg)
		if listeners[0] != l {
			// No plain listener (secure traffic only, or the redirect in
			// its place): nothing names the plain proxy configuration.
			extensions = nil
		}
		extensions = append(extensions, secureProxy)
	}
	if lb.HTTPSRedirect && lb.Protocol == "HTTPS" {
		listeners = append(listeners, redirectListener(lb))
	}
	return listeners, extensions
}

func tcpListener(name string, vips []VIP, port uint32, chains ...*listenerv3.FilterChain) *listenerv3.Listener {
	l := &listenerv3.Listener{
		Name:    name,
		Address: socketAddress(vips[0].Address, port, corev3.SocketAddress_TCP),
		// A VIP may not be on the host yet (it moves between proxies).
		Freebind:     wrapperspb.Bool(true),
		FilterChains: chains,
	}
	for _, v := range vips[1:] {
		l.AdditionalAddresses = append(l.AdditionalAddresses, &listenerv3.AdditionalAddress{
			Address: socketAddress(v.Address, port, corev3.SocketAddress_TCP),
		})
	}
	return l
}

func rdsFor(name string) *hcmv3.HttpConnectionManager_Rds {
	return &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: name}}
}

// httpConnectionManager terminates HTTP: the client address goes in
// X-Forwarded-For, the scheme in X-Forwarded-Proto and the port in
// X-Forwarded-Port, as the reference promises for HTTP load balancers.
func httpConnectionManager(name string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:           name,
		CodecType:            hcmv3.HttpConnectionManager_AUTO,
		UseRemoteAddress:     wrapperspb.Bool(true),
		AppendXForwardedPort: true,
		HttpFilters:          []*hcmv3.HttpFilter{router()},
	}
}

func router() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       routerFilter,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	}
}

// chains are a TCP listener's filter chains: the access list's refusal
// chain when there is one, then the serving chain.
func chains(lb *LoadBalancer, serving *listenerv3.FilterChain) []*listenerv3.FilterChain {
	if deny := accessListChain(lb); deny != nil {
		return []*listenerv3.FilterChain{deny, serving}
	}
	return []*listenerv3.FilterChain{serving}
}

// filterChain is a chain of one network filter.
func filterChain(filter string, config proto.Message) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{
		Name:       filter,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(config)},
	}}}
}

// routeConfig sends every request to the load balancer's cluster with the
// load balancer's timeout.
func routeConfig(name string, lb *LoadBalancer) *routev3.RouteConfiguration {
	r := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
			Timeout:          timeout(lb),
			HashPolicy:       routeHashPolicy(lb),
		}},
	}
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{r},
		}},
	}
}

// redirectListener answers plain HTTP on port 80 of an HTTPS load
// balancer's virtual IPs with a 301 to the same URL over HTTPS.
func redirectListener(lb *LoadBalancer) *listenerv3.Listener {
	return redirectOn(lb, RedirectListenerName(lb.ID), 80, 443)
}

// redirectOn is a listener named name on port that answers every request
// with a 301 to the same URL over HTTPS on port to.
func redirectOn(lb *LoadBalancer, name string, port, to uint32) *listenerv3.Listener {
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{
					SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
					PortRedirect:           to,
					ResponseCode:           routev3.RedirectAction_MOVED_PERMANENTLY,
				}},
			}},
		}},
	}
	hcm := httpConnectionManager(name)
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	l := tcpListener(name, lb.VIPs, port, filterChain(hcmFilter, hcm))
	// The access list holds on every port of the load balancer.
	if deny := accessListChain(lb); deny != nil {
		deny.Name = name + "_access_list_deny"
		l.FilterChains = append([]*listenerv3.FilterChain{deny}, l.FilterChains...)
	}
	return l
}

// tcpProxy proxies the TCP family (and HTTPS passthrough); the load
// balancer's timeout closes idle connections.
func tcpProxy(name string, lb *LoadBalancer) *tcpproxyv3.TcpProxy {
	return &tcpproxyv3.TcpProxy{
		StatPrefix:       name,
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: name},
		IdleTimeout:      timeout(lb),
		AccessLog:        accessLogs(lb, false),
		HashPolicy:       tcpHashPolicy(lb),
	}
}

// udpListener proxies datagrams to the cluster; a session idles out after
// the load balancer's timeout. UDP listeners have one address each, so
// extra VIPs become additional addresses as for TCP.
func udpListener(name string, lb *LoadBalancer) *listenerv3.Listener {
	route := &udpproxyv3.Route{Cluster: name}
	up := &udpproxyv3.UdpProxyConfig{
		StatPrefix: name,
		RouteSpecifier: &udpproxyv3.UdpProxyConfig_Matcher{Matcher: &matcherv3.Matcher{
			OnNoMatch: &matcherv3.Matcher_OnMatch{OnMatch: &matcherv3.Matcher_OnMatch_Action{
				Action: &xdscorev3.TypedExtensionConfig{Name: "route", TypedConfig: mustAny(route)},
			}},
		}},
		IdleTimeout: timeout(lb),
		AccessLog:   accessLogs(lb, false),
	}
	l := &listenerv3.Listener{
		Name:              name,
		Address:           socketAddress(lb.VIPs[0].Address, lb.Port, corev3.SocketAddress_UDP),
		Freebind:          wrapperspb.Bool(true),
		UdpListenerConfig: &listenerv3.UdpListenerConfig{},
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       udpProxyFilter,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(up)},
		}},
	}
	for _, v := range lb.VIPs[1:] {
		l.AdditionalAddresses = append(l.AdditionalAddresses, &listenerv3.AdditionalAddress{
			Address: socketAddress(v.Address, lb.Port, corev3.SocketAddress_UDP),
		})
	}
	return l
}

// apiListener is the proxyless gRPC form of an HTTP load balancer: a
// client dialing xds:///lb_<id> gets this listener, its route and the
// load balancer's cluster.
func apiListener(lb *LoadBalancer) *listenerv3.Listener {
	name := ResourceName(lb.ID)
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     name,
		RouteSpecifier: rdsFor(name),
		HttpFilters:    []*hcmv3.HttpFilter{router()},
	}
	return &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
	}
}
