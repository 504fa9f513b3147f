package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/internal/xdsauth"
)

func quietConfig(t *testing.T) server.Config {
	return server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", DatabaseURL: filepath.Join(t.TempDir(), "db"),
		Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour, DisableHealthChecks: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Unauthenticated xDS beyond loopback, and half-given TLS settings, are
// refused before anything is served.
func TestStartRefusesUnsafeTLSSettings(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(dir, ca); err != nil {
		t.Fatal(err)
	}
	cert, key, caFile := filepath.Join(dir, pki.Cert), filepath.Join(dir, pki.Key), filepath.Join(dir, pki.CACert)
	for _, tc := range []struct {
		name string
		set  func(*server.Config)
		want string
	}{
		{"plaintext xDS on every address", func(c *server.Config) { c.XDSAddr = "0.0.0.0:0" }, "--xds-insecure"},
		{"plaintext xDS on [::]", func(c *server.Config) { c.XDSAddr = "[::]:0" }, "not a loopback address"},
		{"plaintext xDS on an empty host", func(c *server.Config) { c.XDSAddr = ":0" }, "not a loopback address"},
		{"TLS without client certificates beyond loopback", func(c *server.Config) {
			c.XDSAddr, c.TLSCertFile, c.TLSKeyFile = "0.0.0.0:0", cert, key
		}, "--xds-client-ca"},
		{"cert without key", func(c *server.Config) { c.TLSCertFile = cert }, "--tls-cert and --tls-key"},
		{"client CA without a server certificate", func(c *server.Config) { c.XDSClientCAFile = caFile }, "needs the server certificate"},
		{"a key that is not the certificate's", func(c *server.Config) { c.TLSCertFile, c.TLSKeyFile = cert, caFile }, "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig(t)
			tc.set(&cfg)
			srv, err := server.Start(context.Background(), cfg)
			if err == nil {
				_ = srv.Shutdown(context.Background())
				t.Fatalf("Start succeeded, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// --xds-insecure allows plaintext xDS beyond loopback, knowingly.
func TestStartXDSInsecure(t *testing.T) {
	cfg := quietConfig(t)
	cfg.XDSAddr, cfg.XDSInsecure = "0.0.0.0:0", true
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start with --xds-insecure: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// With --tls-cert, --tls-key and --xds-client-ca: REST and gRPC answer
// over TLS, xDS requires a client certificate and keeps each client to
// its fleet.
func TestTLSListeners(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.IssueServer([]string{"127.0.0.1", "::1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(dir, ca); err != nil {
		t.Fatal(err)
	}
	cfg := quietConfig(t)
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.XDSClientCAFile = filepath.Join(dir, pki.Cert), filepath.Join(dir, pki.Key), filepath.Join(dir, pki.CACert)
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("REST over HTTPS", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		res, err := c.Get("https://" + srv.HTTPAddr.String() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.TLS == nil {
			t.Errorf("GET /healthz over TLS: %d (TLS %v)", res.StatusCode, res.TLS != nil)
		}
		res, err = http.Get("http://" + srv.HTTPAddr.String() + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				t.Error("plain HTTP is served next to HTTPS")
			}
		}
	})
	t.Run("gRPC over TLS", func(t *testing.T) {
		conn, err := grpc.NewClient(srv.GRPCAddr.String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health over TLS: %v, %v", res, err)
		}
	})
	t.Run("xDS keeps a client to its certificate's fleet", func(t *testing.T) {
		ads := func(fleet, claimed string) error {
			cp, err := ca.IssueClient(xdsauth.Identity{Fleet: fleet}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := tls.X509KeyPair(cp.CertPEM, cp.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := grpc.NewClient(srv.XDSAddr.String(), grpc.WithTransportCredentials(credentials.NewTLS(
				&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}})))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "n", Cluster: claimed}, TypeUrl: resource.ClusterType}); err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}
		if err := ads("default", "default"); err != nil {
			t.Errorf("default fleet certificate, default fleet: %v", err)
		}
		if err := ads("edge", "default"); status.Code(err) != codes.PermissionDenied {
			t.Errorf("edge certificate claiming the default fleet: %v, want PermissionDenied", err)
		}
	})
}
