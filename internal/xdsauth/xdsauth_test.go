package xdsauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/openlbaas/lbaas/internal/accesslog"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/tlsreload"
	"github.com/openlbaas/lbaas/internal/xdsauth"
	"github.com/openlbaas/lbaas/translator"
)

const defaultFleet = "default"

func TestIdentityURI(t *testing.T) {
	for _, tc := range []struct {
		id   xdsauth.Identity
		want string
	}{
		{xdsauth.Identity{Fleet: "edge"}, "spiffe://lbaas/fleet/edge"},
		{xdsauth.Identity{Fleet: "edge", Node: "envoy-1.example"}, "spiffe://lbaas/fleet/edge/node/envoy-1.example"},
	} {
		u, err := tc.id.URI()
		if err != nil || u.String() != tc.want {
			t.Errorf("%+v.URI() = %v, %v; want %s", tc.id, u, err, tc.want)
			continue
		}
		back, err := xdsauth.Parse(u)
		if err != nil || back != tc.id {
			t.Errorf("Parse(%s) = %+v, %v", u, back, err)
		}
	}
	if _, err := (xdsauth.Identity{Fleet: "a/b"}).URI(); err == nil {
		t.Error("a fleet with a slash makes a URI")
	}
	for _, bad := range []string{
		"spiffe://other/fleet/edge",
		"spiffe://lbaas/fleet",
		"spiffe://lbaas/fleet/edge/node",
		"spiffe://lbaas/fleet/edge/pod/x",
		"spiffe://lbaas/tenant/edge",
		"spiffe://lbaas",
		"https://lbaas/fleet/edge",
	} {
		u, _ := url.Parse(bad)
		if id, err := xdsauth.Parse(u); err == nil {
			t.Errorf("Parse(%s) = %+v, want an error", bad, id)
		}
	}
	two, _ := url.Parse("spiffe://lbaas/fleet/b")
	one, _ := url.Parse("spiffe://lbaas/fleet/a")
	other, _ := url.Parse("spiffe://example.org/workload")
	if id, err := xdsauth.FromCertificate(&x509.Certificate{URIs: []*url.URL{other, one}}); err != nil || id.Fleet != "a" {
		t.Errorf("FromCertificate with a foreign and an lbaas URI = %+v, %v", id, err)
	}
	if _, err := xdsauth.FromCertificate(&x509.Certificate{URIs: []*url.URL{one, two}}); err == nil {
		t.Error("a certificate naming two fleets is accepted")
	}
	if _, err := xdsauth.FromCertificate(&x509.Certificate{URIs: []*url.URL{other}}); err == nil {
		t.Error("a certificate naming no fleet is accepted")
	}
}

// xdsServer is a real go-control-plane xDS server (one cluster) behind
// mutual TLS and the authorizer.
type xdsServer struct {
	addr     string
	ca       *pki.CA
	reg      *prometheus.Registry
	serverCA *x509.CertPool
}

func startServer(t *testing.T) *xdsServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA("xdsauth test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvPair, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := srvPair.Write(dir, ca); err != nil {
		t.Fatal(err)
	}
	src, err := tlsreload.New(tlsreload.Files{CertFile: filepath.Join(dir, pki.Cert), KeyFile: filepath.Join(dir, pki.Key),
		ClientCAFile: filepath.Join(dir, pki.CACert)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)

	reg := prometheus.NewRegistry()
	authz := xdsauth.New(defaultFleet, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := cache.NewLinearCache(resource.ClusterType, cache.WithInitialResources(map[string]types.Resource{
		"c1": &clusterv3.Cluster{Name: "c1", ConnectTimeout: durationpb.New(time.Second)},
	}))
	xds := serverv3.NewServer(ctx, c, nil)
	gs := grpc.NewServer(append(authz.ServerOptions(), grpc.Creds(credentials.NewTLS(src.MutualConfig("h2"))))...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, xds)
	accesslog.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil).Register(gs)
	loadstats.New(loadstats.Options{LoadBalancerID: translator.LoadBalancerID}).Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &xdsServer{addr: ln.Addr().String(), ca: ca, reg: reg, serverCA: roots}
}

