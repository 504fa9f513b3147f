package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	metricsconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/translator"
)

const (
	// XDSClusterName is the name of the static cluster through which Envoy
	// reaches the control plane: xDS, and the connection logs the
	// translator streams there.
	XDSClusterName = translator.ControlPlaneCluster
	// DefaultAdminAddress is the conventional loopback address of Envoy's
	// admin interface, for Options.AdminAddress.
	DefaultAdminAddress = "127.0.0.1:9901"
	// DefaultAdminSocket is where the Envoy admin interface listens when
	// Options.AdminAddress and Options.AdminSocket are empty: a Unix
	// socket only its owner can use, so no network path (not even a proxy
	// on the same host pointed at loopback) reaches /config_dump or
	// /quitquitquit.
	DefaultAdminSocket = "/tmp/lbaas-envoy-admin.sock"

	httpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	tlsTransportSocketName  = "envoy.transport_sockets.tls"

	xdsConnectTimeout = time.Second
	// HTTP/2 PINGs on the ADS connection so that Envoy notices a dead
	// control plane (or a silently dropped connection) and reconnects.
	xdsKeepaliveInterval = 30 * time.Second
	xdsKeepaliveTimeout  = 5 * time.Second
)

// Options describes one data plane node and how it reaches the control
// plane.
type Options struct {
	// NodeID is the xDS node id; free-form and required. DefaultNodeID
	// gives a hostname-based one.
	NodeID string
	// Fleet is the xDS node cluster: the fleet the node belongs to.
	// Required.
	Fleet string
	// XDSAddress is host:port of the control plane's xDS (ADS) port.
	// Required. The host is an IP address or a DNS name.
	XDSAddress string
	// MoreXDSAddresses are the xDS ports of further control plane
	// replicas. Envoy balances its ADS stream over all of them (one
	// cluster, an endpoint each) and reconnects to another when one
	// fails. grpc-go lists them as fallback servers (gRFC A71): it uses
	// the next one only when it cannot reach the one before *and* lacks a
	// resource it watches, so a client that has its configuration stays
	// with its (dead) server; for failover of running gRPC clients, give
	// one name that resolves to every replica (see GRPCBootstrap).
	MoreXDSAddresses []string
	// AdminAddress puts the Envoy admin listener on ip:port, a loopback
	// address; when empty, it listens on AdminSocket. Unused by
	// GRPCBootstrap.
	AdminAddress string
	// AdminSocket is the path of the Unix socket (mode 0600) the admin
	// listens on when AdminAddress is empty; DefaultAdminSocket when empty.
	AdminSocket string
	// CAFile, CertFile and KeyFile are PEM files for TLS to the control
	// plane. All empty: plaintext. CAFile alone: TLS verifying the control
	// plane. All three: mutual TLS. CertFile and KeyFile go together and
	// need CAFile.
	CAFile, CertFile, KeyFile string
	// SotW makes Envoy use state-of-the-world ADS (api_type GRPC) instead
	// of the default, delta ADS (DELTA_GRPC). State of the world resends
	// every cluster and every listener of the fleet whenever one of them
	// changes (about 2.8 MB per Envoy per change with 10,000 load
	// balancers); delta sends the changed resources only. Unused by
	// GRPCBootstrap (grpc-go speaks state of the world).
	SotW bool
	// DrainTime is how long Envoy drains the connections of a listener it
	// rebuilds before closing them (its --drain-time-s; see RunArgs), in
	// whole seconds; DefaultDrainTime when zero. The bootstrap records it
	// in the node metadata. Unused by GRPCBootstrap.
	DrainTime time.Duration
	// StatsFlushInterval is how often Envoy sends its stats to the
	// control plane (loadstats.MetricsFlushInterval when zero). Unused by
	// GRPCBootstrap.
	StatsFlushInterval time.Duration
}

// DefaultNodeID returns a node id derived from the host name, for callers
// that have nothing better.
func DefaultNodeID() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("envoy: node id from host name: %w", err)
	}
	if h == "" {
		return "", errors.New("envoy: node id from host name: empty host name")
	}
	return h, nil
}

// target is a validated host:port.
type target struct {
	host string     // as given, without brackets
	addr netip.Addr // valid when host is an IP literal
	port uint32     // 1..65535
	raw  string     // the original host:port
}

func (t target) isIP() bool { return t.addr.IsValid() }

