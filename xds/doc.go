// Package xds serves the translator's resources to the Envoy fleet over
// ADS (state of the world and delta) and tracks each proxy's ACKs and
// NACKs to drive load balancer status. It is built in the xDS milestone.
package xds
