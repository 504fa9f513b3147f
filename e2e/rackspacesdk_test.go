package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRackspaceSDK runs a real Rackspace SDK from a public package
// registry, pkgcloud's Rackspace load balancer provider (npm), used as its
// documentation shows, against lbaasd: it signs in at lbaasd's identity
// endpoint, finds the API in the service catalog, and makes its
// load-balancer calls for every feature lbaasd serves (e2e/rackspacesdk/
// sdk.js lists them). The health prober is off and the nodes are loopback
// addresses. Without node or npm, or the registry, the test skips loudly;
// SDK_REQUIRED=1 (CI) makes that a failure.
func TestRackspaceSDK(t *testing.T) {
	modules := nodeModules(t, "rackspacesdk", "the Rackspace SDK (pkgcloud) end-to-end test", "SDK_REQUIRED")
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, []string{"LBAASD_HEALTH_CHECKS=false", "LBAASD_REGION=ORD"})
	cmd := exec.Command(bin, "user", "create", "--username", "sdk", "--tenant", "5806")
	cmd.Dir = dir
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "node", filepath.Join(repoRoot(t), "e2e", "rackspacesdk", "sdk.js"))
	run.Env = append(os.Environ(), "NODE_PATH="+modules, "AUTH_URL="+d.httpURL, "USERNAME=sdk",
		"API_KEY="+strings.TrimSpace(string(key)), "REGION=ORD", "NODE_A=127.0.0.1", "NODE_B=127.0.0.2")
	out, err := run.CombinedOutput()
	t.Logf("pkgcloud:\n%s", out)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "done") {
		t.Fatalf("the SDK's calls failed: %v\n%s\nlbaasd:\n%s", err, out, d.stderr.String())
	}
}
