package envoy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testTimeout bounds every end-to-end check.
const testTimeout = 10 * time.Second

// childEnv marks a re-executed test binary that plays a proxyless grpc-go
// client configured the production way, through GRPC_XDS_BOOTSTRAP_CONFIG.
const childEnv = "LBAAS_ENVOY_TEST_GRPC_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(grpcClientChild())
	}
	os.Exit(m.Run())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var bootstrapCases = []struct {
	name    string
	opts    Options
	static  bool   // STATIC (IP) rather than STRICT_DNS (host name)
	epHost  string // address in the load assignment
	epPort  uint32
	admin   string
	tls     bool
	mtls    bool
	sanType tlsv3.SubjectAltNameMatcher_SanType
}{
	{
		name:   "bootstrap_ip",
		opts:   Options{NodeID: "envoy-1", Fleet: "default", XDSAddress: "10.0.0.5:18000"},
		static: true, epHost: "10.0.0.5", epPort: 18000, admin: "unix:" + DefaultAdminSocket,
	},
	{
		name:   "bootstrap_ip_sotw",
		opts:   Options{NodeID: "envoy-1", Fleet: "default", XDSAddress: "10.0.0.5:18000", SotW: true},
		static: true, epHost: "10.0.0.5", epPort: 18000, admin: "unix:" + DefaultAdminSocket,
	},
	{
		name: "bootstrap_hostname",
		opts: Options{NodeID: "edge-7.example", Fleet: "edge", XDSAddress: "xds.lbaas.internal:18000", AdminAddress: "127.0.0.1:19901",
			DrainTime: 30 * time.Second},
		static: false, epHost: "xds.lbaas.internal", epPort: 18000, admin: "127.0.0.1:19901",
	},
	{
		name: "bootstrap_ipv6_tls",
		opts: Options{NodeID: "envoy-6", Fleet: "v6", XDSAddress: "[2001:db8::5]:18000", AdminAddress: "[::1]:9901",
			CAFile: "/etc/lbaas/xds/ca.pem"},
		static: true, epHost: "2001:db8::5", epPort: 18000, admin: "[::1]:9901",
		tls: true, sanType: tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
	},
	{
		name: "bootstrap_hostname_mtls",
		opts: Options{NodeID: "envoy-2", Fleet: "default", XDSAddress: "xds.lbaas.internal:18000",
			CAFile: "/etc/lbaas/xds/ca.pem", CertFile: "/etc/lbaas/xds/tls.crt", KeyFile: "/etc/lbaas/xds/tls.key"},
		static: false, epHost: "xds.lbaas.internal", epPort: 18000, admin: "unix:" + DefaultAdminSocket,
		tls: true, mtls: true, sanType: tlsv3.SubjectAltNameMatcher_DNS,
	},
}

