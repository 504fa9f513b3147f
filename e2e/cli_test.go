package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	_ "github.com/mattn/go-sqlite3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/yaml"
)

// cli runs the real lbaas binary against a real lbaasd, as a user would:
// credentials in the environment, its own cache and config directories.
type cli struct {
	t   *testing.T
	bin string
	env []string
	db  *sql.DB // the daemon's database, to count the tokens it issued
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(args ...string) cliResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		c.t.Fatalf("lbaas %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("lbaas %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// json runs a command with -o json and decodes what it printed.
func (c *cli) json(out any, args ...string) {
	c.t.Helper()
	s := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		c.t.Fatalf("lbaas %s -o json printed %q: %v", strings.Join(args, " "), s, err)
	}
}

// fails runs a command that must exit with code and say want on stderr.
func (c *cli) fails(code int, want string, args ...string) cliResult {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		c.t.Fatalf("lbaas %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	return r
}

// tokens counts the tokens the daemon has issued.
func (c *cli) tokens() int {
	c.t.Helper()
	var n int
	if err := c.db.QueryRow("SELECT count(*) FROM tokens").Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	return n
}

func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func startCLI(t *testing.T) (*cli, *daemon, string) {
	return startCLIWith(t, nil, nil)
}

// startCLIWith starts the daemon with env, after before (given the lbaasd
// binary and its directory) has run.
func startCLIWith(t *testing.T, env []string, before func(lbaasd, dir string)) (*cli, *daemon, string) {
	dir := t.TempDir()
	lbaasd := buildBinary(t, dir)
	if before != nil {
		before(lbaasd, dir)
	}
	d := startDaemon(t, lbaasd, dir, env)
	cmd := exec.Command(lbaasd, "user", "create", "--username", "alice", "--tenant", "1234")
	cmd.Dir = dir
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "lbaasd.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	home := t.TempDir()
	c := &cli{t: t, bin: goBuild(t, dir, "./cmd/lbaas"), db: db, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"LBAAS_AUTH_URL=" + d.httpURL + "/v2.0", "LBAAS_USERNAME=alice", "LBAAS_API_KEY=" + strings.TrimSpace(string(key)),
	}}
	return c, d, home
}

type cliLB struct {
	ID                int    `json:"id"`
	Name              string `json:"name"`
	Status            string `json:"status"`
	StatusDescription string `json:"statusDescription"`
	Algorithm         string `json:"algorithm"`
	Nodes             []struct {
		ID        int    `json:"id"`
		Address   string `json:"address"`
		Port      int    `json:"port"`
		Condition string `json:"condition"`
	} `json:"nodes"`
	VirtualIps []struct {
		ID        int    `json:"id"`
		IPVersion string `json:"ipVersion"`
	} `json:"virtualIps"`
}

// The client end to end: create with --wait, lists as a table, JSON and
// YAML, nodes, virtual IPs, every feature, metadata, the catalog, faults
// and their exit codes, and the token cache, against a real lbaasd.
func TestCLI(t *testing.T) {
	t.Parallel()
	c, d, home := startCLI(t)

	var lb cliLB
	c.json(&lb, "lb", "create", "--name", "web", "--protocol", "HTTP", "--port", "80", "--vip", "PUBLIC",
		"--node", "127.0.0.1:8081", "--node", "127.0.0.1:8082,weight=2", "--wait")
	if lb.Status != "ACTIVE" || len(lb.Nodes) != 2 || lb.Name != "web" {
		t.Fatalf("created with --wait: %+v", lb)
	}
	id := fmt.Sprint(lb.ID)

	t.Run("list as a table, JSON and YAML", func(t *testing.T) {
		table := c.ok("lb", "list")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "STATUS") ||
			!strings.Contains(lines[1], "web") || !strings.Contains(lines[1], "ACTIVE") {
			t.Errorf("table:\n%s", table)
		}
		var list []cliLB
		c.json(&list, "lb", "list")
		if len(list) != 1 || list[0].ID != lb.ID {
			t.Errorf("json list: %+v", list)
		}
		var fromYAML []cliLB
		if err := yaml.Unmarshal([]byte(c.ok("lb", "list", "-o", "yaml")), &fromYAML); err != nil || len(fromYAML) != 1 || fromYAML[0].Name != "web" {
			t.Errorf("yaml list: %+v %v", fromYAML, err)
		}
		detail := c.ok("lb", "get", id)
		for _, want := range []string{"FIELD", "status", "ACTIVE", "NODES:", "VIRTUALIPS:", "127.0.0.1"} {
			if !strings.Contains(detail, want) {
				t.Errorf("lb get lacks %q:\n%s", want, detail)
			}
		}
	})

	t.Run("add and remove nodes", func(t *testing.T) {
		var added []struct {
			ID        int    `json:"id"`
			Condition string `json:"condition"`
		}
		c.json(&added, "node", "add", id, "127.0.0.1:9", "127.0.0.1:10,condition=DISABLED", "--condition", "DRAINING", "--wait")
		if len(added) != 2 || added[0].Condition != "DRAINING" || added[1].Condition != "DISABLED" {
			t.Fatalf("added %+v", added)
		}
		// --wait is quiet when its output is not a terminal.
		if r := c.run("node", "update", id, fmt.Sprint(added[1].ID), "--weight", "3", "--wait"); r.code != 0 || r.stderr != "" {
			t.Errorf("node update --wait, piped: exit %d, stderr %q", r.code, r.stderr)
		}
		c.ok("node", "update", id, fmt.Sprint(added[0].ID), fmt.Sprint(added[1].ID), "--condition", "ENABLED", "--wait")
		var nodes []struct{ Condition string }
		c.json(&nodes, "node", "list", id)
		if len(nodes) != 4 || nodes[2].Condition != "ENABLED" || nodes[3].Condition != "ENABLED" {
			t.Errorf("after the bulk update: %+v", nodes)
		}
		c.ok("node", "delete", id, fmt.Sprint(added[0].ID), fmt.Sprint(added[1].ID), "--wait")
		c.json(&nodes, "node", "list", id)
		if len(nodes) != 2 {
			t.Errorf("after delete: %d nodes", len(nodes))
		}
		if out := c.ok("node", "events", id); !strings.Contains(out, "(none)") && !strings.Contains(out, "ID") {
			t.Errorf("node events:\n%s", out)
		}
	})

	t.Run("features", func(t *testing.T) {
		c.ok("healthmonitor", "set", id, "--type", "HTTP", "--path", "/", "--status-regex", "^2", "--body-regex", ".",
			"--delay", "10", "--timeout", "5", "--attempts", "2", "--wait")
		var hm map[string]any
		c.json(&hm, "healthmonitor", "get", id)
		if hm["type"] != "HTTP" || hm["path"] != "/" || hm["attemptsBeforeDeactivation"] != float64(2) {
			t.Errorf("health monitor %v", hm)
		}
		c.ok("healthmonitor", "delete", id, "--wait")
		c.ok("sessionpersistence", "set", id, "HTTP_COOKIE", "--wait")
		c.ok("connectionlogging", "enable", id, "--wait")
		// The service refuses content caching: the fault is shown as it comes.
		c.fails(2, "content caching is not offered", "contentcaching", "enable", id, "--wait")
		c.ok("contentcaching", "disable", id, "--wait")
		c.ok("throttle", "set", id, "--max-connections", "100", "--min-connections", "1", "--max-connection-rate", "50",
			"--rate-interval", "60", "--wait")
		c.ok("accesslist", "add", id, "--deny", "192.0.2.0/24", "--allow", "127.0.0.1", "--wait")
		c.ok("errorpage", "set", id, "--content", "<html>back soon</html>", "--wait")
		var got struct {
			SessionPersistence struct{ PersistenceType string } `json:"sessionPersistence"`
			ConnectionLogging  struct{ Enabled bool }           `json:"connectionLogging"`
			ContentCaching     struct{ Enabled bool }           `json:"contentCaching"`
			ConnectionThrottle struct{ MaxConnections int }     `json:"connectionThrottle"`
			AccessList         []struct{ Address, Type string } `json:"accessList"`
			Status             string
		}
		c.json(&got, "lb", "get", id)
		if got.SessionPersistence.PersistenceType != "HTTP_COOKIE" || !got.ConnectionLogging.Enabled || got.ContentCaching.Enabled ||
			got.ConnectionThrottle.MaxConnections != 100 || len(got.AccessList) != 2 || got.Status != "ACTIVE" {
			t.Errorf("features: %+v", got)
		}
		var page struct{ Content string }
		c.json(&page, "errorpage", "get", id)
		if page.Content != "<html>back soon</html>" {
			t.Errorf("error page %q", page.Content)
		}
		if out := c.ok("accesslist", "list", id); !strings.Contains(out, "192.0.2.0/24") || !strings.Contains(out, "DENY") {
			t.Errorf("access list table:\n%s", out)
		}
		c.ok("accesslist", "clear", id, "--wait")
		c.ok("throttle", "delete", id, "--wait")
		c.ok("sessionpersistence", "delete", id, "--wait")
		c.ok("connectionlogging", "disable", id, "--wait")
		c.ok("errorpage", "delete", id, "--wait")

		// SSL termination: files in, the key never out.
		certFile, keyFile := trialCertificate(t)
		// This daemon's xDS port is plaintext: the key is not published,
		// and --wait ends on the ERROR that says why (exit 4).
		c.fails(4, "--xds-client-ca", "ssltermination", "set", id, "--certificate-file", certFile, "--key-file", keyFile, "--secure-port", "443", "--wait")
		var ssl map[string]any
		c.json(&ssl, "ssltermination", "get", id)
		if ssl["securePort"] != float64(443) || ssl["enabled"] != true || ssl["certificate"] == nil {
			t.Errorf("ssl termination %v", ssl)
		}
		if out := c.ok("ssltermination", "get", id, "-o", "json"); strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "privatekey") {
			t.Errorf("the private key was shown:\n%s", out)
		}
		c.fails(4, "--xds-client-ca", "ssltermination", "set", id, "--secure-traffic-only", "--wait")
		c.json(&ssl, "ssltermination", "get", id)
		if ssl["secureTrafficOnly"] != true || ssl["securePort"] != float64(443) {
			t.Errorf("after --secure-traffic-only: %v", ssl)
		}
		if out := c.ok("ssltermination", "ciphers", id); !strings.Contains(out, "NAME") || !strings.Contains(out, "AES") {
			t.Errorf("ciphers table:\n%s", out)
		}
		c.fails(2, "securePort", "ssltermination", "set", id, "--secure-port", "80")

		// Certificate mappings: files in, the key never out.
		mapCert, mapKey := trialCertificate(t)
		// Held back like the termination on this plaintext xDS port.
		var m map[string]any
		created := c.fails(4, "--xds-client-ca", "certificate-mapping", "create", id, "--host-name", "api.example.com",
			"--certificate-file", mapCert, "--key-file", mapKey, "--wait", "-o", "json")
		if err := json.Unmarshal([]byte(created.stdout), &m); err != nil {
			t.Fatalf("certificate-mapping create printed %q: %v", created.stdout, err)
		}
		mid := fmt.Sprint(m["id"])
		if m["hostName"] != "api.example.com" || m["sslCommonName"] != "www.example.com" || m["sslFingerprint"] == nil {
			t.Errorf("created mapping %v", m)
		}
		for _, args := range [][]string{{"list", id}, {"list", id, "-o", "json"}, {"get", id, mid}, {"get", id, mid, "-o", "yaml"}} {
			out := c.ok(append([]string{"certificate-mapping"}, args...)...)
			if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "privateKey") {
				t.Errorf("lbaas certificate-mapping %v showed the private key:\n%s", args, out)
			}
			if args[0] == "list" && len(args) == 2 && (!strings.Contains(out, "HOST NAME") || !strings.Contains(out, "api.example.com")) {
				t.Errorf("certificate mappings table:\n%s", out)
			}
		}
		c.fails(4, "--xds-client-ca", "certificate-mapping", "update", id, mid, "--host-name", "*.example.com", "--wait")
		c.json(&m, "certificate-mapping", "get", id, mid)
		if m["hostName"] != "*.example.com" {
			t.Errorf("after update: %v", m)
		}
		// The termination's key does not match the mapping's certificate.
		c.fails(2, "certificateMapping.privateKey: does not match", "certificate-mapping", "update", id, mid, "--key-file", keyFile)
		c.fails(1, "give what to change", "certificate-mapping", "update", id, mid)
		c.fails(4, "--xds-client-ca", "certificate-mapping", "delete", id, mid, "--wait")
		c.fails(2, "not found", "certificate-mapping", "get", id, mid)
		c.ok("ssltermination", "delete", id, "--wait")
		c.fails(2, "", "ssltermination", "get", id)

		// Statistics: the reference's fields, zeros with no reporter.
		var stats map[string]any
		c.json(&stats, "stats", id)
		if _, ok := stats["connectTimeOut"]; !ok {
			t.Errorf("stats %v", stats)
		}
		if out := c.ok("stats", id); !strings.Contains(out, "connectTimeOut") {
			t.Errorf("stats table:\n%s", out)
		}

		// Usage: the records of the load balancer's events so far (its
		// creation, SSL termination on and off), its history, and the
		// API's fault for a bad window.
		var records []struct{ EventType, SslMode string }
		c.json(&records, "usage", id)
		var events []string
		for _, r := range records {
			events = append(events, r.EventType)
		}
		if len(records) == 0 || records[0].EventType != "CREATE_LOADBALANCER" || !slices.Contains(events, "SSL_OFF") ||
			records[len(records)-1].SslMode != "OFF" {
			t.Errorf("usage records %+v", records)
		}
		if out := c.ok("usage", id, "--start", "2026-01-01"); !strings.Contains(out, "CREATE_LOADBALANCER") || !strings.Contains(out, "START") {
			t.Errorf("usage table:\n%s", out)
		}
		var points []map[string]any
		c.json(&points, "usage", id, "--history", "day")
		if len(points) != 288 || points[0]["requests"] != float64(0) {
			t.Errorf("%d points of history, the first %v", len(points), points[0])
		}
		c.fails(2, "startTime", "usage", id, "--start", "yesterday")
		c.fails(2, "window", "usage", id, "--history", "week")

		c.ok("lb", "update", id, "--algorithm", "ROUND_ROBIN", "--wait")
		c.json(&lb, "lb", "get", id)
		if lb.Algorithm != "ROUND_ROBIN" || lb.Status != "ACTIVE" {
			t.Errorf("after update: %+v", lb)
		}
	})

	t.Run("virtual IPs and metadata", func(t *testing.T) {
		var vip struct {
			ID        int    `json:"id"`
			IPVersion string `json:"ipVersion"`
		}
		c.json(&vip, "vip", "add", id, "--wait")
		if vip.IPVersion != "IPV6" || vip.ID == 0 {
			t.Fatalf("vip add: %+v", vip)
		}
		c.ok("vip", "delete", id, fmt.Sprint(vip.ID), "--wait")
		var meta []struct {
			ID         int
			Key, Value string
		}
		c.json(&meta, "metadata", "add", id, "owner=web", "env=prod")
		if len(meta) != 2 {
			t.Fatalf("metadata add: %+v", meta)
		}
		c.ok("metadata", "update", id, fmt.Sprint(meta[0].ID), "team-b")
		c.json(&meta, "metadata", "list", id)
		if len(meta) != 2 || meta[0].Value != "team-b" {
			t.Errorf("metadata: %+v", meta)
		}
		c.ok("metadata", "delete", id, fmt.Sprint(meta[0].ID), fmt.Sprint(meta[1].ID))
		node := fmt.Sprint(lb.Nodes[0].ID)
		c.ok("metadata", "add", id, "rack=r1", "--node", node)
		if out := c.ok("metadata", "list", id, "--node", node); !strings.Contains(out, "rack") || !strings.Contains(out, "r1") {
			t.Errorf("node metadata:\n%s", out)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		var protocols []struct{ Name string }
		c.json(&protocols, "protocols")
		var algorithms []struct{ Name string }
		c.json(&algorithms, "algorithms")
		if len(protocols) == 0 || len(algorithms) == 0 {
			t.Errorf("protocols %v algorithms %v", protocols, algorithms)
		}
		for _, args := range [][]string{{"limits"}, {"allowed-domains"}, {"source-addresses"}, {"source-addresses", id}} {
			c.ok(args...)
		}
	})

	t.Run("faults and exit codes", func(t *testing.T) {
		r := c.fails(2, "Validation Failure", "lb", "create", "--name", "bad", "--protocol", "HTTP", "--port", "70000", "--vip", "PUBLIC")
		if !strings.Contains(r.stderr, "loadBalancer.port") {
			t.Errorf("the fault's field message is not shown: %q", r.stderr)
		}
		c.fails(2, "404", "lb", "get", "999999")
		c.fails(1, "not an id", "lb", "get", "web")
		c.fails(1, "unknown command", "lb", "frob")
		c.fails(2, "Unable to authenticate", "lb", "list", "--username", "mallory")
		c.fails(3, "connection refused", "lb", "list", "--auth-url", fmt.Sprintf("http://127.0.0.1:%d/v2.0", freePort(t)))
	})

	t.Run("token cache", func(t *testing.T) {
		before := c.tokens()
		for range 3 {
			c.ok("lb", "list")
		}
		if n := c.tokens(); n != before {
			t.Fatalf("3 commands issued %d tokens: the cached one was not used", n-before)
		}
		files, _ := filepath.Glob(filepath.Join(home, "cache", "lbaas", "tokens", "*.json"))
		if len(files) != 1 {
			t.Fatalf("token cache files: %v", files)
		}
		st, err := os.Stat(files[0])
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("token cache mode %v (%v)", st.Mode(), err)
		}
		// An expired token is renewed...
		rewrite := func(change func(map[string]any)) {
			b, _ := os.ReadFile(files[0])
			var tok map[string]any
			if err := json.Unmarshal(b, &tok); err != nil {
				t.Fatal(err)
			}
			change(tok)
			b, _ = json.Marshal(tok)
			if err := os.WriteFile(files[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rewrite(func(tok map[string]any) { tok["expires"] = time.Now().Add(-time.Minute).Format(time.RFC3339) })
		c.ok("lb", "list")
		if n := c.tokens(); n != before+1 {
			t.Errorf("expired token: %d tokens issued, want 1", n-before)
		}
		// ...and so is one the API refuses (revoked, or a database reset).
		rewrite(func(tok map[string]any) { tok["id"] = strings.Repeat("0", 64) })
		c.ok("lb", "list")
		if n := c.tokens(); n != before+2 {
			t.Errorf("refused token: %d tokens issued, want 2", n-before)
		}
		c.ok("logout")
		if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
			t.Errorf("logout left the cached token: %v", err)
		}
	})

	t.Run("profiles", func(t *testing.T) {
		var env []string
		creds := map[string]string{}
		for _, kv := range c.env {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "LBAAS_") {
				creds[k] = v
			} else {
				env = append(env, kv)
			}
		}
		conf := fmt.Sprintf("profile: local\nprofiles:\n  local:\n    auth-url: %s\n    username: alice\n    api-key: %s\n"+
			"  wrong:\n    auth-url: %s\n    username: alice\n    api-key: not-the-key\n    output: json\n",
			creds["LBAAS_AUTH_URL"], creds["LBAAS_API_KEY"], creds["LBAAS_AUTH_URL"])
		path := filepath.Join(home, "config", "lbaas", "config.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &cli{t: t, bin: c.bin, db: c.db, env: env}
		if out := p.ok("lb", "list"); !strings.Contains(out, "web") {
			t.Errorf("the file's default profile:\n%s", out)
		}
		p.fails(2, "Unable to authenticate", "lb", "list", "--profile", "wrong")
		// A flag wins over the profile.
		p.ok("lb", "list", "--profile", "wrong", "--api-key", creds["LBAAS_API_KEY"], "-o", "table")
		p.env = append(p.env, "LBAAS_PROFILE=nope")
		p.fails(1, `no profile "nope"`, "lb", "list")
	})

	t.Run("wait: timeout and ERROR with the data plane's message", func(t *testing.T) {
		status := func(want string) {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var st cliLB
				if c.json(&st, "lb", "get", id); st.Status == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the load balancer is %s, want %s", st.Status, want)
				}
			}
		}
		x := startRefusingClient(t, d.xdsAddr)

		// On a terminal, --wait shows its progress.
		if _, err := exec.LookPath("script"); err == nil {
			x.setMode(xdsSilent)
			tty := exec.Command("script", "-qefc", c.bin+" lb update "+id+" --algorithm LEAST_CONNECTIONS --wait --wait-timeout 2s", "/dev/null")
			tty.Env = c.env
			out, err := tty.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 4 || !strings.Contains(string(out), "Load balancer "+id+": PENDING_UPDATE") {
				t.Errorf("on a terminal: %v, printed %q", err, out)
			}
			x.setMode(xdsACK) // accepts the pending change
			status("ACTIVE")
		} else {
			fmt.Fprintln(os.Stderr, "SKIPPING the terminal check of lbaas --wait: no script(1) (Debian package bsdutils)")
		}

		x.setMode(xdsSilent)
		r := c.fails(4, "still PENDING_UPDATE", "lb", "update", id, "--algorithm", "RANDOM", "--wait", "--wait-timeout", "2s")
		t.Logf("lbaas says: %s", r.stderr)
		if strings.Contains(r.stderr, "\r") {
			t.Errorf("--wait drew progress although piped: %q", r.stderr)
		}
		x.setMode(xdsNACK) // refuses the pending version, and the next
		status("ERROR")
		r = c.fails(4, "refused by the CLI test", "lb", "update", id, "--algorithm", "ROUND_ROBIN", "--wait", "--wait-timeout", "30s")
		t.Logf("lbaas says: %s", r.stderr)
		if out := c.ok("lb", "list", "--status", "ERROR"); !strings.Contains(out, "ERROR") {
			t.Errorf("lb list --status ERROR:\n%s", out)
		}
	})

	t.Run("delete with --wait", func(t *testing.T) {
		c.ok("lb", "delete", id, "--wait")
		c.fails(2, "404", "lb", "get", id)
	})
}

