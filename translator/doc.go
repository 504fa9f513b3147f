// Package translator turns the stored model of one load balancer into Envoy
// resources (listeners, clusters, endpoints, routes, and the filter
// configurations Envoy takes over ECDS, so that edits leave listeners as
// they are: ecds.go, drain.go). It is pure: no
// database, network or clock; the same input gives byte-identical output.
// It is built in the xDS milestone (see docs/architecture.md).
package translator
