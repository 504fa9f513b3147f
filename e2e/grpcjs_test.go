package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Node harnesses (e2e/grpcjs, e2e/rackspacesdk): each holds a small
// Node program and its package.json with exact versions. The tests install
// it with npm into a cache directory outside the repository, one per
// package.json content, and reuse it on later runs. No lock file is written
// (.npmrc: package-lock=false).

// skipUnlessRequired skips with a line on stderr (shown without -v when
// go test runs one package directory), or fails when the environment
// variable required is 1 (CI, which installs node, npm and Envoy).
func skipUnlessRequired(t *testing.T, required, format string, args ...any) {
	t.Helper()
	if os.Getenv(required) == "1" {
		t.Fatalf(format+" ("+required+"=1)", args...)
	}
	msg := "SKIPPING " + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, msg)
	t.Log(msg)
	t.Skip(msg)
}

// offline tells whether npm failed because the registry cannot be reached.
var offline = regexp.MustCompile(`ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network`)

// grpcjsModules installs the grpc-js harness's node modules.
func grpcjsModules(t *testing.T) string {
	t.Helper()
	return nodeModules(t, "grpcjs", "the grpc-js end-to-end tests", "GRPCJS_REQUIRED")
}

// nodeModules installs (once per package.json content) the node modules of
// the harness e2e/<harness> and returns their directory; without node or
// npm, or the registry, it skips what (fails with <required>=1).
func nodeModules(t *testing.T, harness, what, required string) string {
	t.Helper()
	_, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		skipUnlessRequired(t, required, "%s: node or npm is not installed (Debian packages nodejs, npm)", what)
	}
	src := filepath.Join(repoRoot(t), "e2e", harness)
	pkg, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	npmrc, err := os.ReadFile(filepath.Join(src, ".npmrc"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256(append(append([]byte{}, pkg...), npmrc...))
	dir := filepath.Join(base, "lbaas-e2e", harness+"-"+hex.EncodeToString(sum[:6]))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "installed")); err == nil {
		return modules
	}
	// Install into a fresh directory and rename it into place, so that a
	// run that is interrupted, or one running beside this one, never sees
	// half an installation.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, b := range map[string][]byte{"package.json": pkg, ".npmrc": npmrc} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = tmp
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if offline.Match(out) {
			skipUnlessRequired(t, required, "%s: npm install failed, the registry is unreachable: %v\n%s", what, err, out)
		}
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "installed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "installed")); statErr != nil {
			t.Fatalf("installing the %s harness into %s: %v", harness, dir, err)
		}
		// Another run installed it first.
	}
	t.Logf("installed the %s harness into %s in %v", harness, dir, time.Since(start).Round(time.Millisecond))
	return modules
}

// grpcjsClient is a running e2e/grpcjs/client.js dialling xds:///lb_<id>.
type grpcjsClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    chan string
	stderr *syncBuffer
}

// startGRPCJS starts a grpc-js client of lb_<id> with the proxyless
// bootstrap the binary writes.
func startGRPCJS(t *testing.T, modules, bin string, d *daemon, nodeID string, lbID int) *grpcjsClient {
	t.Helper()
	return startGRPCJSWith(t, modules, bin, d, nodeID, nil, lbID)
}

// startGRPCJSWith starts a grpc-js client with extra environment that
// calls lb_<lbIDs[0]> and resolves the other load balancers too.
func startGRPCJSWith(t *testing.T, modules, bin string, d *daemon, nodeID string, env []string, lbIDs ...int) *grpcjsClient {
	t.Helper()
	lbID := lbIDs[0]
	boot, err := exec.Command(bin, "envoy-bootstrap", "--proxyless", "--fleet", "default",
		"--xds-address", d.xdsAddr, "--node-id", nodeID).Output()
	if err != nil {
		t.Fatalf("envoy-bootstrap: %v", err)
	}
	script := filepath.Join(repoRoot(t), "e2e", "grpcjs", "client.js")
	args := []string{script}
	for _, id := range lbIDs {
		args = append(args, fmt.Sprintf("xds:///lb_%d", id))
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(withoutEnv(withoutEnv(os.Environ(), "GRPC_XDS_BOOTSTRAP"), "NODE_PATH"),
		"NODE_PATH="+modules, "GRPC_XDS_BOOTSTRAP_CONFIG="+string(boot))
	cmd.Env = append(cmd.Env, env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &grpcjsClient{t: t, cmd: cmd, in: in, out: make(chan string, 16), stderr: &syncBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			c.out <- sc.Text()
		}
		close(c.out)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("grpc-js client (lb_%d) stderr:\n%s", lbID, c.stderr.String())
		}
	})
	return c
}

