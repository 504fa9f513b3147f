package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// run runs the binary and fails the test with its output on error.
func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("lbaasd %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// tlsFiles is a directory written by `lbaasd cert issue|server`.
type tlsFiles string

func (d tlsFiles) cert(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(string(d), "tls.crt"), filepath.Join(string(d), "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mutualTLS is a CA minted by `lbaasd cert`, lbaasd's server certificate
// and a certificate of fleet "default": a daemon started with env() serves
// REST and gRPC over TLS and xDS with mutual TLS.
type mutualTLS struct {
	ca            string // the CA's directory (ca.crt)
	server, fleet tlsFiles
}

func newMutualTLS(t *testing.T, bin, dir string) mutualTLS {
	t.Helper()
	pki := filepath.Join(dir, "pki")
	m := mutualTLS{ca: filepath.Join(pki, "ca"), server: tlsFiles(filepath.Join(pki, "server")), fleet: tlsFiles(filepath.Join(pki, "fleet"))}
	run(t, bin, "cert", "ca", "--out", m.ca)
	run(t, bin, "cert", "server", "--ca", m.ca, "--out", string(m.server))
	run(t, bin, "cert", "issue", "--ca", m.ca, "--fleet", "default", "--out", string(m.fleet))
	return m
}

// env is the daemon's settings for it (every flag is an environment variable).
func (m mutualTLS) env() []string {
	return []string{
		"LBAASD_TLS_CERT=" + filepath.Join(string(m.server), "tls.crt"),
		"LBAASD_TLS_KEY=" + filepath.Join(string(m.server), "tls.key"),
		"LBAASD_XDS_CLIENT_CA=" + filepath.Join(m.ca, "ca.crt"),
	}
}

// client is an HTTP client trusting the CA.
func (m mutualTLS) client(t *testing.T) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: m.server.roots(t)}}}
}

func (d tlsFiles) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(string(d), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in", d)
	}
	return p
}

