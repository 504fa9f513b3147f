// Package translator turns the stored model of one load balancer into Envoy
// resources (listeners, clusters, endpoints, routes). It is pure: no
// database, network or clock; the same input gives byte-identical output.
// It is built in the xDS milestone (see docs/architecture.md).
package translator
