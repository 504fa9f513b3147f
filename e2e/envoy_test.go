package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envoyBinary finds a real Envoy: ENVOY_BIN, or envoy on PATH. Without
// one the test skips loudly (fails with ENVOY_REQUIRED=1).
func envoyBinary(t *testing.T) string {
	t.Helper()
	return findTool(t, "ENVOY_BIN", "ENVOY_REQUIRED", []string{"envoy"},
		fmt.Sprintf("the Envoy end-to-end test %s: no Envoy binary (set ENVOY_BIN or put envoy on PATH)", t.Name()))
}

// findTool is the binary $binEnv names, else the first of names on PATH;
// without one the test skips loudly with why (fails when $required is 1).
func findTool(t *testing.T, binEnv, required string, names []string, why string) string {
	t.Helper()
	if bin := os.Getenv(binEnv); bin != "" {
		return bin
	}
	for _, name := range names {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	skipUnlessRequired(t, required, "%s", why)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startEnvoy runs Envoy with the bootstrap lbaasd writes for it (extra
// are more envoy-bootstrap flags), on the command line lbaasd prints.
func startEnvoy(t *testing.T, envoyBin, lbaasd string, d *daemon, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	gen := exec.Command(lbaasd, append([]string{"envoy-bootstrap", "--fleet", "default", "--xds-address", d.xdsAddr,
		"--node-id", "e2e-envoy", "--admin-address", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, extra...)...)
	var printed strings.Builder
	gen.Stderr = &printed
	boot, err := gen.Output()
	if err != nil {
		t.Fatalf("envoy-bootstrap: %v: %s", err, printed.String())
	}
	path := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(path, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	// "start Envoy with: envoy -c <bootstrap file> --drain-time-s N"
	_, line, ok := strings.Cut(strings.TrimSpace(printed.String()), "start Envoy with: envoy ")
	if !ok {
		t.Fatalf("envoy-bootstrap printed no Envoy command line: %q", printed.String())
	}
	args := strings.Fields(strings.ReplaceAll(line, "<bootstrap file>", path))
	cmd := exec.Command(envoyBin, append(args, "--disable-hot-restart", "--base-id", strconv.Itoa(freePort(t)), "-l", "warning")...)
	log, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("envoy log:\n%s", b)
		}
	})
}

// envoyStack runs lbaasd (with env), a tenant of it, and an Envoy of its
// default fleet (bootstrap: more envoy-bootstrap flags); it skips without
// an Envoy binary.
func envoyStack(t *testing.T, env []string, bootstrap ...string) (*api, *daemon) {
	t.Helper()
	envoyBin := envoyBinary(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, env)
	a := newAPI(t, bin, dir, d)
	startEnvoy(t, envoyBin, bin, d, bootstrap...)
	return a, d
}

// httpBackend answers every request with its name.
func httpBackend(t *testing.T, name string) (port int, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		fmt.Fprint(w, name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() { _ = srv.Close() }
}

// tcpServer accepts connections on loopback and hands each to handle.
func tcpServer(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// tcpBackend writes its name on every connection and closes it.
func tcpBackend(t *testing.T, name string) int {
	return tcpServer(t, func(c net.Conn) {
		fmt.Fprintln(c, name)
		c.Close()
	})
}

func httpHits(url string, n int) map[string]int {
	out := map[string]int{}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		res, err := client.Get(url)
		if err != nil {
			out["error"]++
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			out[fmt.Sprint(res.StatusCode)]++
			continue
		}
		out[string(b)]++
	}
	return out
}

func waitHTTP(t *testing.T, url, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last map[string]int
	for time.Now().Before(deadline) {
		if last = httpHits(url, 20); ok(last) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: last sample %v", what, last)
}

func vipOf(t *testing.T, a *api, id int) string {
	t.Helper()
	var out struct {
		LoadBalancer struct {
			VirtualIps []struct {
				ID      int    `json:"id"`
				Address string `json:"address"`
			} `json:"virtualIps"`
		} `json:"loadBalancer"`
	}
	a.do("GET", a.lbPath(id, ""), "", 200, &out)
	return out.LoadBalancer.VirtualIps[0].Address
}

// The same scenarios as the proxyless test, through a real Envoy binding
// the virtual IPs on loopback (127.1.0.0/16).
func TestEnvoy(t *testing.T) {
	t.Parallel()
	a, _ := envoyStack(t, nil)

	pa, _ := httpBackend(t, "a")
	pb, _ := httpBackend(t, "b")
	pc, _ := httpBackend(t, "c")
	port := freePort(t)
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"web","protocol":"HTTP","port":%d,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`, port,
		nodeJSON("127.0.0.1", pa, ""), nodeJSON("127.0.0.1", pb, "")))
	a.waitStatus(lb.ID, "ACTIVE") // Envoy acknowledged
	url := fmt.Sprintf("http://%s:%d/", vipOf(t, a, lb.ID), port)

	waitHTTP(t, url, "both nodes serve through Envoy", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	setCondition := func(node int, condition string) {
		a.do("PUT", a.lbPath(lb.ID, "/nodes/"+strconv.Itoa(node)), `{"node":{"condition":"`+condition+`"}}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
	}
	setCondition(lb.Nodes[1].ID, "DISABLED")
	waitHTTP(t, url, "DISABLED node out", func(h map[string]int) bool { return h["a"] == 20 })
	setCondition(lb.Nodes[1].ID, "DRAINING")
	waitHTTP(t, url, "DRAINING node gets nothing", func(h map[string]int) bool { return h["a"] == 20 })
	a.do("POST", a.lbPath(lb.ID, "/nodes"), `{"nodes":[`+nodeJSON("127.0.0.1", pc, "")+`]}`, 202, nil)
	a.waitStatus(lb.ID, "ACTIVE")
	waitHTTP(t, url, "added node serves", func(h map[string]int) bool { return h["c"] > 0 && h["b"] == 0 })

	t.Run("secondary takes over when the primary is gone", func(t *testing.T) {
		pp, stopPrimary := httpBackend(t, "primary")
		ps, _ := httpBackend(t, "secondary")
		fport := freePort(t)
		f := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"failover","protocol":"HTTP","port":%d,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`, fport,
			nodeJSON("127.0.0.1", pp, ""), nodeJSON("127.0.0.1", ps, `,"type":"SECONDARY"`)))
		a.waitStatus(f.ID, "ACTIVE")
		furl := fmt.Sprintf("http://%s:%d/", vipOf(t, a, f.ID), fport)
		waitHTTP(t, furl, "primary only", func(h map[string]int) bool { return h["primary"] == 20 })
		stopPrimary()
		waitHTTP(t, furl, "secondary after ejection", func(h map[string]int) bool { return h["secondary"] == 20 })
	})

	t.Run("TCP", func(t *testing.T) {
		tport := freePort(t)
		tcp := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"tcp","protocol":"TCP","port":%d,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, tport, nodeJSON("127.0.0.1", tcpBackend(t, "tcp-node"), "")))
		a.waitStatus(tcp.ID, "ACTIVE")
		addr := net.JoinHostPort(vipOf(t, a, tcp.ID), strconv.Itoa(tport))
		waitFor(t, "a TCP reply through Envoy", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			return strings.TrimSpace(line) == "tcp-node"
		})
	})

	t.Run("a listener Envoy cannot take is ERROR, and the rest keeps working", func(t *testing.T) {
		// Occupy a port of the first load balancer's VIP, then ask for a
		// second load balancer on that VIP and port: Envoy cannot bind it.
		vip := vipOf(t, a, lb.ID)
		taken, err := net.Listen("tcp", net.JoinHostPort(vip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		var vipID struct {
			VirtualIps []struct{ ID int } `json:"virtualIps"`
		}
		a.do("GET", a.lbPath(lb.ID, "/virtualips"), "", 200, &vipID)
		bad := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"clash","protocol":"HTTP","port":%d,"virtualIps":[{"id":%d}],"nodes":[%s]}}`,
			taken.Addr().(*net.TCPAddr).Port, vipID.VirtualIps[0].ID, nodeJSON("127.0.0.1", pa, "")))
		failed := a.waitStatus(bad.ID, "ERROR")
		if !strings.Contains(failed.StatusDescription, fmt.Sprintf("lb_%d", bad.ID)) {
			t.Errorf("statusDescription %q does not carry Envoy's error", failed.StatusDescription)
		}
		waitHTTP(t, url, "the first load balancer still serves", func(h map[string]int) bool { return h["a"]+h["c"] == 20 })
		setCondition(lb.Nodes[1].ID, "ENABLED")
		waitHTTP(t, url, "and still takes changes", func(h map[string]int) bool { return h["b"] > 0 })
	})
}