func TestBootstrap(t *testing.T) {
	for _, tc := range bootstrapCases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Bootstrap(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", out)

			again, err := Bootstrap(tc.opts)
			if err != nil || !bytes.Equal(out, again) {
				t.Fatalf("Bootstrap is not deterministic (err %v)", err)
			}

			// The file (not only the in-memory proto) must read back as a
			// valid Bootstrap, identical to what was built.
			fromFile, err := os.ReadFile(filepath.Join("testdata", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var b bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(fromFile, &b); err != nil {
				t.Fatalf("protojson.Unmarshal: %v", err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatalf("ValidateAll: %v", err)
			}
			built, err := bootstrapProto(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&b, built) {
				t.Errorf("golden file does not round-trip to the built proto")
			}
			checkBootstrap(t, &b, tc.opts, tc.static, tc.epHost, tc.epPort, tc.admin, tc.tls, tc.mtls, tc.sanType)

			envoyValidate(t, out, tc.tls)
		})
	}
}

func checkBootstrap(t *testing.T, b *bootstrapv3.Bootstrap, o Options, static bool, epHost string, epPort uint32,
	admin string, tls, mtls bool, sanType tlsv3.SubjectAltNameMatcher_SanType) {
	t.Helper()
	if b.GetNode().GetId() != o.NodeID || b.GetNode().GetCluster() != o.Fleet {
		t.Errorf("node = %v, want id %q cluster %q", b.GetNode(), o.NodeID, o.Fleet)
	}

	// Admin: a Unix socket only its owner may use, or loopback.
	if pipe := b.GetAdmin().GetAddress().GetPipe(); pipe != nil {
		if got := "unix:" + pipe.GetPath(); got != admin || pipe.GetMode() != 0o600 {
			t.Errorf("admin = %s mode %o, want %s mode 600", got, pipe.GetMode(), admin)
		}
	} else {
		sa := b.GetAdmin().GetAddress().GetSocketAddress()
		ip, err := netip.ParseAddr(sa.GetAddress())
		if err != nil || !ip.IsLoopback() {
			t.Errorf("admin address %q is not a loopback IP", sa.GetAddress())
		}
		if got := net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())); got != admin {
			t.Errorf("admin = %s, want %s", got, admin)
		}
	}

	// ADS, v3, node only on the first message, through xds_cluster.
	dr := b.GetDynamicResources()
	ads := dr.GetAdsConfig()
	// Delta unless state of the world is asked for.
	wantAPI := corev3.ApiConfigSource_DELTA_GRPC
	if o.SotW {
		wantAPI = corev3.ApiConfigSource_GRPC
	}
	if ads.GetApiType() != wantAPI || ads.GetTransportApiVersion() != corev3.ApiVersion_V3 ||
		!ads.GetSetNodeOnFirstMessageOnly() {
		t.Errorf("ads_config = %v", ads)
	}
	if len(ads.GetGrpcServices()) != 1 || ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != XDSClusterName {
		t.Errorf("ads_config grpc_services = %v", ads.GetGrpcServices())
	}
	for name, cs := range map[string]*corev3.ConfigSource{"lds": dr.GetLdsConfig(), "cds": dr.GetCdsConfig()} {
		if cs.GetAds() == nil || cs.GetResourceApiVersion() != corev3.ApiVersion_V3 {
			t.Errorf("%s_config = %v, want ads {} and V3", name, cs)
		}
	}

	// The static xds_cluster.
	cl := b.GetStaticResources().GetClusters()
	if len(cl) != 1 || cl[0].GetName() != XDSClusterName {
		t.Fatalf("static clusters = %v", cl)
	}
	c := cl[0]
	wantType := clusterv3.Cluster_STRICT_DNS
	if static {
		wantType = clusterv3.Cluster_STATIC
	}
	if c.GetType() != wantType {
		t.Errorf("xds_cluster type = %v, want %v", c.GetType(), wantType)
	}
	if c.GetConnectTimeout().AsDuration() != time.Second {
		t.Errorf("connect_timeout = %v", c.GetConnectTimeout().AsDuration())
	}
	var hpo httpv3.HttpProtocolOptions
	if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&hpo); err != nil {
		t.Errorf("HttpProtocolOptions: %v", err)
	} else if hpo.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("xds_cluster is not HTTP/2: %v", &hpo)
	}
	eps := c.GetLoadAssignment().GetEndpoints()
	if c.GetLoadAssignment().GetClusterName() != XDSClusterName || len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
		t.Fatalf("load_assignment = %v", c.GetLoadAssignment())
	}
	ep := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if ep.GetAddress() != epHost || ep.GetPortValue() != epPort {
		t.Errorf("xds endpoint = %s:%d, want %s:%d", ep.GetAddress(), ep.GetPortValue(), epHost, epPort)
	}

	ts := c.GetTransportSocket()
	if !tls {
		if ts != nil {
			t.Errorf("plaintext bootstrap has a transport socket: %v", ts)
		}
		return
	}
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Fatalf("transport socket = %v", ts)
	}
	var utc tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&utc); err != nil {
		t.Fatal(err)
	}
	vc := utc.GetCommonTlsContext().GetValidationContext()
	if vc.GetTrustedCa().GetFilename() != o.CAFile {
		t.Errorf("trusted_ca = %v, want %s", vc.GetTrustedCa(), o.CAFile)
	}
	sans := vc.GetMatchTypedSubjectAltNames()
	if len(sans) != 1 || sans[0].GetSanType() != sanType || sans[0].GetMatcher().GetExact() != epHost {
		t.Errorf("SAN matchers = %v, want %v %s", sans, sanType, epHost)
	}
	certs := utc.GetCommonTlsContext().GetTlsCertificates()
	if !mtls {
		if len(certs) != 0 {
			t.Errorf("TLS without client certificate has tls_certificates %v", certs)
		}
		return
	}
	if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() != o.CertFile ||
		certs[0].GetPrivateKey().GetFilename() != o.KeyFile {
		t.Errorf("tls_certificates = %v", certs)
	}
}

