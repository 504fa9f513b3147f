// Package envoy produces the bootstrap configuration of a fleet Envoy (and
// of proxyless gRPC clients) pointing at this control plane's xDS port. It
// is built in the xDS milestone.
package envoy
