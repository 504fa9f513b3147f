package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pki"
)

// TestRackspaceSDK runs a real Rackspace SDK from a public package
// registry, pkgcloud's Rackspace load balancer provider (npm), used as its
// documentation shows, against lbaasd: it signs in at lbaasd's identity
// endpoint, finds the API in the service catalog, and makes its
// load-balancer calls for every feature lbaasd serves (e2e/rackspacesdk/
// sdk.js lists them). The health prober is off and the nodes are loopback
// addresses. Its statistics and usage calls read the numbers of real gRPC
// calls the test sends first through a load balancer of the SDK's account
// (proxyless grpc-go clients, their load reports). Without node or npm, or
// the registry, the test skips loudly; SDK_REQUIRED=1 (CI) makes that a
// failure.
func TestRackspaceSDK(t *testing.T) {
	t.Parallel()
	modules := nodeModules(t, "rackspacesdk", "the Rackspace SDK (pkgcloud) end-to-end test", "SDK_REQUIRED")
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	// REST over TLS and xDS with mutual TLS, as a production deployment
	// runs: SSL termination keys go only to the fleet's authenticated
	// proxies, so the SDK's SSL calls end ACTIVE here.
	mtls := newMutualTLS(t, bin, dir)
	d := startDaemon(t, bin, dir, append(mtls.env(), "LBAASD_HEALTH_CHECKS=false", "LBAASD_REGION=ORD",
		"LBAASD_LOAD_REPORT_INTERVAL=200ms", "LBAASD_USAGE_FLUSH_INTERVAL=200ms"))
	d.httpURL = "https://" + strings.TrimPrefix(d.httpURL, "http://")
	cmd := exec.Command(bin, "user", "create", "--username", "sdk", "--tenant", "5806")
	cmd.Dir = dir
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}

	// Real traffic in the SDK's account: 9 calls, 2 of them failing.
	a := &api{t: t, base: d.httpURL, account: "5806", client: mtls.client(t)}
	var token struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	a.do("POST", "/v2.0/tokens", fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"sdk","apiKey":%q}}}`,
		strings.TrimSpace(string(key))), 200, &token)
	a.token = token.Access.Token.ID
	be := startBackend(t, "sdk-traffic")
	traffic := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"traffic","protocol":"HTTP","port":80,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, nodeJSON("127.0.0.1", be.port, ""))).ID
	a.waitStatus(traffic, "ACTIVE")
	be.failNext.Store(2)
	if failed := calls(t, newProxyless(t, bin, d, "sdk-client", "--tls-dir", string(mtls.fleet)).dial(traffic), 9); failed != 2 {
		t.Fatalf("%d of 9 calls failed, want 2", failed)
	}
	waitStats(t, a, map[int]stats{traffic: {Requests: 9, RequestsSucceeded: 7, RequestErrors: 2}})
	waitUsage(t, a, map[int][2]int{traffic: {9, 2}})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "node", filepath.Join(repoRoot(t), "e2e", "rackspacesdk", "sdk.js"))
	run.Env = append(os.Environ(), "NODE_PATH="+modules, "NODE_EXTRA_CA_CERTS="+filepath.Join(mtls.ca, "ca.crt"),
		"AUTH_URL="+d.httpURL, "USERNAME=sdk",
		"API_KEY="+strings.TrimSpace(string(key)), "REGION=ORD", "NODE_A=127.0.0.1", "NODE_B=127.0.0.2",
		"TRAFFIC_LB="+strconv.Itoa(traffic), "TRAFFIC_CALLS=9", "TRAFFIC_ERRORS=2")
	cert, privateKey := selfSigned(t, "sdk.example.com")
	run.Env = append(run.Env, "SSL_CERT="+cert, "SSL_KEY="+privateKey)
	out, err := run.CombinedOutput()
	t.Logf("pkgcloud:\n%s", out)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "done") {
		t.Fatalf("the SDK's calls failed: %v\n%s\nlbaasd:\n%s", err, out, d.stderr.String())
	}
}

// selfSigned is a certificate for host valid for a day and its RSA key,
// in PEM, for SSL termination.
func selfSigned(t *testing.T, host string) (cert, key string) {
	t.Helper()
	p, err := pki.SelfSignedRSA(host, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return string(p.CertPEM), string(p.KeyPEM)
}
