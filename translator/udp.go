package translator

// udpAlgorithm is the algorithm a UDP load balancer really gets. Envoy's
// udp_proxy picks a node once per session (a client address and port,
// until it idles out) and counts sessions only against the cluster's
// connection limit, never as a host's active requests (rq_active), which
// is all LEAST_REQUEST compares. So every node always looks idle to it:
// LEAST_CONNECTIONS would be its power-of-two-choices over ties, a uniform
// random pick, and WEIGHTED_LEAST_CONNECTIONS its weighted scheduler with
// nothing to divide the weights by, a weighted round robin. The cluster
// says so: RANDOM and (weighted) ROUND_ROBIN, not a least-connections
// policy that cannot count.
func udpAlgorithm(algorithm string) string {
	switch algorithm {
	case "LEAST_CONNECTIONS":
		return "RANDOM"
	case "WEIGHTED_LEAST_CONNECTIONS":
		return "WEIGHTED_ROUND_ROBIN"
	}
	return algorithm
}