// dial connects with a client certificate for id (none when id is nil).
func (s *xdsServer) dial(t *testing.T, id *xdsauth.Identity) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: s.serverCA, ServerName: "127.0.0.1"}
	if id != nil {
		p, err := s.ca.IssueClient(*id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (s *xdsServer) denied(reason string) float64 {
	families, _ := s.reg.Gather()
	for _, f := range families {
		if f.GetName() != "lbaas_xds_auth_denied_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sotwRequest(node *corev3.Node, nonce string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType, ResponseNonce: nonce}
}

// sotw opens an ADS stream and sends the first request.
func sotw(t *testing.T, conn *grpc.ClientConn, node *corev3.Node) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(sotwRequest(node, "")); err != nil {
		t.Fatal(err)
	}
	return st
}

func wantCode(t *testing.T, what string, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), text) {
		t.Errorf("%s: %v, want %v containing %q", what, err, code, text)
	}
}

func TestStreamAuthorization(t *testing.T) {
	s := startServer(t)
	edgeN1 := &xdsauth.Identity{Fleet: "edge", Node: "n1"}

	t.Run("the certificate's fleet and node get resources; the node need not be repeated", func(t *testing.T) {
		st := sotw(t, s.dial(t, edgeN1), &corev3.Node{Id: "n1", Cluster: "edge"})
		res, err := st.Recv()
		if err != nil || len(res.GetResources()) != 1 {
			t.Fatalf("Recv = %v, %v", res, err)
		}
		// An ACK without the node is checked against the stream's node and
		// allowed; then a node claiming another fleet ends the stream.
		if err := st.Send(sotwRequest(nil, res.GetNonce())); err != nil {
			t.Fatal(err)
		}
		if err := st.Send(sotwRequest(&corev3.Node{Id: "n1", Cluster: "other"}, res.GetNonce())); err != nil {
			t.Fatal(err)
		}
		// (The server may answer the ACK before it reads the next request.)
		for err == nil {
			_, err = st.Recv()
		}
		wantCode(t, "a later request claiming another fleet", err, codes.PermissionDenied, `claims fleet "other"`)
	})
	t.Run("another fleet is refused before any resource is sent", func(t *testing.T) {
		before := s.denied(xdsauth.ReasonFleet)
		_, err := sotw(t, s.dial(t, edgeN1), &corev3.Node{Id: "n1", Cluster: "other"}).Recv()
		wantCode(t, "fleet other with an edge certificate", err, codes.PermissionDenied, `is for fleet "edge"; node "n1" claims fleet "other"`)
		if got := s.denied(xdsauth.ReasonFleet); got != before+1 {
			t.Errorf("lbaas_xds_auth_denied_total{reason=fleet} = %v, want %v", got, before+1)
		}
	})
	t.Run("another node of the fleet is refused to a node certificate", func(t *testing.T) {
		_, err := sotw(t, s.dial(t, edgeN1), &corev3.Node{Id: "n2", Cluster: "edge"}).Recv()
		wantCode(t, "node n2 with n1's certificate", err, codes.PermissionDenied, `is for node "n1"`)
	})
	t.Run("a fleet certificate serves any node of the fleet", func(t *testing.T) {
		_, err := sotw(t, s.dial(t, &xdsauth.Identity{Fleet: "edge"}), &corev3.Node{Id: "anything", Cluster: "edge"}).Recv()
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an empty cluster is the default fleet", func(t *testing.T) {
		_, err := sotw(t, s.dial(t, &xdsauth.Identity{Fleet: defaultFleet}), &corev3.Node{Id: "x"}).Recv()
		if err != nil {
			t.Errorf("default-fleet certificate, empty cluster: %v", err)
		}
		_, err = sotw(t, s.dial(t, &xdsauth.Identity{Fleet: "edge"}), &corev3.Node{Id: "x"}).Recv()
		wantCode(t, "edge certificate, empty cluster", err, codes.PermissionDenied, `claims fleet "default"`)
		_, err = sotw(t, s.dial(t, &xdsauth.Identity{Fleet: "edge"}), nil).Recv()
		wantCode(t, "edge certificate, no node at all", err, codes.PermissionDenied, `claims fleet "default"`)
	})
	t.Run("delta ADS is checked the same way", func(t *testing.T) {
		open := func(id *xdsauth.Identity, node *corev3.Node) error {
			st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(s.dial(t, id)).DeltaAggregatedResources(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ClusterType,
				ResourceNamesSubscribe: []string{"*"}}); err != nil {
				t.Fatal(err)
			}
			_, err = st.Recv()
			return err
		}
		if err := open(edgeN1, &corev3.Node{Id: "n1", Cluster: "edge"}); err != nil {
			t.Errorf("delta, own fleet: %v", err)
		}
		wantCode(t, "delta, another fleet", open(edgeN1, &corev3.Node{Id: "n1", Cluster: "other"}), codes.PermissionDenied, `claims fleet "other"`)
	})
	t.Run("connection log streams are checked by their identifier", func(t *testing.T) {
		logs := func(node *corev3.Node) error {
			st, err := accesslogv3.NewAccessLogServiceClient(s.dial(t, edgeN1)).StreamAccessLogs(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&accesslogv3.StreamAccessLogsMessage{
				Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{Node: node, LogName: "lb_1"}}); err != nil {
				t.Fatal(err)
			}
			// Later messages carry no identifier: the stream's node holds.
			if err := st.Send(&accesslogv3.StreamAccessLogsMessage{}); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			_, err = st.CloseAndRecv()
			return err
		}
		if err := logs(&corev3.Node{Id: "n1", Cluster: "edge"}); err != nil {
			t.Errorf("logs of the own fleet: %v", err)
		}
		wantCode(t, "logs claiming another fleet", logs(&corev3.Node{Id: "n1", Cluster: "other"}), codes.PermissionDenied, `claims fleet "other"`)
	})
	t.Run("load report streams are checked by their node", func(t *testing.T) {
		report := func(node *corev3.Node) error {
			st, err := lrsv3.NewLoadReportingServiceClient(s.dial(t, edgeN1)).StreamLoadStats(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&lrsv3.LoadStatsRequest{Node: node}); err != nil {
				t.Fatal(err)
			}
			_, err = st.Recv()
			return err
		}
		if err := report(&corev3.Node{Id: "n1", Cluster: "edge"}); err != nil {
			t.Errorf("reports of the own fleet: %v", err)
		}
		wantCode(t, "reports claiming another fleet", report(&corev3.Node{Id: "n1", Cluster: "other"}), codes.PermissionDenied, `claims fleet "other"`)
		wantCode(t, "reports claiming another node", report(&corev3.Node{Id: "n2", Cluster: "edge"}), codes.PermissionDenied, `names node "n2"`)
	})
	t.Run("metrics streams are checked by their identifier", func(t *testing.T) {
		flush := func(node *corev3.Node) error {
			st, err := metricsv3.NewMetricsServiceClient(s.dial(t, edgeN1)).StreamMetrics(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&metricsv3.StreamMetricsMessage{Identifier: &metricsv3.StreamMetricsMessage_Identifier{Node: node}}); err != nil {
				t.Fatal(err)
			}
			// Later messages carry no identifier: the stream's node holds.
			if err := st.Send(&metricsv3.StreamMetricsMessage{}); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			_, err = st.CloseAndRecv()
			return err
		}
		if err := flush(&corev3.Node{Id: "n1", Cluster: "edge"}); err != nil {
			t.Errorf("metrics of the own fleet: %v", err)
		}
		wantCode(t, "metrics claiming another fleet", flush(&corev3.Node{Id: "n1", Cluster: "other"}), codes.PermissionDenied, `claims fleet "other"`)
	})
	t.Run("unary Fetch is checked", func(t *testing.T) {
		cds := clusterservice.NewClusterDiscoveryServiceClient(s.dial(t, edgeN1))
		_, err := cds.FetchClusters(ctxT(t), sotwRequest(&corev3.Node{Id: "n1", Cluster: "other"}, ""))
		wantCode(t, "FetchClusters for another fleet", err, codes.PermissionDenied, `claims fleet "other"`)
		// The own fleet reaches the xDS server (whose linear cache has no
		// Fetch).
		_, err = cds.FetchClusters(ctxT(t), sotwRequest(&corev3.Node{Id: "n1", Cluster: "edge"}, ""))
		wantCode(t, "FetchClusters for the own fleet", err, codes.Unknown, "fetch is not implemented")
	})
	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(s.dial(t, nil)).StreamAggregatedResources(ctxT(t))
		if err == nil {
			_ = st.Send(sotwRequest(&corev3.Node{Id: "n1", Cluster: "edge"}, ""))
			_, err = st.Recv()
		}
		// TLS 1.3: the client finishes its handshake before the server
		// refuses it, so the refusal shows as the alert or a broken
		// connection; the exact alert is checked on a raw connection.
		wantCode(t, "no client certificate", err, codes.Unavailable, "")
		c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: s.serverCA, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("raw TLS without a client certificate: %v, want the certificate required alert", err)
		}
	})
}