// envoyValidate runs `envoy --mode validate` on the bootstrap when an
// envoy binary is on PATH (TLS cases reference files that do not exist).
func envoyValidate(t *testing.T, bootstrap []byte, tls bool) {
	t.Helper()
	bin, err := exec.LookPath("envoy")
	if err != nil || tls {
		return
	}
	f := filepath.Join(t.TempDir(), "envoy.json")
	if err := os.WriteFile(f, bootstrap, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--mode", "validate", "-c", f, "--log-level", "warn").CombinedOutput()
	if err != nil {
		t.Errorf("envoy --mode validate: %v\n%s", err, out)
	}
}

func TestBootstrapErrors(t *testing.T) {
	ok := Options{NodeID: "n", Fleet: "f", XDSAddress: "127.0.0.1:18000"}
	with := func(f func(*Options)) Options { o := ok; f(&o); return o }
	for _, tc := range []struct {
		name    string
		opts    Options
		grpcErr bool // GRPCBootstrap (which ignores AdminAddress) fails too
		want    string
	}{
		{"no node id", with(func(o *Options) { o.NodeID = "" }), true, "NodeID"},
		{"blank node id", with(func(o *Options) { o.NodeID = "  " }), true, "NodeID"},
		{"no fleet", with(func(o *Options) { o.Fleet = "" }), true, "Fleet"},
		{"no xds address", with(func(o *Options) { o.XDSAddress = "" }), true, "XDSAddress"},
		{"no port", with(func(o *Options) { o.XDSAddress = "127.0.0.1" }), true, "XDSAddress"},
		{"hostname without port", with(func(o *Options) { o.XDSAddress = "xds.lbaas.internal" }), true, "XDSAddress"},
		{"empty port", with(func(o *Options) { o.XDSAddress = "xds.lbaas.internal:" }), true, "XDSAddress"},
		{"port zero", with(func(o *Options) { o.XDSAddress = "127.0.0.1:0" }), true, "XDSAddress"},
		{"port too big", with(func(o *Options) { o.XDSAddress = "127.0.0.1:65536" }), true, "XDSAddress"},
		{"named port", with(func(o *Options) { o.XDSAddress = "127.0.0.1:grpc" }), true, "XDSAddress"},
		{"no host", with(func(o *Options) { o.XDSAddress = ":18000" }), true, "XDSAddress"},
		{"bad host", with(func(o *Options) { o.XDSAddress = "xds lbaas:18000" }), true, "XDSAddress"},
		{"url", with(func(o *Options) { o.XDSAddress = "http://xds:18000" }), true, "XDSAddress"},
		{"ipv6 zone", with(func(o *Options) { o.XDSAddress = "[fe80::1%eth0]:18000" }), true, "XDSAddress"},
		{"cert without key", with(func(o *Options) { o.CAFile, o.CertFile = "ca.pem", "c.pem" }), true, "KeyFile"},
		{"key without cert", with(func(o *Options) { o.CAFile, o.KeyFile = "ca.pem", "k.pem" }), true, "KeyFile"},
		{"client cert without CA", with(func(o *Options) { o.CertFile, o.KeyFile = "c.pem", "k.pem" }), true, "CAFile"},
		{"admin not loopback", with(func(o *Options) { o.AdminAddress = "0.0.0.0:9901" }), false, "loopback"},
		{"admin public", with(func(o *Options) { o.AdminAddress = "10.1.2.3:9901" }), false, "loopback"},
		{"admin ipv6 any", with(func(o *Options) { o.AdminAddress = "[::]:9901" }), false, "loopback"},
		{"admin hostname", with(func(o *Options) { o.AdminAddress = "localhost:9901" }), false, "loopback"},
		{"admin no port", with(func(o *Options) { o.AdminAddress = "127.0.0.1" }), false, "AdminAddress"},
		{"admin bad port", with(func(o *Options) { o.AdminAddress = "127.0.0.1:99999" }), false, "AdminAddress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Bootstrap(tc.opts)
			if err == nil {
				t.Fatalf("Bootstrap(%+v) = %s, want an error", tc.opts, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Bootstrap error %q does not mention %q", err, tc.want)
			}
			_, gerr := GRPCBootstrap(tc.opts)
			if tc.grpcErr && gerr == nil {
				t.Errorf("GRPCBootstrap(%+v) succeeded, want an error", tc.opts)
			}
			if !tc.grpcErr && gerr != nil {
				t.Errorf("GRPCBootstrap(%+v): %v (AdminAddress is Envoy only)", tc.opts, gerr)
			}
		})
	}
	// grpc-go's file watcher wants the certificate and key side by side.
	split := with(func(o *Options) { o.CAFile, o.CertFile, o.KeyFile = "/a/ca.pem", "/a/c.pem", "/b/k.pem" })
	if _, err := GRPCBootstrap(split); err == nil || !strings.Contains(err.Error(), "same directory") {
		t.Errorf("GRPCBootstrap with cert and key in different directories: %v", err)
	}
	if _, err := Bootstrap(split); err != nil {
		t.Errorf("Bootstrap with cert and key in different directories: %v (fine for Envoy)", err)
	}
}

func TestDefaultNodeID(t *testing.T) {
	id, err := DefaultNodeID()
	if err != nil {
		t.Skip(err)
	}
	h, _ := os.Hostname()
	if id != h {
		t.Errorf("DefaultNodeID() = %q, want the host name %q", id, h)
	}
}

// grpcBootstrapJSON is what the tests read back: the fields grpc-go reads.
type grpcBootstrapJSON struct {
	XDSServers []struct {
		ServerURI    string `json:"server_uri"`
		ChannelCreds []struct {
			Type   string            `json:"type"`
			Config map[string]string `json:"config"`
		} `json:"channel_creds"`
		ServerFeatures []string `json:"server_features"`
	} `json:"xds_servers"`
	Node struct {
		ID       string         `json:"id"`
		Cluster  string         `json:"cluster"`
		Locality map[string]any `json:"locality"`
	} `json:"node"`
}

func TestGRPCBootstrapGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		creds string
		cfg   map[string]string
	}{
		{
			name:  "grpc_bootstrap",
			opts:  Options{NodeID: "client-1", Fleet: "default", XDSAddress: "xds.lbaas.internal:18000", AdminAddress: "ignored"},
			creds: "insecure",
		},
		{
			name: "grpc_bootstrap_mtls",
			opts: Options{NodeID: "client-2", Fleet: "edge", XDSAddress: "10.0.0.5:18000",
				CAFile: "/etc/lbaas/xds/ca.pem", CertFile: "/etc/lbaas/xds/tls.crt", KeyFile: "/etc/lbaas/xds/tls.key"},
			creds: "tls",
			cfg: map[string]string{
				"ca_certificate_file": "/etc/lbaas/xds/ca.pem",
				"certificate_file":    "/etc/lbaas/xds/tls.crt",
				"private_key_file":    "/etc/lbaas/xds/tls.key",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := GRPCBootstrap(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", out)

			var b grpcBootstrapJSON
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				t.Fatal(err)
			}
			if len(b.XDSServers) != 1 {
				t.Fatalf("xds_servers = %+v", b.XDSServers)
			}
			s := b.XDSServers[0]
			if s.ServerURI != tc.opts.XDSAddress {
				t.Errorf("server_uri = %q", s.ServerURI)
			}
			if len(s.ChannelCreds) != 1 || s.ChannelCreds[0].Type != tc.creds {
				t.Errorf("channel_creds = %+v, want one %q", s.ChannelCreds, tc.creds)
			} else if fmt.Sprint(s.ChannelCreds[0].Config) != fmt.Sprint(tc.cfg) {
				t.Errorf("channel_creds config = %v, want %v", s.ChannelCreds[0].Config, tc.cfg)
			}
			if len(s.ServerFeatures) != 1 || s.ServerFeatures[0] != "xds_v3" {
				t.Errorf("server_features = %v", s.ServerFeatures)
			}
			if b.Node.ID != tc.opts.NodeID || b.Node.Cluster != tc.opts.Fleet || b.Node.Locality == nil {
				t.Errorf("node = %+v", b.Node)
			}
		})
	}
}

