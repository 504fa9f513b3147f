// Package xds serves load balancer configuration to the data plane over
// xDS (ADS, state of the world and delta) with go-control-plane's server,
// from a cache of its own, and tracks what every connected client has
// acknowledged. It knows nothing of HTTP or the database: it is given
// marshalled Envoy resources per store revision and reports which changes
// each fleet has applied or rejected.
//
// Files: cache.go (resources, change log, watches), watch.go (what each
// stream is sent), gate.go (large responses take turns), codec.go (full
// states encoded once), tracker.go (ACK/NACK, attribution, status),
// server.go (registration, ending streams, client list, metrics).
package xds