// validate checks the options shared by both bootstraps and returns the
// xDS targets in order. gRPC target URIs (dns:) are accepted when
// grpcTargets is set.
func (o Options) validate(grpcTargets bool) ([]target, error) {
	if strings.TrimSpace(o.NodeID) == "" {
		return nil, errors.New("envoy: NodeID is required")
	}
	if strings.TrimSpace(o.Fleet) == "" {
		return nil, errors.New("envoy: Fleet is required")
	}
	if o.XDSAddress == "" {
		return nil, errors.New("envoy: XDSAddress is required")
	}
	var targets []target
	for i, a := range append([]string{o.XDSAddress}, o.MoreXDSAddresses...) {
		field := "XDSAddress"
		if i > 0 {
			field = "MoreXDSAddresses"
		}
		parse := parseTarget
		if grpcTargets {
			parse = parseGRPCTarget
		}
		t, err := parse(a)
		if err != nil {
			return nil, fmt.Errorf("envoy: %s: %w", field, err)
		}
		targets = append(targets, t)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("envoy: CertFile and KeyFile must be set together")
	}
	if o.CertFile != "" && o.CAFile == "" {
		// Without a CA neither Envoy (no validation context: the control
		// plane is not verified at all) nor grpc-go (system roots) would
		// check the control plane the way the operator expects.
		return nil, errors.New("envoy: CAFile is required with CertFile and KeyFile")
	}
	return targets, nil
}

// parseGRPCTarget accepts host:port, or a gRPC target URI of the dns
// scheme naming host:port (dns:///host:port, or dns://resolver/host:port
// to ask that DNS server): a name that resolves to every replica, which
// grpc-go's channel walks through when the one it uses fails.
func parseGRPCTarget(s string) (target, error) {
	if !strings.HasPrefix(s, "dns:") {
		return parseTarget(s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return target{}, fmt.Errorf("%q is not a dns:///host:port or dns://resolver/host:port target", s)
	}
	t, err := parseTarget(strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		return target{}, err
	}
	t.raw = s
	return t, nil
}

func (o Options) tls() bool { return o.CAFile != "" }

func parseTarget(hostport string) (target, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return target{}, fmt.Errorf("%q is not host:port: %w", hostport, err)
	}
	if host == "" {
		return target{}, fmt.Errorf("%q has no host", hostport)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return target{}, fmt.Errorf("%q: port must be 1-65535", hostport)
	}
	t := target{host: host, port: uint32(port), raw: hostport}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return target{}, fmt.Errorf("%q: IPv6 zones are not supported", hostport)
		}
		t.addr = a
		return t, nil
	}
	if !validHostname(host) {
		return target{}, fmt.Errorf("%q: %q is neither an IP address nor a DNS name", hostport, host)
	}
	return t, nil
}

// validHostname accepts DNS names made of letters, digits, '-' and '_'
// (labels of 1-63 characters, 253 in all, an optional trailing dot).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// adminListener is the admin interface's address: the Unix socket, or
// the loopback address when one is given.
func (o Options) adminListener() (*corev3.Address, error) {
	if o.AdminAddress == "" {
		path := o.AdminSocket
		if path == "" {
			path = DefaultAdminSocket
		}
		if !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("envoy: AdminSocket %q must be an absolute path", path)
		}
		return &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path, Mode: 0o600}}}, nil
	}
	admin, err := o.adminTarget()
	if err != nil {
		return nil, err
	}
	return socketAddress(admin.addr.String(), admin.port), nil
}

// adminTarget validates the admin address: an IP literal on loopback.
func (o Options) adminTarget() (target, error) {
	a := o.AdminAddress
	host, portStr, err := net.SplitHostPort(a)
	if err != nil {
		return target{}, fmt.Errorf("envoy: AdminAddress %q is not ip:port: %w", a, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return target{}, fmt.Errorf("envoy: AdminAddress %q: host must be a loopback IP address", a)
	}
	if !ip.IsLoopback() {
		return target{}, fmt.Errorf("envoy: AdminAddress %q: the admin interface must listen on loopback", a)
	}
	// Port 0 is allowed: Envoy picks one (see --admin-address-path).
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return target{}, fmt.Errorf("envoy: AdminAddress %q: port must be 0-65535", a)
	}
	return target{host: host, addr: ip, port: uint32(port), raw: a}, nil
}

// Bootstrap returns the JSON bootstrap of a fleet Envoy: node {id, cluster},
// LDS and CDS over ADS (delta gRPC unless SotW, API v3) through the static cluster
// "xds_cluster" (HTTP/2, 1 s connect timeout, TLS when CAFile is set), and
// the admin interface on AdminAddress. Field names are the proto names
// (snake_case, as in Envoy's documentation); the output is indented with
// two spaces and ends with a newline.
func Bootstrap(o Options) ([]byte, error) {
	b, err := bootstrapProto(o)
	if err != nil {
		return nil, err
	}
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("envoy: marshal bootstrap: %w", err)
	}
	return stableJSON(out)
}