// TestGRPCBootstrapEndToEnd proves grpc-go accepts the bootstrap: a client
// for xds:///lb_1 configured by it reaches a real ADS server, gets
// listener -> cluster -> endpoints and calls a health server behind it.
// The bootstrap is handed over with xds.NewXDSResolverWithConfigForTesting
// (in process, because grpc-go reads GRPC_XDS_BOOTSTRAP_CONFIG once at
// package initialisation, so t.Setenv would come too late).
func TestGRPCBootstrapEndToEnd(t *testing.T) {
	const nodeID, fleet = "client-1", "fleet-a"
	backend := startHealthServer(t)
	ads := startADS(t, nodeID, backend, nil)

	bs, err := GRPCBootstrap(Options{NodeID: nodeID, Fleet: fleet, XDSAddress: ads.addr})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := xds.NewXDSResolverWithConfigForTesting(bs)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := healthCheckChannel(grpc.WithResolvers(rb))
	if cc != nil {
		defer cc.Close()
	}
	if err != nil {
		t.Fatalf("%v\nADS saw: %s", err, ads.report())
	}
	ads.check(t, nodeID, fleet)
}

// TestGRPCBootstrapEnvVar is the production path: a separate process (this
// test binary re-executed) with GRPC_XDS_BOOTSTRAP_CONFIG in its
// environment and nothing else dials xds:///lb_1 with a plain
// grpc.NewClient.
func TestGRPCBootstrapEnvVar(t *testing.T) {
	const nodeID, fleet = "client-env", "fleet-env"
	backend := startHealthServer(t)
	ads := startADS(t, nodeID, backend, nil)

	bs, err := GRPCBootstrap(Options{NodeID: nodeID, Fleet: fleet, XDSAddress: ads.addr})
	if err != nil {
		t.Fatal(err)
	}
	runGRPCClientChild(t, bs, ads)
	ads.check(t, nodeID, fleet)
}

