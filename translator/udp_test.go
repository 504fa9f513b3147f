package translator

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// Golden cases of this feature live with its test (the table in
// translate_test.go is shared by every feature).
func init() {
	// UDP sessions are never counted as a node's active requests: least
	// connections is served as what Envoy would do, random and weighted
	// round robin (see udpAlgorithm).
	goldenCases["udp_least_connections"] = &LoadBalancer{ID: 16, Protocol: "UDP", Port: 5353, Algorithm: "LEAST_CONNECTIONS", TimeoutSeconds: 30,
		VIPs:  []VIP{{"127.1.0.16"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1), node(2, "10.0.0.2", "PRIMARY", "ENABLED", 1)}}
	goldenCases["udp_weighted_least_connections"] = &LoadBalancer{ID: 17, Protocol: "DNS_UDP", Port: 53, Algorithm: "WEIGHTED_LEAST_CONNECTIONS", TimeoutSeconds: 30,
		VIPs:  []VIP{{"127.1.0.17"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1), node(2, "10.0.0.2", "PRIMARY", "ENABLED", 3)}}
}

// No UDP cluster claims a least-request policy, and TCP ones keep theirs.
func TestUDPClustersDoNotClaimLeastRequest(t *testing.T) {
	for _, tc := range []struct {
		protocol, algorithm string
		want                clusterv3.Cluster_LbPolicy
		weights             bool
	}{
		{"UDP", "LEAST_CONNECTIONS", clusterv3.Cluster_RANDOM, false},
		{"UDP_STREAM", "WEIGHTED_LEAST_CONNECTIONS", clusterv3.Cluster_ROUND_ROBIN, true},
		{"DNS_UDP", "ROUND_ROBIN", clusterv3.Cluster_ROUND_ROBIN, false},
		{"TCP", "LEAST_CONNECTIONS", clusterv3.Cluster_LEAST_REQUEST, false},
		{"HTTP", "WEIGHTED_LEAST_CONNECTIONS", clusterv3.Cluster_LEAST_REQUEST, true},
	} {
		lb := &LoadBalancer{ID: 1, Protocol: tc.protocol, Port: 53, Algorithm: tc.algorithm, VIPs: []VIP{{"127.1.0.1"}},
			Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 2), node(2, "10.0.0.2", "PRIMARY", "ENABLED", 5)}}
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		c := out.Envoy.Clusters[0]
		if c.GetLbPolicy() != tc.want {
			t.Errorf("%s %s: policy %v, want %v", tc.protocol, tc.algorithm, c.GetLbPolicy(), tc.want)
		}
		w := out.Envoy.Endpoints[0].GetEndpoints()[0].GetLbEndpoints()[1].GetLoadBalancingWeight().GetValue()
		if got := w == 5; got != tc.weights {
			t.Errorf("%s %s: node weight %d carried=%v, want %v", tc.protocol, tc.algorithm, w, got, tc.weights)
		}
	}
}
