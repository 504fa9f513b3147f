package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"encoding/json"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// The same services answer over gRPC, with the token in the metadata and
// the Rackspace fault attached to every error status.
func TestGRPC(t *testing.T) {
	ctx := context.Background()
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/24")
	srv, err := server.Start(ctx, server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", DatabaseURL: filepath.Join(t.TempDir(), "db"),
		Fleet: "default", Pools: pools, Limits: api.DefaultLimits, TokenTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	key, err := srv.Auth.CreateUser(ctx, "grpc", "42", "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Auth.IssueToken(ctx, auth.Credentials{Username: "grpc", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.GRPCAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lbs := lbaasv1.NewLoadBalancerServiceClient(conn)

	_, err = lbs.ListLoadBalancers(ctx, &lbaasv1.ListLoadBalancersRequest{Account: "42"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("without a token: %v", err)
	}

	authed := metadata.AppendToOutgoingContext(ctx, auth.TokenHeader, tok.ID)
	created, err := lbs.CreateLoadBalancer(authed, &lbaasv1.CreateLoadBalancerRequest{Account: "42",
		LoadBalancer: &lbaasv1.LoadBalancerRequest{
			Name: proto.String("grpc-lb"), Protocol: proto.String("HTTP"),
			VirtualIps: []*lbaasv1.VirtualIpRequest{{Type: proto.String("PUBLIC"), IpVersion: proto.String("IPV4")}},
			Nodes:      []*lbaasv1.NodeRequest{{Address: proto.String("10.0.0.1"), Port: proto.Uint32(80), Condition: proto.String("ENABLED")}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if lb := created.GetLoadBalancer(); lb.GetStatus() != "BUILD" || lb.GetPort() != 80 || len(lb.GetNodes()) != 1 {
		t.Errorf("created %v", lb)
	}

	_, err = lbs.GetLoadBalancer(authed, &lbaasv1.GetLoadBalancerRequest{Account: "42", LoadBalancerId: 999})
	st := status.Convert(err)
	if st.Code() != codes.NotFound || len(st.Details()) != 1 {
		t.Fatalf("missing load balancer: %v", err)
	}
	if f, ok := st.Details()[0].(*lbaasv1.Fault); !ok || f.GetCode() != 404 || f.GetKind() != "itemNotFound" {
		t.Errorf("fault detail %v", st.Details()[0])
	}

	_, err = lbs.CreateLoadBalancer(authed, &lbaasv1.CreateLoadBalancerRequest{Account: "42",
		LoadBalancer: &lbaasv1.LoadBalancerRequest{Name: proto.String("bad"), Protocol: proto.String("GOPHER")}})
	st = status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("bad request: %v", err)
	}
	if f := st.Details()[0].(*lbaasv1.Fault); len(f.GetValidationErrors().GetMessages()) != 2 {
		t.Errorf("validation errors name protocol and virtualIps: %v", f.GetValidationErrors().GetMessages())
	}

	// NUL characters are refused for gRPC callers too (PostgreSQL cannot store them).
	_, err = lbs.CreateLoadBalancer(authed, &lbaasv1.CreateLoadBalancerRequest{Account: "42",
		LoadBalancer: &lbaasv1.LoadBalancerRequest{Name: proto.String("a\x00b"), Protocol: proto.String("HTTP")}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument ||
		!strings.Contains(strings.Join(st.Details()[0].(*lbaasv1.Fault).GetValidationErrors().GetMessages(), ""), "loadBalancer.name") {
		t.Errorf("a NUL in a name: %v", err)
	}

	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", health, err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		found[s.GetName()] = true
	}
	for _, name := range []string{"lbaas.v1.LoadBalancerService", "lbaas.v1.NodeService", "lbaas.v1.VirtualIpService", "lbaas.v1.CatalogService", "grpc.health.v1.Health"} {
		if !found[name] {
			t.Errorf("reflection does not list %s (has %v)", name, found)
		}
	}
}

// /metrics exposes the API's request counters in the Prometheus format.
func TestMetrics(t *testing.T) {
	srv, err := server.Start(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", DatabaseURL: filepath.Join(t.TempDir(), "db"),
		Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + srv.HTTPAddr.String()
	for _, path := range []string{"/v1.0/1/loadbalancers", "/healthz", "/readyz"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := map[string]int{"/v1.0/1/loadbalancers": 401, "/healthz": 200, "/readyz": 200}[path]; res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	want := `lbaas_api_requests_total{code="401",method="GET",route="/v1.0/{account=*}/loadbalancers"} 1`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %q:\n%s", want, body)
	}
}

// Operators see every connected xDS client at /debug/xds/clients: node,
// fleet, kind, peer and what it has acknowledged.
func TestXDSClientList(t *testing.T) {
	srv, err := server.Start(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", DebugAddr: "127.0.0.1:0",
		DatabaseURL: filepath.Join(t.TempDir(), "db"), Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour,
		DisableHealthChecks: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.XDSAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ads, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "edge-7", Cluster: "default", UserAgentName: "envoy"}
	if err := ads.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	r, err := ads.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := ads.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Clients []xds.ClientInfo `json:"clients"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := http.Get("http://" + srv.DebugAddr.String() + "/debug/xds/clients")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&list)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Clients) == 1 && len(list.Clients[0].Types) == 1 && list.Clients[0].Types[0].Acked == r.GetVersionInfo() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client list %+v", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := list.Clients[0]
	if c.Node != "edge-7" || c.Fleet != "default" || c.Kind != xds.KindEnvoy || !strings.HasPrefix(c.Peer, "127.0.0.1:") || !c.Counting || c.Types[0].Lag != 0 {
		t.Fatalf("client %+v", c)
	}
}