// hits makes n calls through grpc-js and counts the replies per backend.
func (c *grpcjsClient) hits(n int) (map[string]int, error) {
	if _, err := fmt.Fprintf(c.in, "%d\n", n); err != nil {
		return nil, fmt.Errorf("grpc-js client: %w (stderr: %s)", err, c.stderr.String())
	}
	select {
	case line, ok := <-c.out:
		if !ok {
			return nil, fmt.Errorf("grpc-js client exited (stderr: %s)", c.stderr.String())
		}
		var res struct {
			Hits  map[string]int `json:"hits"`
			Error *string        `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("grpc-js client said %q: %w", line, err)
		}
		if res.Error != nil {
			return res.Hits, errors.New(*res.Error)
		}
		return res.Hits, nil
	case <-time.After(time.Duration(n)*5*time.Second + 5*time.Second):
		return nil, fmt.Errorf("grpc-js client did not answer (stderr: %s)", c.stderr.String())
	}
}

// eventuallyJS samples grpc-js traffic until ok accepts a sample (10 s at most).
func eventuallyJS(t *testing.T, c *grpcjsClient, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]int
	var err error
	for time.Now().Before(deadline) {
		if last, err = c.hits(20); err == nil && ok(last) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: last sample %v, error %v", what, last, err)
}

// Traffic through Node's grpc-js xDS client, the second real proxyless
// data plane: load balancers whose policy grpc-js must understand (round
// robin, and least connections, which it only gets as a fallback in the
// cluster's load_balancing_policy), a DISABLED node, and the status
// following grpc-js's acknowledgements.
func TestProxylessGRPCJS(t *testing.T) {
	t.Parallel()
	modules := grpcjsModules(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	be := map[string]*backend{}
	for _, name := range []string{"a", "b", "c", "d"} {
		be[name] = startBackend(t, name)
	}

	for i, algorithm := range []string{"ROUND_ROBIN", "LEAST_CONNECTIONS"} {
		x, y := []string{"a", "c"}[i], []string{"b", "d"}[i]
		t.Run(algorithm, func(t *testing.T) {
			lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"js-%d","protocol":"HTTP","port":%d,"algorithm":%q,
				"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`, i, 80+i, algorithm,
				nodeJSON("127.0.0.1", be[x].port, ""), nodeJSON("127.0.0.1", be[y].port, "")))
			a.waitStatus(lb.ID, "ACTIVE")
			c := startGRPCJS(t, modules, bin, d, "grpcjs-"+algorithm, lb.ID)

			// Before any test below can mean anything, grpc-js must have
			// accepted the load balancer: a refusal shows as ERROR.
			ok := t.Run("requests reach the nodes", func(t *testing.T) {
				deadline := time.Now().Add(10 * time.Second)
				for {
					h, err := c.hits(20)
					if err == nil && h[x] > 0 && h[y] > 0 {
						break
					}
					if st := a.get(lb.ID); st.Status == "ERROR" || time.Now().After(deadline) {
						t.Fatalf("grpc-js: last sample %v, error %v; load balancer %s: %s", h, err, st.Status, st.StatusDescription)
					}
					time.Sleep(50 * time.Millisecond)
				}
				if st := a.get(lb.ID); st.Status != "ACTIVE" {
					t.Fatalf("load balancer is %s (%s) with grpc-js connected, want ACTIVE", st.Status, st.StatusDescription)
				}
			})
			if !ok {
				t.FailNow()
			}

			t.Run("a DISABLED node gets no traffic", func(t *testing.T) {
				node := strconv.Itoa(lb.Nodes[1].ID)
				a.do("PUT", a.lbPath(lb.ID, "/nodes/"+node), `{"node":{"condition":"DISABLED"}}`, 202, nil)
				a.waitStatus(lb.ID, "ACTIVE")
				eventuallyJS(t, c, "only "+x+" serves", func(h map[string]int) bool { return h[x] == 20 })
				// And it stays so.
				if h, err := c.hits(40); err != nil || h[x] != 40 {
					t.Fatalf("with %s DISABLED: %v, %v", y, h, err)
				}
				a.do("PUT", a.lbPath(lb.ID, "/nodes/"+node), `{"node":{"condition":"ENABLED"}}`, 202, nil)
				a.waitStatus(lb.ID, "ACTIVE")
				eventuallyJS(t, c, y+" is back", func(h map[string]int) bool { return h[y] > 0 })
			})

			// ACTIVE means grpc-js acknowledged: while the client process
			// is stopped a change it uses stays PENDING_UPDATE.
			t.Run("the load balancer turns ACTIVE once grpc-js acknowledged", func(t *testing.T) {
				if n := xdsClients(t, d); n != 1 {
					t.Fatalf("%d proxyless clients connected, want the grpc-js one", n)
				}
				stop(t, c.cmd)
				a.do("PUT", a.lbPath(lb.ID, ""), fmt.Sprintf(`{"loadBalancer":{"timeout":%d}}`, 45+i), 202, nil)
				time.Sleep(time.Second)
				if st := a.get(lb.ID); st.Status != "PENDING_UPDATE" {
					t.Fatalf("with the grpc-js client stopped the load balancer is %s (%s), want PENDING_UPDATE", st.Status, st.StatusDescription)
				}
				resume(t, c.cmd)
				a.waitStatus(lb.ID, "ACTIVE")
				eventuallyJS(t, c, "both serve after the change", func(h map[string]int) bool { return h[x] > 0 && h[y] > 0 })
			})
			_ = c.in.Close()
			waitFor(t, "the grpc-js client to disconnect", func() bool { return xdsClients(t, d) == 0 })
		})
	}
}