// stableJSON re-indents JSON. protojson deliberately varies its whitespace
// from one build to the next; the bootstrap is diffed and kept in golden
// files, so fix it.
func stableJSON(in []byte) ([]byte, error) {
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, in); err != nil {
		return nil, fmt.Errorf("envoy: compact bootstrap: %w", err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("envoy: indent bootstrap: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func bootstrapProto(o Options) (*bootstrapv3.Bootstrap, error) {
	xds, err := o.validate(false)
	if err != nil {
		return nil, err
	}
	admin, err := o.adminListener()
	if err != nil {
		return nil, err
	}
	cluster, err := xdsCluster(o, xds)
	if err != nil {
		return nil, err
	}
	ads := func() *corev3.ConfigSource {
		return &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		}
	}
	apiType := corev3.ApiConfigSource_DELTA_GRPC
	if o.SotW {
		apiType = corev3.ApiConfigSource_GRPC
	}
	metadata, err := o.nodeMetadata()
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: o.NodeID, Cluster: o.Fleet, Metadata: metadata},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:                   apiType,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices:              controlPlane(),
			},
			LdsConfig: ads(),
			CdsConfig: ads(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{cluster},
		},
		// Envoy reports its load (LRS: requests per cluster and locality)
		// to the control plane, which aggregates it per load balancer.
		ClusterManager: &bootstrapv3.ClusterManager{
			LoadStatsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices:        controlPlane(),
			},
		},
		Admin: &bootstrapv3.Admin{Address: admin},
	}
	if err := metricsSink(b, o.StatsFlushInterval); err != nil {
		return nil, err
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy: invalid bootstrap: %w", err)
	}
	return b, nil
}

// metricsSink makes Envoy stream its stats to the control plane (the
// metrics service sink, envoy.service.metrics.v3, on the xDS port): the
// per-load-balancer listener and cluster stats the statistics and usage
// need, counters as deltas, full names (tags not extracted: the names
// carry the load balancers). The stats matcher keeps only those, and
// Envoy's own health (server, managers, control plane, the xDS cluster):
// without it every flush would send every stat of every listener and
// cluster.
func metricsSink(b *bootstrapv3.Bootstrap, every time.Duration) error {
	sink, err := anypb.New(&metricsconfigv3.MetricsServiceConfig{
		GrpcService:            controlPlane()[0],
		TransportApiVersion:    corev3.ApiVersion_V3,
		ReportCountersAsDeltas: wrapperspb.Bool(true),
		EmitTagsAsLabels:       false,
	})
	if err != nil {
		return fmt.Errorf("envoy: %w", err)
	}
	b.StatsSinks = []*metricsconfigv3.StatsSink{{
		Name:       "envoy.stat_sinks.metrics_service",
		ConfigType: &metricsconfigv3.StatsSink_TypedConfig{TypedConfig: sink},
	}}
	if every <= 0 {
		every = loadstats.MetricsFlushInterval
	}
	b.StatsFlushInterval = durationpb.New(every)
	keep := []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
		SafeRegex: &matcherv3.RegexMatcher{Regex: loadstats.StatsMatcher()},
	}}}
	for _, prefix := range []string{"server.", "cluster_manager.", "listener_manager.", "control_plane.", "cluster." + XDSClusterName + "."} {
		keep = append(keep, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: prefix}})
	}
	b.StatsConfig = &metricsconfigv3.StatsConfig{StatsMatcher: &metricsconfigv3.StatsMatcher{
		StatsMatcher: &metricsconfigv3.StatsMatcher_InclusionList{InclusionList: &matcherv3.ListStringMatcher{Patterns: keep}},
	}}
	return nil
}

// controlPlane is the gRPC service of the control plane, through the
// bootstrap's cluster.
func controlPlane() []*corev3.GrpcService {
	return []*corev3.GrpcService{{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName},
		},
	}}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func xdsCluster(o Options, targets []target) (*clusterv3.Cluster, error) {
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
						ConnectionKeepalive: &corev3.KeepaliveSettings{
							Interval: durationpb.New(xdsKeepaliveInterval),
							Timeout:  durationpb.New(xdsKeepaliveTimeout),
						},
					},
				},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	static := true
	var endpoints []*endpointv3.LbEndpoint
	for _, t := range targets {
		host := t.host
		if t.isIP() {
			host = t.addr.String()
		} else {
			static = false
		}
		endpoints = append(endpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, t.port)}},
		})
	}
	c := &clusterv3.Cluster{
		Name:           XDSClusterName,
		ConnectTimeout: durationpb.New(xdsConnectTimeout),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			httpProtocolOptionsName: h2,
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: XDSClusterName,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: endpoints}},
		},
	}
	if static {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if o.tls() {
		ts, err := upstreamTLS(o, targets)
		if err != nil {
			return nil, err
		}
		c.TransportSocket = ts
	}
	return c, nil
}