// The control plane with TLS on every listener and mutual TLS on xDS,
// all from certificates minted by `lbaasd cert`: a proxyless grpc-go
// client of its fleet gets traffic through a load balancer; a client
// without a certificate, with one from another CA, or claiming another
// fleet than its certificate names is refused; REST and gRPC answer over
// TLS to clients trusting the minted CA.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	pki := filepath.Join(dir, "pki")
	ca, rogueCA := filepath.Join(pki, "ca"), filepath.Join(pki, "rogue-ca")
	server, client := tlsFiles(filepath.Join(pki, "server")), tlsFiles(filepath.Join(pki, "client"))
	edge, rogue := tlsFiles(filepath.Join(pki, "edge")), tlsFiles(filepath.Join(pki, "rogue"))
	run(t, bin, "cert", "ca", "--out", ca)
	run(t, bin, "cert", "server", "--ca", ca, "--out", string(server))
	run(t, bin, "cert", "issue", "--ca", ca, "--fleet", "default", "--node", "mtls-client", "--out", string(client))
	run(t, bin, "cert", "issue", "--ca", ca, "--fleet", "edge", "--node", "mtls-client", "--out", string(edge))
	run(t, bin, "cert", "ca", "--out", rogueCA)
	run(t, bin, "cert", "issue", "--ca", rogueCA, "--fleet", "default", "--node", "mtls-client", "--out", string(rogue))

	// The settings as environment variables (every flag is one).
	d := startDaemon(t, bin, dir, []string{
		"LBAASD_TLS_CERT=" + filepath.Join(string(server), "tls.crt"),
		"LBAASD_TLS_KEY=" + filepath.Join(string(server), "tls.key"),
		"LBAASD_XDS_CLIENT_CA=" + filepath.Join(ca, "ca.crt"),
		"LBAASD_TLS_RELOAD_INTERVAL=100ms",
	})
	m := servingLine.FindStringSubmatch(d.stderr.String())
	httpAddr, grpcAddr := m[1], m[2]
	if !strings.Contains(d.stderr.String(), "tls=true xds_mtls=true") {
		t.Fatalf("the serving line does not report TLS and mutual TLS:\n%s", d.stderr)
	}
	roots := server.roots(t)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	a := signIn(t, bin, dir, "https://"+httpAddr, httpsClient)

	backends := []*backend{startBackend(t, "a"), startBackend(t, "b")}
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"mtls","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`,
		nodeJSON("127.0.0.1", backends[0].port, ""), nodeJSON("127.0.0.1", backends[1].port, "")))
	a.waitStatus(lb.ID, "ACTIVE")

	t.Run("a proxyless client of the fleet gets traffic over mutual TLS", func(t *testing.T) {
		boot := run(t, bin, "envoy-bootstrap", "--proxyless", "--fleet", "default", "--node-id", "mtls-client",
			"--xds-address", d.xdsAddr, "--tls-dir", string(client))
		if !strings.Contains(string(boot), `"type": "tls"`) {
			t.Fatalf("the bootstrap has no tls channel credentials:\n%s", boot)
		}
		r, err := xds.NewXDSResolverWithConfigForTesting(boot)
		if err != nil {
			t.Fatalf("grpc-go refused the bootstrap: %v", err)
		}
		p := &proxyless{t: t, resolver: r}
		c := p.dial(lb.ID)
		eventually(t, c, "both nodes serve", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	})

	// ads opens an ADS stream to the xDS port with cfg and returns how the
	// first request claiming fleet ended.
	ads := func(t *testing.T, cfg *tls.Config, fleet string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := grpc.NewClient(d.xdsAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		if err != nil {
			return err
		}
		_ = st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "mtls-client", Cluster: fleet,
			UserAgentName: "gRPC Go"}, TypeUrl: resource.ListenerType, ResourceNames: []string{fmt.Sprintf("lb_%d", lb.ID)}})
		res, err := st.Recv()
		if err == nil && len(res.GetResources()) != 1 {
			t.Errorf("got %d listeners, want lb_%d", len(res.GetResources()), lb.ID)
		}
		return err
	}
	// handshakeAlert is the TLS alert a raw connection to the xDS port
	// gets with cfg (TLS 1.3: the server's verdict on the client
	// certificate arrives with the first read).
	handshakeAlert := func(t *testing.T, cfg *tls.Config) error {
		t.Helper()
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"}
		c, err := tls.Dial("tcp", d.xdsAddr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err
	}
	clientCfg := func(cert *tls.Certificate) *tls.Config {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return cfg
	}

	t.Run("the fleet's certificate reads its listener", func(t *testing.T) {
		c := client.cert(t)
		if err := ads(t, clientCfg(&c), "default"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no client certificate: refused in the handshake", func(t *testing.T) {
		if err := handshakeAlert(t, clientCfg(nil)); err == nil || !strings.Contains(err.Error(), "tls: certificate required") {
			t.Errorf("raw TLS: %v, want the certificate required alert", err)
		}
		if err := ads(t, clientCfg(nil), "default"); status.Code(err) != codes.Unavailable {
			t.Errorf("ADS: %v, want Unavailable", err)
		}
	})
	t.Run("a certificate from another CA: refused in the handshake", func(t *testing.T) {
		c := rogue.cert(t)
		if err := handshakeAlert(t, clientCfg(&c)); err == nil || !strings.Contains(err.Error(), "tls: unknown certificate authority") {
			t.Errorf("raw TLS: %v, want the unknown certificate authority alert", err)
		}
		if err := ads(t, clientCfg(&c), "default"); status.Code(err) != codes.Unavailable {
			t.Errorf("ADS: %v, want Unavailable", err)
		}
	})
	t.Run("a node claiming fleet default with a certificate for fleet edge: PermissionDenied", func(t *testing.T) {
		c := edge.cert(t)
		err := ads(t, clientCfg(&c), "default")
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `is for fleet "edge"`) {
			t.Errorf("ADS: %v, want PermissionDenied naming fleet edge", err)
		}
		// The real grpc-go client with that certificate gets no traffic.
		boot := run(t, bin, "envoy-bootstrap", "--proxyless", "--fleet", "default", "--node-id", "mtls-client",
			"--xds-address", d.xdsAddr, "--tls-dir", string(edge))
		r, err := xds.NewXDSResolverWithConfigForTesting(boot)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(fmt.Sprintf("xds:///lb_%d", lb.ID),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(r))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// grpc-go's resolver puts the channel in TRANSIENT_FAILURE in two
		// steps: an update with no addresses, then the ADS error. A call
		// landing between them fails with "produced zero addresses"; every
		// call must fail Unavailable, and the ADS error must show within
		// the deadline.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{})
			cancel()
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("a call through the refused client: %v, want Unavailable", err)
			}
			if strings.Contains(err.Error(), "PermissionDenied") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a call through the refused client: %v, want Unavailable carrying the PermissionDenied", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := deniedMetric(t, httpsClient, httpAddr, "fleet"); n < 2 {
			t.Errorf("lbaas_xds_auth_denied_total{reason=\"fleet\"} = %v, want at least 2", n)
		}
	})

	t.Run("REST over TLS with curl trusting the minted CA", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("SKIPPING: curl is not installed (.ci/run installs it)")
		}
		out, err := exec.Command("curl", "-sS", "--fail", "--cacert", filepath.Join(ca, "ca.crt"),
			"-H", "X-Auth-Token: "+a.token,
			fmt.Sprintf("https://%s/v1.0/%s/loadbalancers/%d", httpAddr, a.account, lb.ID)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"status":"ACTIVE"`) {
			t.Errorf("curl over TLS: %v\n%s", err, out)
		}
		out, err = exec.Command("curl", "-sS", fmt.Sprintf("https://%s/healthz", httpAddr)).CombinedOutput()
		if err == nil {
			t.Errorf("curl without the CA trusted the server: %s", out)
		}
	})
	t.Run("gRPC API over TLS", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-auth-token", a.token)
		res, err := lbaasv1.NewLoadBalancerServiceClient(conn).ListLoadBalancers(ctx, &lbaasv1.ListLoadBalancersRequest{Account: a.account})
		if err != nil || len(res.GetLoadBalancers()) != 1 {
			t.Errorf("ListLoadBalancers over TLS: %v, %v", res, err)
		}
		plain, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		_, err = lbaasv1.NewLoadBalancerServiceClient(plain).ListLoadBalancers(ctx, &lbaasv1.ListLoadBalancersRequest{Account: a.account})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext gRPC to the TLS port: %v, want Unavailable", err)
		}
	})
	t.Run("a replaced server certificate is served without a restart", func(t *testing.T) {
		serial := func(addr string) string {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
		before := serial(httpAddr)
		run(t, bin, "cert", "server", "--ca", ca, "--out", string(server))
		leaf, err := x509.ParseCertificate(server.cert(t).Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if leaf.SerialNumber.String() == before {
			t.Fatal("the new certificate has the old serial")
		}
		for _, addr := range []string{httpAddr, grpcAddr, d.xdsAddr} {
			waitFor(t, "the new certificate on "+addr, func() bool { return serial(addr) == leaf.SerialNumber.String() })
		}
	})
	d.stop(t)
}

// signIn creates a user with the binary and signs in at base.
func signIn(t *testing.T, bin, dir, base string, client *http.Client) *api {
	t.Helper()
	cmd := exec.Command(bin, "user", "create", "--username", "e2e", "--tenant", "777")
	cmd.Dir = dir
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	a := &api{t: t, base: base, account: "777", client: client}
	var out struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	body := fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"e2e","apiKey":%q}}}`, strings.TrimSpace(string(key)))
	a.do("POST", "/v2.0/tokens", body, 200, &out)
	a.token = out.Access.Token.ID
	return a
}

// deniedMetric reads lbaas_xds_auth_denied_total for a reason.
func deniedMetric(t *testing.T, c *http.Client, httpAddr, reason string) float64 {
	t.Helper()
	res, err := c.Get("https://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	prefix := `lbaas_xds_auth_denied_total{reason="` + reason + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var n float64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}
