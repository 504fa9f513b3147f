package translator

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	cswrrv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3"
	leastrequestv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	randomv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	ringhashv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// What proxyless gRPC clients get. gRPC implementations differ in the
// load-balancing policies they know (grpc-js refuses a cluster whose
// lb_policy is LEAST_REQUEST; grpc-go knows it), so the gRPC variant of a
// cluster names its policy as a gRFC A52 load_balancing_policy: an ordered
// list in which every client takes the first policy it supports. The last
// entry is always one every implementation has (round robin). Passive
// health is gRFC A50 outlier detection, which gRPC implements with the
// failure-percentage and success-rate algorithms only (it ignores the
// consecutive_* fields Envoy uses).

// Policies a gRPC variant's cluster may list, by the name of their
// extension. The type URL of each is that of its configuration message.
var (
	policyRandom            = lbPolicy("envoy.load_balancing_policies.random", &randomv3.Random{})
	policyRoundRobin        = lbPolicy("envoy.load_balancing_policies.round_robin", &roundrobinv3.RoundRobin{})
	policyLeastRequest      = lbPolicy("envoy.load_balancing_policies.least_request", &leastrequestv3.LeastRequest{})
	policyRingHash          = lbPolicy("envoy.load_balancing_policies.ring_hash", &ringhashv3.RingHash{HashFunction: ringhashv3.RingHash_XX_HASH})
	policyClientSideWeights = lbPolicy("envoy.load_balancing_policies.client_side_weighted_round_robin", &cswrrv3.ClientSideWeightedRoundRobin{})
)

func lbPolicy(name string, config proto.Message) *clusterv3.LoadBalancingPolicy_Policy {
	return &clusterv3.LoadBalancingPolicy_Policy{TypedExtensionConfig: &corev3.TypedExtensionConfig{
		Name: name, TypedConfig: mustAny(config),
	}}
}

// The lists, built once and shared by every cluster (resources are never
// changed once translated).
var (
	grpcPersistent     = policyList(policyRingHash, policyRoundRobin)
	grpcRandom         = policyList(policyRandom, policyRoundRobin)
	grpcRoundRobin     = policyList(policyRoundRobin)
	grpcWeightedRR     = policyList(policyClientSideWeights, policyRoundRobin)
	grpcLeastRequest   = policyList(policyLeastRequest, policyRoundRobin)
	grpcOutlier        = grpcOutlierDetection(outlierInterval, grpcFailureThreshold, grpcFailureRequestVolume)
	grpcOutlierPassive = grpcOutlierDetection(grpcPassiveInterval, grpcPassiveFailureThreshold, grpcPassiveFailureRequestVolume)
)

func policyList(p ...*clusterv3.LoadBalancingPolicy_Policy) *clusterv3.LoadBalancingPolicy {
	return &clusterv3.LoadBalancingPolicy{Policies: p}
}

// grpcPolicies is the ordered list of load-balancing policies for a load
// balancer's gRPC clients; each client takes the first it supports:
//
//   - session persistence: ring hash (the route hashes on the client's
//     channel, so a channel sticks to a node), else round robin;
//   - RANDOM: random (no gRPC implementation has it today), else round robin;
//   - ROUND_ROBIN: round robin;
//   - WEIGHTED_ROUND_ROBIN: client-side weighted round robin (gRFC A58),
//     else round robin. Neither honours the nodes' static weights: gRPC's
//     round robin ignores endpoint weights, and A58 weighs each node by the
//     load it reports (ORCA), behaving as round robin when nodes report
//     none. grpc-go supports it; grpc-js only when
//     GRPC_EXPERIMENTAL_XDS_WRR_LB=true;
//   - (WEIGHTED_)LEAST_CONNECTIONS: least request (grpc-go), else round
//     robin (grpc-js has no least request).
func grpcPolicies(lb *LoadBalancer) *clusterv3.LoadBalancingPolicy {
	if persistent(lb) && Family(lb.Protocol) == FamilyHTTP {
		return grpcPersistent
	}
	switch lb.Algorithm {
	case "ROUND_ROBIN":
		return grpcRoundRobin
	case "WEIGHTED_ROUND_ROBIN":
		return grpcWeightedRR
	case "LEAST_CONNECTIONS", "WEIGHTED_LEAST_CONNECTIONS":
		return grpcLeastRequest
	}
	return grpcRandom
}