// metric reads one sample of the daemon's /metrics (0 when absent).
func metric(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	res, err := http.Get(d.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return v
		}
	}
	return 0
}

// grpc-js refuses a load balancer it cannot serve (here: ring hash, turned
// off in this client) naming it only by its index in the response, and
// the response also carries a load balancer it accepts. Exactly the
// refused one goes to ERROR, with grpc-js's message, although it had no
// pending change (the client joined later); the other stays ACTIVE and
// serves; the refused version is not sent again (no NACK storm).
func TestGRPCJSRefusalIsPinnedByIndex(t *testing.T) {
	t.Parallel()
	modules := grpcjsModules(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	good, other := startBackend(t, "good"), startBackend(t, "other")
	ok := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"js-ok","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, nodeJSON("127.0.0.1", good.port, "")))
	bad := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"js-sticky","protocol":"HTTP","port":81,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, nodeJSON("127.0.0.1", other.port, "")))
	a.waitStatus(ok.ID, "ACTIVE")
	a.waitStatus(bad.ID, "ACTIVE")
	a.do("PUT", a.lbPath(bad.ID, "/sessionpersistence"), `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, 202, nil)
	a.waitStatus(bad.ID, "ACTIVE")

	// This grpc-js has no ring hash: it refuses the sticky load balancer.
	c := startGRPCJSWith(t, modules, bin, d, "grpcjs-no-ring-hash",
		[]string{"GRPC_EXPERIMENTAL_XDS_CUSTOM_LB_CONFIG=false", "GRPC_XDS_EXPERIMENTAL_ENABLE_RING_HASH=false"}, ok.ID, bad.ID)
	st := a.waitStatus(bad.ID, "ERROR")
	t.Logf("the refused load balancer: %s (%s)", st.Status, st.StatusDescription)
	if !strings.Contains(st.StatusDescription, "index") {
		t.Errorf("statusDescription %q does not carry grpc-js's message", st.StatusDescription)
	}
	eventuallyJS(t, c, "the accepted load balancer serves", func(h map[string]int) bool { return h["good"] == 20 })
	if st := a.get(ok.ID); st.Status != "ACTIVE" {
		t.Fatalf("the load balancer grpc-js accepted is %s (%s)", st.Status, st.StatusDescription)
	}
	nacks := metric(t, d, `lbaas_xds_nacks_total{fleet="default",type="cds"}`)
	cpu := metric(t, d, "process_cpu_seconds_total")
	time.Sleep(5 * time.Second)
	t.Logf("with a grpc-js client refusing a load balancer: %.0f NACKs before, lbaasd used %.1f%% of a core over the next 5 s",
		nacks, (metric(t, d, "process_cpu_seconds_total")-cpu)/5*100)
	if more := metric(t, d, `lbaas_xds_nacks_total{fleet="default",type="cds"}`) - nacks; more > 2 {
		t.Fatalf("%v more NACKs in 5 s without any change: the refused version is being sent again", more)
	}
	if nacks < 1 {
		t.Fatal("no NACK counted")
	}
}
