package translator

import (
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Resources are what one kind of data plane gets for one load balancer.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Extensions are filter configurations served over ECDS (Envoy only):
	// what a customer edits lives here, so an edit does not rebuild the
	// listener (see ecds.go).
	Extensions []*corev3.TypedExtensionConfig
	// Secrets are the certificates and keys of TLS termination, over SDS
	// (Envoy only; see tls.go).
	Secrets []*tlsv3.Secret
}

// Output is a load balancer translated for both kinds of data plane.
type Output struct {
	// Envoy gets listeners on the virtual IPs.
	Envoy Resources
	// GRPC (proxyless gRPC clients) gets an API listener per HTTP load
	// balancer, and clusters whose policy and outlier detection every gRPC
	// implementation accepts (see grpcCluster).
	GRPC Resources
}

// Passive monitoring defaults of the reference: connect timeout, and the
// outlier detection that ejects a node after 3 consecutive failures for at
// least 60 seconds.
const (
	connectTimeout          = 4 * time.Second
	consecutiveFailures     = 3
	ejectionTime            = 60 * time.Second
	outlierInterval         = 10 * time.Second
	defaultTimeoutSeconds   = 30
	secondaryPriority       = 1
	localityRegion          = "lbaas"
	overprovisioningPercent = 1_000_000 // any healthy primary takes all traffic; secondaries only when none is
)

// Translate turns one load balancer into Envoy resources. It is pure and
// deterministic; an error means the input is not a valid load balancer.
func Translate(lb *LoadBalancer) (*Output, error) {
	if err := check(lb); err != nil {
		return nil, err
	}
	out := &Output{}
	cluster, grpcCluster, endpoints := clusters(lb)
	out.Envoy.Clusters = []*clusterv3.Cluster{cluster}
	out.GRPC.Clusters = []*clusterv3.Cluster{grpcCluster}
	if endpoints != nil {
		out.Envoy.Endpoints = []*endpointv3.ClusterLoadAssignment{endpoints}
		out.GRPC.Endpoints = out.Envoy.Endpoints
	}
	var routes []*routev3.RouteConfiguration
	if Family(lb.Protocol) == FamilyHTTP {
		routes = []*routev3.RouteConfiguration{routeConfig(ResourceName(lb.ID), lb)}
		out.GRPC.Listeners = []*listenerv3.Listener{apiListener(lb)}
		// gRPC clients get the same route, unless sessions persist: a gRPC
		// client's session is its channel.
		out.GRPC.Routes = routes
		if persistent(lb) {
			out.GRPC.Routes = []*routev3.RouteConfiguration{grpcRouteConfig(lb)}
		}
	}
	out.Envoy.Listeners, out.Envoy.Extensions = envoyListeners(lb)
	if len(out.Envoy.Listeners) > 0 {
		out.Envoy.Routes = routes
		out.Envoy.Secrets = tlsSecrets(lb)
	}
	return out, nil
}

func check(lb *LoadBalancer) error {
	if lb.ID == 0 {
		return fmt.Errorf("load balancer has no id")
	}
	if lb.Port == 0 || lb.Port > 65535 {
		return fmt.Errorf("load balancer %d: port %d out of range", lb.ID, lb.Port)
	}
	for _, v := range lb.VIPs {
		if _, err := netip.ParseAddr(v.Address); err != nil {
			return fmt.Errorf("load balancer %d: virtual IP %q: %w", lb.ID, v.Address, err)
		}
	}
	for _, n := range lb.Nodes {
		if n.Port == 0 || n.Port > 65535 || n.Address == "" {
			return fmt.Errorf("load balancer %d: node %d has no usable address", lb.ID, n.ID)
		}
		for _, a := range n.Addresses {
			if !a.IsValid() || a.Zone() != "" {
				return fmt.Errorf("load balancer %d: node %d: %q is not an endpoint address", lb.ID, n.ID, a)
			}
		}
	}
	// Protobuf strings must be UTF-8 (the API only accepts UTF-8 JSON).
	if !utf8.ValidString(lb.ErrorPage) || !utf8.ValidString(lb.AccessLogPath) {
		return fmt.Errorf("load balancer %d: error page or log path is not UTF-8", lb.ID)
	}
	return checkTLS(lb)
}

func timeout(lb *LoadBalancer) *durationpb.Duration {
	s := lb.TimeoutSeconds
	if s == 0 {
		s = defaultTimeoutSeconds
	}
	return durationpb.New(time.Duration(s) * time.Second)
}

// weighted tells whether node weights count: the reference stores and
// ignores them for the other algorithms.
func weighted(algorithm string) bool {
	return algorithm == "WEIGHTED_ROUND_ROBIN" || algorithm == "WEIGHTED_LEAST_CONNECTIONS"
}

// clusters builds the load balancer's cluster for Envoy and for gRPC, and
// its endpoints, served over EDS: every node's addresses are IP addresses
// (names are resolved by the control plane), so no proxy resolves a name.
func clusters(lb *LoadBalancer) (envoy, grpc *clusterv3.Cluster, eds *endpointv3.ClusterLoadAssignment) {
	name := ResourceName(lb.ID)
	cla := loadAssignment(lb)
	algorithm := lb.Algorithm
	if Family(lb.Protocol) == FamilyUDP {
		algorithm = udpAlgorithm(algorithm)
	}
	envoy = &clusterv3.Cluster{
		Name:             name,
		ConnectTimeout:   durationpb.New(connectTimeout),
		LbPolicy:         envoyPolicy(algorithm),
		OutlierDetection: outlierDetection(),
		CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			// No panic routing: an offline node never gets traffic.
			HealthyPanicThreshold: &typev3.Percent{Value: 0},
		},
	}
	envoy.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	envoy.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: name}
	eds = cla
	clusterFeatures(lb, envoy)
	grpc = grpcCluster(lb, envoy)
	return envoy, grpc, eds
}