// TestGRPCBootstrapMTLS: the "tls" channel credentials with CA,
// certificate and key files against an ADS server that requires and
// verifies a client certificate.
func TestGRPCBootstrapMTLS(t *testing.T) {
	const nodeID, fleet = "client-mtls", "fleet-mtls"
	pki := newTestPKI(t)
	backend := startHealthServer(t)
	ads := startADS(t, nodeID, backend, credentials.NewTLS(pki.serverConfig))

	bs, err := GRPCBootstrap(Options{NodeID: nodeID, Fleet: fleet, XDSAddress: ads.addr,
		CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := xds.NewXDSResolverWithConfigForTesting(bs)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := healthCheckChannel(grpc.WithResolvers(rb))
	if cc != nil {
		defer cc.Close()
	}
	if err != nil {
		t.Fatalf("%v\nADS saw: %s", err, ads.report())
	}
	ads.check(t, nodeID, fleet)
	if cn := ads.clientCN(); cn != "client-mtls" {
		t.Errorf("ADS saw client certificate %q, want client-mtls", cn)
	}
}

func runGRPCClientChild(t *testing.T, bootstrap []byte, ads *adsServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	// GRPC_XDS_BOOTSTRAP (a file name) would take precedence over
	// GRPC_XDS_BOOTSTRAP_CONFIG: make sure the child only has ours.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRPC_XDS_BOOTSTRAP") && !strings.HasPrefix(kv, childEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1", "GRPC_XDS_BOOTSTRAP_CONFIG="+string(bootstrap))
	// The child stays up until its standard input closes: the ACK of its
	// last response may still be on its way after the call succeeded,
	// and a process that exits at once never sends it.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The child prints "child: SERVING" or why not, or exits (killed at
	// the context's deadline at the latest).
	for !strings.Contains(out.String(), "child: ") && len(exited) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(out.String(), "child: SERVING") {
		ads.waitACKs()
	}
	stdin.Close()
	err = <-exited
	if err != nil || !strings.Contains(out.String(), "child: SERVING") {
		t.Fatalf("grpc-go client process: %v\n%s\nADS saw: %s", err, out.String(), ads.report())
	}
}

// syncBuffer is a bytes.Buffer the child's output goes to while it is read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// grpcClientChild runs in the re-executed test binary; it stays up until
// its standard input closes.
func grpcClientChild() int {
	if os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		fmt.Fprintln(os.Stderr, "child: GRPC_XDS_BOOTSTRAP_CONFIG is not set")
		return 2
	}
	cc, err := healthCheckChannel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		if cc != nil {
			cc.Close()
		}
		return 1
	}
	defer cc.Close()
	fmt.Println("child: SERVING")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// healthCheckChannel dials xds:///lb_1, expects the health service behind
// it to answer SERVING, and returns the open channel:
// the call can succeed before grpc-go has sent the ACK of the last
// response, and closing the channel ends its xDS stream, so tests that
// look for the ACKs close it only after.
func healthCheckChannel(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient("xds:///lb_1", opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc.NewClient: %w", err)
	}
	return cc, healthCheck(ctx, cc)
}

func healthCheck(ctx context.Context, cc *grpc.ClientConn) error {
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("Health.Check through xds:///lb_1: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("Health.Check = %v, want SERVING", resp.GetStatus())
	}
	return nil
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func startHealthServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	lis := listenLoopback(t)
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().(*net.TCPAddr)
}

// adsServer is a go-control-plane ADS server with one snapshot, recording
// what the client sent.
type adsServer struct {
	addr string

	mu     sync.Mutex
	nodes  []*corev3.Node         // first node of each stream
	acks   map[string]bool        // type URL -> ACKed
	nacks  []string               // error details
	certCN string                 // client certificate seen (TLS)
	byID   map[int64]*corev3.Node // stream -> node
}

func startADS(t *testing.T, nodeID string, backend *net.TCPAddr, creds credentials.TransportCredentials) *adsServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	snapshotCache := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	snap, err := cache.NewSnapshot("1", testResources(t, backend))
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatal(err)
	}
	if err := snapshotCache.SetSnapshot(ctx, nodeID, snap); err != nil {
		t.Fatal(err)
	}

	a := &adsServer{acks: map[string]bool{}, byID: map[int64]*corev3.Node{}}
	cb := server.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, _ int64, _ string) error {
			if p, ok := peer.FromContext(ctx); ok {
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
					a.mu.Lock()
					a.certCN = ti.State.VerifiedChains[0][0].Subject.CommonName
					a.mu.Unlock()
				}
			}
			return nil
		},
		StreamRequestFunc: func(id int64, req *discoverygrpc.DiscoveryRequest) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if n := req.GetNode(); n != nil && a.byID[id] == nil {
				a.byID[id] = n
				a.nodes = append(a.nodes, n)
			}
			switch {
			case req.GetErrorDetail() != nil:
				a.nacks = append(a.nacks, req.GetTypeUrl()+": "+req.GetErrorDetail().GetMessage())
			case req.GetResponseNonce() != "":
				a.acks[req.GetTypeUrl()] = true
			}
			return nil
		},
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(opts...)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, server.NewServer(ctx, snapshotCache, cb))
	lis := listenLoopback(t)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	a.addr = lis.Addr().String()
	return a
}