const (
	xdsACK = iota
	xdsSilent
	xdsNACK
)

// refusingClient is an ADS client of the default fleet (clusters only)
// that acknowledges, ignores or refuses what it receives as told.
type refusingClient struct{ mode chan int }

func (r *refusingClient) setMode(m int) { r.mode <- m }

func startRefusingClient(t *testing.T, addr string) *refusingClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "cli-test", Cluster: "default", UserAgentName: "envoy"}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetResources()) == 0 {
		t.Fatal("no cluster in the first response")
	}
	acked := first.GetVersionInfo()
	if err := st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType, VersionInfo: acked, ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	r := &refusingClient{mode: make(chan int)}
	responses := make(chan *discoveryv3.DiscoveryResponse)
	go func() {
		for {
			res, err := st.Recv()
			if err != nil {
				close(responses)
				return
			}
			responses <- res
		}
	}()
	go func() {
		mode := xdsACK
		var pending *discoveryv3.DiscoveryResponse
		answer := func(res *discoveryv3.DiscoveryResponse) {
			req := &discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: res.GetNonce(), VersionInfo: acked}
			switch mode {
			case xdsSilent:
				pending = res
				return
			case xdsACK:
				acked = res.GetVersionInfo()
				req.VersionInfo = acked
			case xdsNACK:
				req.ErrorDetail = &statuspb.Status{Code: 3, Message: "cluster refused by the CLI test"}
			}
			_ = st.Send(req)
		}
		for {
			select {
			case m := <-r.mode:
				mode = m
				if pending != nil && mode != xdsSilent {
					p := pending
					pending = nil
					answer(p)
				}
			case res, ok := <-responses:
				if !ok {
					return
				}
				answer(res)
			case <-ctx.Done():
				return
			}
		}
	}()
	return r
}

