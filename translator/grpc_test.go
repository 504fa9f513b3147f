package translator

import (
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// The policies each gRPC implementation registers for load_balancing_policy
// (gRFC A52), by configuration type name, with its default environment:
//   - grpc-go v1.85.0: internal/xds/xdsclient/xdslbregistry/converter
//     (init registers these, plus wrr_locality, pick_first and TypedStruct);
//   - @grpc/grpc-js-xds 1.14.1: registerLbPolicy calls (round_robin,
//     ring_hash, wrr_locality, TypedStruct; pick_first only with
//     GRPC_EXPERIMENTAL_PICKFIRST_LB_CONFIG=true, client-side weighted
//     round robin only with GRPC_EXPERIMENTAL_XDS_WRR_LB=true).
//
// Both skip an entry they do not know and take the first they do; an
// unknown list is a NACK. e2e/proxyless_test.go and e2e/grpcjs_test.go
// check the same with the real clients.
var (
	grpcGoPolicies = []string{"RoundRobin", "LeastRequest", "RingHash", "ClientSideWeightedRoundRobin"}
	grpcJSPolicies = []string{"RoundRobin", "RingHash"}
)

// chosen is the policy an implementation supporting known takes from the
// list, or "" when it would refuse the cluster.
func chosen(policies []*clusterv3.LoadBalancingPolicy_Policy, known []string) string {
	for _, p := range policies {
		url := p.GetTypedExtensionConfig().GetTypedConfig().GetTypeUrl()
		name := url[strings.LastIndex(url, ".")+1:]
		if slices.Contains(known, name) {
			return name
		}
	}
	return ""
}

// Every setting, and what each kind of client gets for it.
func TestGRPCPolicyPerClient(t *testing.T) {
	for _, tc := range []struct {
		algorithm, persistence string
		envoy                  string   // Envoy's lb_policy
		list                   []string // the gRPC variant's load_balancing_policy
		grpcGo, grpcJS         string
		legacy                 string // the gRPC variant's lb_policy
	}{
		{"RANDOM", "", "RANDOM", []string{"Random", "RoundRobin"}, "RoundRobin", "RoundRobin", "ROUND_ROBIN"},
		{"ROUND_ROBIN", "", "ROUND_ROBIN", []string{"RoundRobin"}, "RoundRobin", "RoundRobin", "ROUND_ROBIN"},
		{"WEIGHTED_ROUND_ROBIN", "", "ROUND_ROBIN", []string{"ClientSideWeightedRoundRobin", "RoundRobin"}, "ClientSideWeightedRoundRobin", "RoundRobin", "ROUND_ROBIN"},
		{"LEAST_CONNECTIONS", "", "LEAST_REQUEST", []string{"LeastRequest", "RoundRobin"}, "LeastRequest", "RoundRobin", "ROUND_ROBIN"},
		{"WEIGHTED_LEAST_CONNECTIONS", "", "LEAST_REQUEST", []string{"LeastRequest", "RoundRobin"}, "LeastRequest", "RoundRobin", "ROUND_ROBIN"},
		{"LEAST_CONNECTIONS", "HTTP_COOKIE", "RING_HASH", []string{"RingHash", "RoundRobin"}, "RingHash", "RingHash", "RING_HASH"},
		{"RANDOM", "SOURCE_IP", "RING_HASH", []string{"RingHash", "RoundRobin"}, "RingHash", "RingHash", "RING_HASH"},
	} {
		t.Run(tc.algorithm+"/"+tc.persistence, func(t *testing.T) {
			lb := &LoadBalancer{ID: 1, Protocol: "HTTP", Port: 80, Algorithm: tc.algorithm, Persistence: tc.persistence,
				VIPs: []VIP{{"127.1.0.1"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}}
			out, err := Translate(lb)
			if err != nil {
				t.Fatal(err)
			}
			validate(t, out)
			envoy, grpc := out.Envoy.Clusters[0], out.GRPC.Clusters[0]
			if got := envoy.GetLbPolicy().String(); got != tc.envoy {
				t.Errorf("Envoy's lb_policy %s, want %s", got, tc.envoy)
			}
			if envoy.GetLoadBalancingPolicy() != nil {
				t.Errorf("Envoy's cluster has a load_balancing_policy: %v", envoy.GetLoadBalancingPolicy())
			}
			policies := grpc.GetLoadBalancingPolicy().GetPolicies()
			var list []string
			for _, p := range policies {
				url := p.GetTypedExtensionConfig().GetTypedConfig().GetTypeUrl()
				list = append(list, url[strings.LastIndex(url, ".")+1:])
			}
			if !slices.Equal(list, tc.list) {
				t.Errorf("gRPC load_balancing_policy %v, want %v", list, tc.list)
			}
			if got := chosen(policies, grpcGoPolicies); got != tc.grpcGo {
				t.Errorf("grpc-go takes %q, want %q", got, tc.grpcGo)
			}
			if got := chosen(policies, grpcJSPolicies); got != tc.grpcJS {
				t.Errorf("grpc-js takes %q, want %q", got, tc.grpcJS)
			}
			if got := grpc.GetLbPolicy().String(); got != tc.legacy {
				t.Errorf("gRPC lb_policy %s, want %s", got, tc.legacy)
			}
		})
	}
}

// Passive health per client kind: Envoy counts consecutive failures; gRPC
// clients get failure-percentage ejection only (they ignore consecutive_*).
func TestGRPCOutlierDetection(t *testing.T) {
	for _, tc := range []struct {
		protocol                 string
		checkPassive             bool
		envoy5xx                 uint32 // Envoy's consecutive_5xx
		grpcThreshold, grpcCalls uint32 // gRPC's failure percentage threshold and request volume
		grpcInterval             time.Duration
	}{
		{"HTTP", false, 3, 99, 3, 10 * time.Second},
		{"HTTP", true, 1, 1, 1, time.Second},
		{"TCP", true, 3, 99, 3, 10 * time.Second}, // checkPassive is for HTTP load balancers
	} {
		lb := &LoadBalancer{ID: 1, Protocol: tc.protocol, Port: 80, Algorithm: "ROUND_ROBIN", CheckPassive: tc.checkPassive,
			VIPs: []VIP{{"127.1.0.1"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}}
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		validate(t, out)
		e, g := out.Envoy.Clusters[0].GetOutlierDetection(), out.GRPC.Clusters[0].GetOutlierDetection()
		if got := e.GetConsecutive_5Xx().GetValue(); got != tc.envoy5xx {
			t.Errorf("%s checkPassive=%v: Envoy consecutive_5xx %d, want %d", tc.protocol, tc.checkPassive, got, tc.envoy5xx)
		}
		if g.GetConsecutive_5Xx() != nil || g.GetConsecutiveGatewayFailure() != nil {
			t.Errorf("%s checkPassive=%v: gRPC gets consecutive_* fields, which it ignores: %v", tc.protocol, tc.checkPassive, g)
		}
		if got := g.GetFailurePercentageThreshold().GetValue(); got != tc.grpcThreshold {
			t.Errorf("%s checkPassive=%v: gRPC failure_percentage_threshold %d, want %d", tc.protocol, tc.checkPassive, got, tc.grpcThreshold)
		}
		if got := g.GetFailurePercentageRequestVolume().GetValue(); got != tc.grpcCalls {
			t.Errorf("%s checkPassive=%v: gRPC failure_percentage_request_volume %d, want %d", tc.protocol, tc.checkPassive, got, tc.grpcCalls)
		}
		if got := g.GetInterval().AsDuration(); got != tc.grpcInterval {
			t.Errorf("%s checkPassive=%v: gRPC interval %v, want %v", tc.protocol, tc.checkPassive, got, tc.grpcInterval)
		}
		// gRPC runs success-rate ejection unless told not to.
		if g.GetEnforcingSuccessRate() == nil || g.GetEnforcingSuccessRate().GetValue() != 0 {
			t.Errorf("gRPC success-rate ejection is not off: %v", g.GetEnforcingSuccessRate())
		}
		if g.GetEnforcingFailurePercentage().GetValue() != 100 || g.GetFailurePercentageMinimumHosts().GetValue() != 1 {
			t.Errorf("gRPC failure-percentage ejection not enforced for a single node: %v", g)
		}
	}
}