func (a *adsServer) report() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("nodes %v, ACKed %v, NACKs %q", a.nodes, a.acks, a.nacks)
}

func (a *adsServer) clientCN() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.certCN
}

// check asserts the client announced itself with the node id and the fleet
// as node.cluster, and ACKed every resource type without a NACK.
func (a *adsServer) check(t *testing.T, nodeID, fleet string) {
	t.Helper()
	a.waitACKs()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.nodes) == 0 {
		t.Fatal("ADS server saw no node")
	}
	for _, n := range a.nodes {
		if n.GetId() != nodeID || n.GetCluster() != fleet {
			t.Errorf("ADS node = id %q cluster %q, want %q %q", n.GetId(), n.GetCluster(), nodeID, fleet)
		}
		if n.GetUserAgentName() != "gRPC Go" {
			t.Errorf("ADS node user agent = %q, want gRPC Go", n.GetUserAgentName())
		}
	}
	for _, typ := range []string{resource.ListenerType, resource.ClusterType, resource.EndpointType} {
		if !a.acks[typ] {
			t.Errorf("%s not ACKed", typ)
		}
	}
	if len(a.nacks) > 0 {
		t.Errorf("NACKs: %q", a.nacks)
	}
}

// waitACKs waits (at most testTimeout) for the ACKs of listeners,
// clusters and endpoints: the ACK of the last response can still be in
// flight after the RPC.
func (a *adsServer) waitACKs() {
	deadline := time.Now().Add(testTimeout)
	for {
		a.mu.Lock()
		done := a.acks[resource.ListenerType] && a.acks[resource.ClusterType] && a.acks[resource.EndpointType]
		a.mu.Unlock()
		if done || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testResources: API listener lb_1 -> route / -> EDS cluster c1 -> backend.
func testResources(t *testing.T, backend *net.TCPAddr) map[resource.Type][]types.Resource {
	t.Helper()
	mustAny := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "lb_1",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "lb_1",
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    "lb_1",
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c1"},
					}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	lis := &listenerv3.Listener{
		Name:        "lb_1",
		ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
	}
	c1 := &clusterv3.Cluster{
		Name:                 "c1",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		}},
		LbPolicy: clusterv3.Cluster_ROUND_ROBIN,
	}
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: "c1",
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			Locality: &corev3.Locality{Region: "r1", Zone: "z1"},
			// grpc-go drops localities without a weight.
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: socketAddress(backend.IP.String(), uint32(backend.Port)),
				}},
			}},
		}},
	}
	for _, m := range []interface{ ValidateAll() error }{lis, c1, cla} {
		if err := m.ValidateAll(); err != nil {
			t.Fatal(err)
		}
	}
	return map[resource.Type][]types.Resource{
		resource.ListenerType: {lis},
		resource.ClusterType:  {c1},
		resource.EndpointType: {cla},
	}
}