// upstreamTLS verifies the control plane against CAFile and the host of
// its address (as grpc-go does; with several addresses, any of their
// hosts), and presents CertFile/KeyFile if set.
func upstreamTLS(o Options, targets []target) (*corev3.TransportSocket, error) {
	var sans []*tlsv3.SubjectAltNameMatcher
	names := map[string]bool{}
	for _, t := range targets {
		san := &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: strings.TrimSuffix(t.host, ".")},
			},
		}
		if t.isIP() {
			san.SanType = tlsv3.SubjectAltNameMatcher_IP_ADDRESS
			san.Matcher.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: t.addr.String()}
		} else {
			names[strings.TrimSuffix(t.host, ".")] = true
		}
		sans = append(sans, san)
	}
	common := &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2"},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa:                 fileSource(o.CAFile),
				MatchTypedSubjectAltNames: sans,
			},
		},
	}
	if o.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(o.CertFile),
			PrivateKey:       fileSource(o.KeyFile),
		}}
	}
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: common}
	if len(names) == 1 {
		// One cluster has one SNI: the name, when there is a single one.
		for name := range names {
			ctx.Sni = name
		}
	}
	a, err := anypb.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("envoy: %w", err)
	}
	return &corev3.TransportSocket{
		Name:       tlsTransportSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}, nil
}

func fileSource(name string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
}

// The grpc-go bootstrap (gRFC A27, A65 for "tls" channel credentials), as
// parsed by google.golang.org/grpc/internal/xds/bootstrap. Field order is
// the output order.
type grpcBootstrap struct {
	XDSServers []grpcXDSServer `json:"xds_servers"`
	Node       grpcNode        `json:"node"`
}

type grpcXDSServer struct {
	ServerURI      string             `json:"server_uri"`
	ChannelCreds   []grpcChannelCreds `json:"channel_creds"`
	ServerFeatures []string           `json:"server_features"`
}

type grpcChannelCreds struct {
	Type   string         `json:"type"`
	Config *grpcTLSConfig `json:"config,omitempty"`
}

type grpcTLSConfig struct {
	CACertificateFile string `json:"ca_certificate_file,omitempty"`
	CertificateFile   string `json:"certificate_file,omitempty"`
	PrivateKeyFile    string `json:"private_key_file,omitempty"`
}

type grpcNode struct {
	ID       string       `json:"id"`
	Cluster  string       `json:"cluster"`
	Locality grpcLocality `json:"locality"`
}

type grpcLocality struct{}

// GRPCBootstrap returns the JSON bootstrap of a proxyless grpc-go client
// (GRPC_XDS_BOOTSTRAP names a file holding it, GRPC_XDS_BOOTSTRAP_CONFIG
// holds it directly): an xDS server at XDSAddress (then one for each of
// MoreXDSAddresses, grpc-go's fallbacks) with "insecure" channel
// credentials, or "tls" ones (ca_certificate_file, certificate_file,
// private_key_file) when CAFile is set, and node {id, cluster: Fleet}.
// AdminAddress is ignored. The output is indented with two spaces and ends
// with a newline.
//
// An address may be a gRPC target URI of the dns scheme (dns:///host:port,
// dns://resolver/host:port); a plain host:port is resolved by DNS too.
// When the name resolves to several replicas, grpc-go's channel connects
// to the first that answers and, when that one fails, to the next: that
// is how running clients move to a live replica.
func GRPCBootstrap(o Options) ([]byte, error) {
	targets, err := o.validate(true)
	if err != nil {
		return nil, err
	}
	creds := grpcChannelCreds{Type: "insecure"}
	if o.tls() {
		// grpc-go's file watcher refuses a certificate and a key in
		// different directories (so that a rotation of both is seen
		// atomically); fail here rather than in every client.
		if o.CertFile != "" && filepath.Dir(o.CertFile) != filepath.Dir(o.KeyFile) {
			return nil, errors.New("envoy: grpc-go needs CertFile and KeyFile in the same directory")
		}
		creds = grpcChannelCreds{Type: "tls", Config: &grpcTLSConfig{
			CACertificateFile: o.CAFile,
			CertificateFile:   o.CertFile,
			PrivateKeyFile:    o.KeyFile,
		}}
	}
	b := grpcBootstrap{Node: grpcNode{ID: o.NodeID, Cluster: o.Fleet}}
	for _, t := range targets {
		b.XDSServers = append(b.XDSServers, grpcXDSServer{
			ServerURI:      t.raw,
			ChannelCreds:   []grpcChannelCreds{creds},
			ServerFeatures: []string{"xds_v3"},
		})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("envoy: marshal gRPC bootstrap: %w", err)
	}
	return out.Bytes(), nil
}
