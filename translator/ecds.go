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
// chain of a TCP listener (HTTP included) is the same for a load balancer
// whatever its settings: three network filters that each name a
// configuration served over ECDS (extension config discovery, Envoy 1.28
// and later for network filters), which Envoy swaps in place for the
// connections that come next, leaving established ones as they are:
//
//   - lb_<id>_connection_limit, lb_<id>_connection_rate: throttling, turned
//     off (runtime_enabled false) when not set;
//   - lb_<id>_http: the HTTP connection manager (access log, error page,
//     HTTP filters such as the cache, client keep-alive), its routes over
//     RDS (timeout, persistence hash policy);
//   - lb_<id>_tcp: the TCP proxy (idle timeout, access log, hash policy).
//
// The family is in the name, so a protocol change (which rebuilds the
// listener anyway) never sends a listener expecting one type a
// configuration of the other. docs/architecture.md ("Edits and
// connections") lists what lands where and the Envoy code it relies on.

// ProxyFilterName names the ECDS configuration of a load balancer's proxy
// filter: lb_<id>_http or lb_<id>_tcp.
func ProxyFilterName(id uint32, family string) string {
	return fmt.Sprintf("%s_%s", ResourceName(id), family)
}

// ConnectionLimitName and ConnectionRateName name the ECDS configurations
// of a load balancer's throttling filters.
func ConnectionLimitName(id uint32) string { return ResourceName(id) + "_connection_limit" }

// ConnectionRateName: see ConnectionLimitName.
func ConnectionRateName(id uint32) string { return ResourceName(id) + "_connection_rate" }

// servingChain is the serving filter chain of a TCP listener (throttling,
// then proxy, the filter for the family), every filter a reference to its
// ECDS configuration, and those configurations.
func servingChain(lb *LoadBalancer, family string, proxy proto.Message) (*listenerv3.FilterChain, []*corev3.TypedExtensionConfig) {
	limit, rate := throttleConfigs(lb)
	configs := []*corev3.TypedExtensionConfig{
		extension(ConnectionLimitName(lb.ID), limit),
		extension(ConnectionRateName(lb.ID), rate),
		extension(ProxyFilterName(lb.ID, family), proxy),
	}
	chain := &listenerv3.FilterChain{}
	for _, c := range configs {
		chain.Filters = append(chain.Filters, &listenerv3.Filter{
			Name: c.GetName(),
			ConfigType: &listenerv3.Filter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
				ConfigSource: ads(),
				// Envoy refuses a configuration of another type (and a
				// non-terminal one in the last place).
				TypeUrls: []string{c.GetTypedConfig().GetTypeUrl()},
			}},
		})
	}
	return chain, configs
}

func extension(name string, config proto.Message) *corev3.TypedExtensionConfig {
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(config)}
}
