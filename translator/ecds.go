package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// What a customer edits stays out of the listener. Envoy compares a
// listener it is sent with the one it runs: when only filter chains differ
// it rebuilds just the chains whose configuration changed, and drains the
// connections of those chains (closing them after --drain-time-s); any
// other difference rebuilds and drains the whole listener. So the serving
// chain of a TCP listener (HTTP included) ends in a proxy filter that names
// a configuration served over ECDS (extension config discovery, Envoy 1.28
// and later for network filters), which Envoy swaps in place for the
// connections that come next, leaving established ones as they are:
//
//   - lb_<id>_http: the HTTP connection manager (access log, error page,
//     HTTP filters, client keep-alive), its routes over RDS (timeout,
//     persistence hash policy);
//   - lb_<id>_tcp: the TCP proxy (idle timeout, access log, hash policy);
//   - lb_<id>_secure_http, lb_<id>_secure_tcp: the same for the secure
//     listener of SSL termination, under the stat prefix lb_<id>_tls (tls.go).
//
// The throttling filters before it (connection limit, connection rate),
// when set, are in the chain itself: a throttle edit rebuilds the chain
// and drains its connections (the status says so). Each ECDS
// configuration is a name every Envoy of the fleet subscribes to, and the
// xDS server keeps every stream's subscribed names (go-control-plane's
// stream state): two more per load balancer would cost each Envoy about
// 1 MB at 10,000 load balancers, for an edit that is rare and whose
// counters start afresh either way. docs/architecture.md ("Edits and
// connections") lists what lands where and the Envoy code it relies on.
//
// The family is in the name, so a protocol change (which rebuilds the
// listener anyway) never sends a listener expecting one type a
// configuration of the other.

// ProxyFilterName names the ECDS configuration of a load balancer's proxy
// filter: lb_<id>_http or lb_<id>_tcp.
func ProxyFilterName(id uint32, family string) string {
	return fmt.Sprintf("%s_%s", ResourceName(id), family)
}

// servingChain is the serving filter chain of a TCP listener: throttling
// (in the chain), then the proxy filter for the family, a reference to its
// ECDS configuration, which is returned too.
func servingChain(lb *LoadBalancer, family string, proxy proto.Message) (*listenerv3.FilterChain, *corev3.TypedExtensionConfig) {
	return proxyChain(lb, ProxyFilterName(lb.ID, family), proxy)
}

// proxyChain is servingChain with the ECDS configuration named name.
func proxyChain(lb *LoadBalancer, name string, proxy proto.Message) (*listenerv3.FilterChain, *corev3.TypedExtensionConfig) {
	config := extension(name, proxy)
	chain := &listenerv3.FilterChain{Filters: append(throttleFilters(lb), &listenerv3.Filter{
		Name: config.GetName(),
		ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
			ConfigSource: ads(),
			// Envoy refuses a configuration of another type (and a
			// non-terminal one in the last place).
			TypeUrls: []string{config.GetTypedConfig().GetTypeUrl()},
		}},
	})}
	return chain, config
}

func extension(name string, config proto.Message) *corev3.TypedExtensionConfig {
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(config)}
}