// The README's walk-through with the client, run as written by bash
// against the real binaries.
func TestREADMECLIWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := "SKIPPING the README's client walk-through: " + tool + " is not installed (.ci/run installs it)"
			fmt.Fprintln(os.Stderr, msg)
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	d := startDaemon(t, buildBinary(t, dir), dir, nil)
	goBuild(t, dir, "./cmd/lbaas")
	script := strings.ReplaceAll(readmeBlock(t, "cli-walkthrough"), "http://127.0.0.1:8080", d.httpURL)
	// Then, as the README says, the same load balancer in the console,
	// signed in with bob's key.
	script += "\necho \"console-key=$LBAAS_API_KEY\"\n"

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client walk-through failed: %v\n%s\n--- lbaasd:\n%s", err, out, d.stderr)
	}
	// It ends with the load balancer as JSON: three nodes, ACTIVE.
	text, _, _ := strings.Cut(string(out), "console-key=")
	var lb cliLB
	if err := json.Unmarshal([]byte(text[strings.LastIndex(text, "\n{")+1:]), &lb); err != nil {
		t.Fatalf("the walk-through did not end with the load balancer's JSON: %v\n%s", err, out)
	}
	if lb.Name != "a-new-loadbalancer" || len(lb.Nodes) != 3 || lb.Status != "ACTIVE" {
		t.Errorf("read back %+v\n%s", lb, out)
	}
	for _, want := range []string{"NAME", "a-new-loadbalancer", "DRAINING", "10.1.1.3"} {
		if !strings.Contains(text, want) {
			t.Errorf("the walk-through's tables lack %q:\n%s", want, out)
		}
	}
	t.Logf("the walk-through printed:\n%s", out)

	key := regexp.MustCompile(`console-key=(\w+)`).FindStringSubmatch(string(out))
	if key == nil {
		t.Fatalf("no key printed:\n%s", out)
	}
	web := consoleSignIn(t, d.httpURL, "bob", key[1])
	list := consolePage(t, web, d.httpURL+"/console/")
	if !strings.Contains(list, ">a-new-loadbalancer</a>") || !strings.Contains(list, `<span class="status status-active">ACTIVE</span>`) {
		t.Errorf("the console's list lacks the walk-through's load balancer:\n%s", list)
	}
	page := consolePage(t, web, fmt.Sprintf("%s/console/loadbalancers/%d", d.httpURL, lb.ID))
	for _, want := range []string{"10.1.1.1", "10.1.1.2", "10.1.1.3", `<td class="condition">DRAINING</td>`, "Connection logging is <strong>on</strong>", `id="chart-requests"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the console's page of the load balancer lacks %q", want)
		}
	}
}

// A request refused by a rate limit (413 with Retry-After) is sent again
// when the limit allows: with one GET a second allowed, three quick
// commands all succeed, and the client says (with --debug) that it waited.
func TestCLIRateLimited(t *testing.T) {
	t.Parallel()
	c, _, _ := startCLIWith(t, []string{"LBAASD_RATE_LIMITS=true"}, func(lbaasd, dir string) {
		cmd := exec.Command(lbaasd, "limits", "set", "--account", "1234", "--method", "GET", "--unit", "SECOND", "--value", "1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("limits set: %v\n%s", err, out)
		}
	})
	waited := false
	for range 3 {
		r := c.run("lb", "list", "--debug")
		if r.code != 0 {
			t.Fatalf("lb list under a rate limit: exit %d\n%s", r.code, r.stderr)
		}
		waited = waited || strings.Contains(r.stderr, "rate limited: sending again")
	}
	if !waited {
		t.Error("three GETs within a second under a limit of one a second: none was rate limited and sent again")
	}
	// The account's rate limits, with its override (the GET itself waits
	// for the limit, as above).
	out := c.ok("rate-limits")
	var get []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "GET" && f[2] == "SECOND" {
			get = f
		}
	}
	if len(get) == 0 || get[3] != "1" {
		t.Errorf("rate limits table has no GET SECOND 1 row:\n%s", out)
	}
}

// trialCertificate writes a self-signed RSA 2048 certificate valid for a
// day and its key as PEM files, and returns their paths.
func trialCertificate(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "www.example.com"},
		DNSNames: []string{"www.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