// envoyPolicy maps the Rackspace algorithms onto Envoy's; weights are
// carried on the endpoints.
func envoyPolicy(algorithm string) clusterv3.Cluster_LbPolicy {
	switch algorithm {
	case "ROUND_ROBIN", "WEIGHTED_ROUND_ROBIN":
		return clusterv3.Cluster_ROUND_ROBIN
	case "LEAST_CONNECTIONS", "WEIGHTED_LEAST_CONNECTIONS":
		return clusterv3.Cluster_LEAST_REQUEST
	}
	return clusterv3.Cluster_RANDOM
}

func outlierDetection() *clusterv3.OutlierDetection {
	return &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    wrapperspb.UInt32(consecutiveFailures),
		ConsecutiveGatewayFailure:          wrapperspb.UInt32(consecutiveFailures),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
		Interval:                           durationpb.New(outlierInterval),
		BaseEjectionTime:                   durationpb.New(ejectionTime),
		// Envoy multiplies the ejection time by the number of times a host
		// was ejected, up to max_ejection_time (300 s by default): the
		// reference promises 60 s.
		MaxEjectionTime:      durationpb.New(ejectionTime),
		MaxEjectionPercent:   wrapperspb.UInt32(100),
		EnforcingSuccessRate: wrapperspb.UInt32(0),
	}
}

// loadAssignment places ENABLED and DRAINING nodes (DISABLED ones get no
// traffic at all) at priority 0 (PRIMARY) or 1 (SECONDARY, used only when
// no primary is healthy). Without primaries, secondaries serve at priority
// 0, since priorities must start there.
func loadAssignment(lb *LoadBalancer) *endpointv3.ClusterLoadAssignment {
	// One endpoint per address and port: names may resolve to an address
	// another node has (grpc-go refuses duplicates); a primary wins.
	seen := map[netip.AddrPort]bool{}
	endpoints := func(typ string) []*endpointv3.LbEndpoint {
		var out []*endpointv3.LbEndpoint
		for _, n := range lb.Nodes {
			if n.Condition == "DISABLED" || (n.Type == "SECONDARY") != (typ == "SECONDARY") {
				continue
			}
			for _, a := range n.Addresses {
				key := netip.AddrPortFrom(a, uint16(n.Port))
				if seen[key] {
					continue
				}
				seen[key] = true
				out = append(out, lbEndpoint(n, a, weighted(lb.Algorithm)))
			}
		}
		return out
	}
	primary, secondary := endpoints("PRIMARY"), endpoints("SECONDARY")
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: ResourceName(lb.ID),
		Policy: &endpointv3.ClusterLoadAssignment_Policy{
			OverprovisioningFactor: wrapperspb.UInt32(overprovisioningPercent),
		},
	}
	priority := uint32(0)
	for _, eps := range [][]*endpointv3.LbEndpoint{primary, secondary} {
		if len(eps) == 0 {
			continue
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: localityRegion},
			LbEndpoints:         eps,
			LoadBalancingWeight: wrapperspb.UInt32(1),
			Priority:            priority,
		})
		priority++
	}
	return cla
}

func lbEndpoint(n Node, addr netip.Addr, weighted bool) *endpointv3.LbEndpoint {
	ep := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(addr.String(), n.Port, corev3.SocketAddress_TCP),
		}},
		HealthStatus: corev3.HealthStatus_UNKNOWN,
	}
	switch {
	case n.Condition == "DRAINING":
		ep.HealthStatus = corev3.HealthStatus_DRAINING
	case !n.Online:
		ep.HealthStatus = corev3.HealthStatus_UNHEALTHY
	}
	if weighted && n.Weight > 0 {
		ep.LoadBalancingWeight = wrapperspb.UInt32(n.Weight)
	}
	return ep
}

func socketAddress(address string, port uint32, protocol corev3.SocketAddress_Protocol) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      protocol,
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// ads is the config source of every dynamic resource: the ADS stream.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// Validate runs go-control-plane's generated validation over every
// resource: what fails it would be refused by the data plane.
// The filter configurations served over ECDS are validated too: Envoy
// refuses one that fails, and the generated validation of a
// TypedExtensionConfig does not look inside its Any.
func (o *Output) Validate() error {
	for _, r := range []Resources{o.Envoy, o.GRPC} {
		messages := r.messages()
		for _, e := range r.Extensions {
			m, err := e.GetTypedConfig().UnmarshalNew()
			if err != nil {
				return fmt.Errorf("%s: %w", e.GetName(), err)
			}
			messages = append(messages, m)
		}
		for _, m := range messages {
			if v, ok := m.(interface{ ValidateAll() error }); ok {
				if err := v.ValidateAll(); err != nil {
					return fmt.Errorf("%T: %w", m, err)
				}
			}
		}
	}
	return nil
}

func (r Resources) messages() []proto.Message {
	var out []proto.Message
	for _, m := range r.Listeners {
		out = append(out, m)
	}
	for _, m := range r.Routes {
		out = append(out, m)
	}
	for _, m := range r.Clusters {
		out = append(out, m)
	}
	for _, m := range r.Endpoints {
		out = append(out, m)
	}
	for _, m := range r.Extensions {
		out = append(out, m)
	}
	for _, m := range r.Secrets {
		out = append(out, m)
	}
	return out
}
