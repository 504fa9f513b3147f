// Package envoy produces the bootstrap configuration that points a data
// plane at this control plane's xDS port:
//
//   - [Bootstrap] renders the JSON bootstrap of a fleet Envoy. It is built
//     as a typed envoy.config.bootstrap.v3.Bootstrap, checked with
//     ValidateAll and marshalled with protojson.
//   - [GRPCBootstrap] renders the JSON bootstrap a proxyless grpc-go client
//     reads from GRPC_XDS_BOOTSTRAP (a file name) or
//     GRPC_XDS_BOOTSTRAP_CONFIG (the contents).
//
// Conventions shared with the xDS server:
//
//   - The fleet a proxy belongs to is the xDS node's cluster field
//     ([Options.Fleet]); the node id is free-form ([Options.NodeID],
//     [DefaultNodeID] gives a hostname-based one).
//   - Everything is served over ADS on one xDS address, host:port. Envoy
//     uses delta ADS (api_type DELTA_GRPC) by default: state of the world
//     must resend every cluster and listener of the fleet when one
//     changes (about 2.8 MB per Envoy per change with 10,000 load
//     balancers), delta only what changed; [Options.SotW] selects state of
//     the world. grpc-go clients use state of the world. An IP address gives a STATIC "xds_cluster", a
//     host name a STRICT_DNS one.
//   - The connection to the control plane is plaintext gRPC unless
//     [Options.CAFile] is set: CAFile alone is server-authenticated TLS,
//     CAFile plus CertFile and KeyFile is mutual TLS. The control plane's
//     certificate must carry the host of XDSAddress as a SAN (DNS or IP),
//     which both Envoy and grpc-go check.
//   - The Envoy admin interface listens on a Unix socket of mode 0600 by
//     default ([DefaultAdminSocket]), on loopback TCP only when asked.
//   - The drain time (Envoy's --drain-time-s, how long a rebuilt listener's
//     connections are drained before they are closed) is a command-line
//     option: [RunArgs] gives the command line, and the bootstrap records
//     it in the node metadata ([DrainTimeMetadataKey]).
//
// Both functions are pure: the same options give byte-identical output.
package envoy