// grpcLegacyPolicy is the cluster's lb_policy for gRPC clients that do not
// read load_balancing_policy (gRPC ignores lb_policy when it is set): one
// every implementation accepts.
func grpcLegacyPolicy(lb *LoadBalancer) clusterv3.Cluster_LbPolicy {
	if persistent(lb) && Family(lb.Protocol) == FamilyHTTP {
		return clusterv3.Cluster_RING_HASH
	}
	return clusterv3.Cluster_ROUND_ROBIN
}

// Passive health for gRPC clients: gRFC A50 failure-percentage ejection,
// which each client evaluates at the end of every interval over the calls
// of that interval (a call fails when it ends with any status but OK). An
// ejected node stays out for the ejection time (60 s, growing with repeated
// ejections, as in Envoy).
const (
	// The default: every 10 s (Envoy's interval), a node more than 99% of
	// whose calls (at least 3) failed is ejected — Envoy's "3 consecutive
	// failures" as near as a percentage gets.
	grpcFailureThreshold     = 99
	grpcFailureRequestVolume = 3
	// checkPassive (Linode: a single 5xx takes the node out): every second,
	// a node more than 1% of whose calls failed is ejected, so a single
	// failed call does it while the node gets fewer than 100 calls a
	// second. The threshold cannot be 0: grpc-go 1.85 re-encodes its
	// parsed outlier detection config with omitempty, and a threshold of
	// 0 comes back as the default, 85.
	grpcPassiveFailureThreshold     = 1
	grpcPassiveFailureRequestVolume = 1
	grpcPassiveInterval             = time.Second
)

// grpcOutlierDetection is the outlier detection of the gRPC variant, with
// only the fields gRPC implements, and Envoy's ejection time and ceiling.
// Success-rate ejection, which gRPC enables unless told otherwise, is off
// (it needs several nodes and compares them with each other; Envoy's
// variant has it off too).
func grpcOutlierDetection(interval time.Duration, threshold, volume uint32) *clusterv3.OutlierDetection {
	return &clusterv3.OutlierDetection{
		Interval:                       durationpb.New(interval),
		BaseEjectionTime:               durationpb.New(ejectionTime),
		MaxEjectionPercent:             wrapperspb.UInt32(100),
		EnforcingSuccessRate:           wrapperspb.UInt32(0),
		FailurePercentageThreshold:     wrapperspb.UInt32(threshold),
		EnforcingFailurePercentage:     wrapperspb.UInt32(100),
		FailurePercentageMinimumHosts:  wrapperspb.UInt32(1),
		FailurePercentageRequestVolume: wrapperspb.UInt32(volume),
	}
}

// lrsSelf is the load reporting server of the gRPC variant: the xDS
// server itself (gRFC A27), where lbaasd aggregates the reports per load
// balancer.
var lrsSelf = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}

// grpcCluster is the gRPC variant of a load balancer's cluster: Envoy's
// discovery and endpoints (shared, not copied), with the policy and the
// outlier detection gRPC clients understand. It leaves out what gRPC
// ignores (connect timeout, panic threshold, upstream HTTP options).
func grpcCluster(lb *LoadBalancer, envoy *clusterv3.Cluster) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 envoy.GetName(),
		ClusterDiscoveryType: envoy.GetClusterDiscoveryType(),
		EdsClusterConfig:     envoy.GetEdsClusterConfig(),
		DnsLookupFamily:      envoy.GetDnsLookupFamily(),
		LoadAssignment:       envoy.GetLoadAssignment(),
		LbPolicy:             grpcLegacyPolicy(lb),
		LoadBalancingPolicy:  grpcPolicies(lb),
		OutlierDetection:     grpcOutlier,
		// Clients report their load (LRS) to the control plane they
		// get this cluster from: requests per cluster and locality.
		LrsServer: lrsSelf,
	}
	if lb.CheckPassive && Family(lb.Protocol) == FamilyHTTP {
		c.OutlierDetection = grpcOutlierPassive
	}
	return c
}