// testPKI is a throwaway CA, a server certificate for 127.0.0.1 and a
// client certificate, as PEM files in one directory.
type testPKI struct {
	caFile, certFile, keyFile string
	serverConfig              *tls.Config
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	caKey := newKey()
	ca := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "lbaas test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, caKey, nil)
	srvKey := newKey()
	srv := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "xds"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, srvKey, caKey)
	cliKey := newKey()
	cli := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "client-mtls"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, cliKey, caKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		caFile:   writePEM("ca.pem", "CERTIFICATE", ca.Raw),
		certFile: writePEM("tls.crt", "CERTIFICATE", cli.Raw),
		keyFile:  writePEM("tls.key", "PRIVATE KEY", keyDER(cliKey)),
		serverConfig: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey, Leaf: srv}},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	}
}

// Several control plane replicas: Envoy's xds_cluster has an endpoint for
// each (it reconnects to another when one fails) and accepts any of their
// names in the certificate; grpc-go gets them as its xDS servers in order,
// and a dns: target naming every replica is passed through.
func TestBootstrapWithReplicas(t *testing.T) {
	o := Options{NodeID: "envoy-r", Fleet: "default", XDSAddress: "xds-1.lbaas.internal:18000",
		MoreXDSAddresses: []string{"xds-2.lbaas.internal:18000", "10.0.0.7:18001"}, CAFile: "/etc/lbaas/xds/ca.pem"}
	out, err := Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bootstrap_replicas.json", out)
	b, err := bootstrapProto(o)
	if err != nil {
		t.Fatal(err)
	}
	c := b.GetStaticResources().GetClusters()[0]
	var got []string
	for _, ep := range c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints() {
		sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
		got = append(got, net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())))
	}
	if want := append([]string{o.XDSAddress}, o.MoreXDSAddresses...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("xds_cluster endpoints %v, want %v", got, want)
	}
	if c.GetType() != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("cluster type %v, want STRICT_DNS (host names among the addresses)", c.GetType())
	}
	var tlsCtx tlsv3.UpstreamTlsContext
	if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tlsCtx); err != nil {
		t.Fatal(err)
	}
	if sans := tlsCtx.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames(); len(sans) != 3 {
		t.Errorf("%d names accepted in the control plane's certificate, want 3", len(sans))
	}
	if tlsCtx.GetSni() != "" {
		t.Errorf("SNI %q with several names", tlsCtx.GetSni())
	}
	envoyValidate(t, out, true)

	if _, err := Bootstrap(Options{NodeID: "n", Fleet: "f", XDSAddress: "dns:///xds.lbaas.internal:18000"}); err == nil {
		t.Error("Envoy's bootstrap accepted a gRPC target URI")
	}

	g := Options{NodeID: "client-r", Fleet: "default", XDSAddress: "dns:///xds.lbaas.internal:18000",
		MoreXDSAddresses: []string{"dns://127.0.0.1:53/xds.lbaas.internal:18000", "10.0.0.7:18001"}}
	out, err = GRPCBootstrap(g)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grpc_bootstrap_replicas.json", out)
	var gb grpcBootstrapJSON
	if err := json.Unmarshal(out, &gb); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range gb.XDSServers {
		got = append(got, s.ServerURI)
	}
	if want := append([]string{g.XDSAddress}, g.MoreXDSAddresses...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("xds_servers %v, want %v", got, want)
	}
	for _, bad := range []string{"dns:///xds", "dns:xds:18000", "dns:///xds:18000?x=1", "dns:///:18000"} {
		if _, err := GRPCBootstrap(Options{NodeID: "n", Fleet: "f", XDSAddress: bad}); err == nil {
			t.Errorf("GRPCBootstrap accepted %q", bad)
		}
	}
}
