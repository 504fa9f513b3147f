package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each answer can be checked.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values, header ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	p := page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(raw), header: res.Header}
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	form.Set("csrf", b.csrf)
	return b.do("POST", path, form)
}

func startServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	ctx := context.Background()
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/24")
	srv, err := server.Start(ctx, server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", DatabaseURL: filepath.Join(t.TempDir(), "db"),
		Fleet: "default", Pools: pools, Limits: api.DefaultLimits, TokenTTL: time.Hour, DisableHealthChecks: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, "http://" + srv.HTTPAddr.String()
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signIn signs in with the user's API key and returns the session cookie.
func (b *browser) signIn(user, key string) *http.Cookie {
	b.t.Helper()
	p := b.do("POST", "/console/signin", url.Values{"username": {user}, "apiKey": {key}})
	if p.status != http.StatusSeeOther || p.location != "/console/" {
		b.t.Fatalf("sign in: %d to %q: %s", p.status, p.location, p.body)
	}
	u, _ := url.Parse(b.base + "/console/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "lbaas_console" {
			return c
		}
	}
	b.t.Fatal("no session cookie")
	return nil
}

// The console against the real API, in-process: sign in, create, faults
// beside the fields they name, nodes drained, forms refused without the
// session's CSRF token or from another site, and no way into another
// tenant's load balancers.
func TestConsole(t *testing.T) {
	srv, base := startServer(t)
	ctx := context.Background()
	key, err := srv.Auth.CreateUser(ctx, "alice", "42", "")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, base)

	if p := b.do("GET", "/console/", nil); p.status != http.StatusSeeOther || p.location != "/console/signin?next=/console/" {
		t.Fatalf("signed out: %d to %q", p.status, p.location)
	}
	bad := b.do("POST", "/console/signin", url.Values{"username": {"alice"}, "apiKey": {"wrong"}})
	if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, `role="alert"`) || strings.Contains(bad.body, "wrong") {
		t.Fatalf("a wrong key: %d\n%s", bad.status, bad.body)
	}

	// The session cookie: HttpOnly, SameSite=Strict; over plain HTTP not
	// Secure (it would never be sent back).
	p := b.do("POST", "/console/signin", url.Values{"username": {"alice"}, "apiKey": {key}})
	setCookie := p.header.Get("Set-Cookie")
	for _, want := range []string{"lbaas_console=", "Path=/console", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP", setCookie)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	list := b.do("GET", "/console/", nil)
	if list.status != 200 || !strings.Contains(list.body, "No load balancers yet") {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	b.do("GET", "/console/loadbalancers/new", nil)

	// A refused create: each message beside its field, the values kept,
	// nothing created.
	refused := b.post("/console/loadbalancers", url.Values{"name": {"web"}, "protocol": {"HTTP"}, "port": {"70000"},
		"algorithm": {"RANDOM"}, "vip.type": {"PUBLIC"}, "node.address": {"127.0.0.1"}, "node.port": {"0"}})
	if refused.status != http.StatusBadRequest {
		t.Fatalf("create with bad ports: %d", refused.status)
	}
	for id, msg := range map[string]string{
		"create-port":      "loadBalancer.port: must be a port number from 1 to 65535 (got 70000)",
		"create-node-port": "loadBalancer.nodes[0].port: must be a port number from 1 to 65535 (got 0)",
	} {
		want := `<p class="field-error" id="` + id + `-error">` + msg + `</p>`
		if !strings.Contains(refused.body, want) {
			t.Errorf("no %s beside %s in\n%s", msg, id, refused.body)
		}
		if !strings.Contains(refused.body, `id="`+id+`" name=`) || !strings.Contains(refused.body, `aria-describedby="`+id+`-error"`) {
			t.Errorf("field %s not tied to its message", id)
		}
	}
	if !strings.Contains(refused.body, `value="web"`) {
		t.Error("the refused form lost its values")
	}
	if got := b.do("GET", "/console/", nil); !strings.Contains(got.body, "No load balancers yet") {
		t.Error("a refused create created something")
	}

	created := b.post("/console/loadbalancers", url.Values{"name": {"web"}, "protocol": {"HTTP"}, "port": {"80"},
		"algorithm": {"ROUND_ROBIN"}, "vip.type": {"PUBLIC"}, "node.address": {"127.0.0.1"}, "node.port": {"8001"}})
	if created.status != http.StatusSeeOther || !strings.HasPrefix(created.location, "/console/loadbalancers/") {
		t.Fatalf("create: %d %q %s", created.status, created.location, created.body)
	}
	id := strings.TrimPrefix(created.location, "/console/loadbalancers/")
	detail := b.do("GET", created.location, nil)
	// The plots say where they come from (e2e/TestConsoleBrowser checks
	// it against the API).
	if !strings.Contains(detail.body, `data-source="history"`) && !(strings.Contains(detail.body, `data-source="sampled"`) &&
		strings.Contains(detail.body, "The statistics history is not served here")) {
		t.Error("the plots do not say where they come from")
	}
	for _, want := range []string{">web <", "127.1.0.", "ROUND_ROBIN", `<td class="condition">ENABLED</td>`, `id="chart-requests"`} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}

	// Without the CSRF token, or from another site, nothing is done.
	nodes := "/console/loadbalancers/" + id + "/nodes"
	if p := b.do("POST", nodes, url.Values{"node.address": {"127.0.0.1"}, "node.port": {"8002"}, "node.condition": {"ENABLED"}}); p.status != http.StatusForbidden {
		t.Errorf("a form without the CSRF token: %d", p.status)
	}
	form := url.Values{"csrf": {b.csrf}, "node.address": {"127.0.0.1"}, "node.port": {"8002"}, "node.condition": {"ENABLED"}}
	if p := b.do("POST", nodes, form, "Sec-Fetch-Site", "cross-site"); p.status != http.StatusForbidden {
		t.Errorf("a form posted from another site: %d", p.status)
	}
	lb, err := srv.Store.GetLoadBalancer(ctx, "42", mustAtoi(t, id))
	if err != nil || len(lb.Nodes) != 1 {
		t.Fatalf("after refused forms: %v nodes, %v", len(lb.Nodes), err)
	}

	// A node refused by the API (the load balancer is ACTIVE: no xDS
	// client holds it) shows the fault beside the field; a good one is added.
	waitActive(t, srv, id)
	bad = b.post(nodes, url.Values{"node.address": {"127.0.0.1"}, "node.port": {"8002"}, "node.condition": {"SOMETIMES"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, `id="nodes-node-condition-error">node`) {
		t.Errorf("a bad condition: %d\n%s", bad.status, bad.body)
	}
	if p := b.post(nodes, url.Values{"node.address": {"127.0.0.1"}, "node.port": {"8002"}, "node.condition": {"ENABLED"}}); p.status != http.StatusSeeOther {
		t.Fatalf("add a node: %d %s", p.status, p.body)
	}
	waitActive(t, srv, id)
	lb, _ = srv.Store.GetLoadBalancer(ctx, "42", mustAtoi(t, id))
	if len(lb.Nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(lb.Nodes))
	}
	drain := b.post("/console/loadbalancers/"+id+"/nodes/"+itoa(lb.Nodes[0].ID), url.Values{"condition": {"DRAINING"}})
	if drain.status != http.StatusSeeOther {
		t.Fatalf("drain: %d %s", drain.status, drain.body)
	}
	waitActive(t, srv, id)
	if p := b.do("GET", "/console/loadbalancers/"+id, nil); !strings.Contains(p.body, `<td class="condition">DRAINING</td>`) {
		t.Error("the drained node is not shown DRAINING")
	}
	// A feature: a health monitor refused, the fault beside delay.
	hm := b.post("/console/loadbalancers/"+id+"/healthmonitor", url.Values{"type": {"CONNECT"}, "delay": {"0"}, "timeout": {"5"}, "attemptsBeforeDeactivation": {"2"}})
	if hm.status != http.StatusBadRequest || !strings.Contains(hm.body, `id="healthmonitor-delay-error">healthMonitor.delay:`) {
		t.Errorf("a bad health monitor: %d", hm.status)
	}

	// A name is shown as text, whatever it holds (the API takes any).
	const evil = `<script>alert(1)</script>`
	if p := b.post("/console/loadbalancers/"+id+"/settings", url.Values{"name": {evil}, "algorithm": {"ROUND_ROBIN"}, "timeout": {"30"}}); p.status != http.StatusSeeOther {
		t.Fatalf("rename: %d %s", p.status, p.body)
	}
	waitActive(t, srv, id)
	for _, path := range []string{"/console/", "/console/loadbalancers/" + id} {
		p := b.do("GET", path, nil)
		if strings.Contains(p.body, evil) || !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s shows the name %s unescaped or not at all", path, evil)
		}
	}

	// ERROR shows the data plane's message (set here as the xDS server
	// does when a proxy refuses the configuration; e2e/cli_test.go has a
	// real refusing client).
	const refusal = "Proxy envoy-1 refused lb_1: invalid listener: duplicate port"
	if _, err := srv.Store.SetRejected(ctx, mustAtoi(t, id), 0, refusal); err != nil {
		t.Fatal(err)
	}
	if p := b.do("GET", "/console/loadbalancers/"+id, nil); !strings.Contains(p.body, `<span class="status status-error">ERROR</span>`) ||
		!strings.Contains(p.body, `<p class="message">`+refusal+`</p>`) {
		t.Errorf("an ERROR load balancer's page lacks the data plane's message:\n%s", p.body)
	}

	// Another tenant sees none of it, even with its session's account
	// changed to alice's.
	key2, _ := srv.Auth.CreateUser(ctx, "mallory", "43", "")
	m := newBrowser(t, base)
	ck := m.signIn("mallory", key2)
	if p := m.do("GET", "/console/loadbalancers/"+id, nil); p.status != http.StatusNotFound {
		t.Errorf("another tenant's load balancer: %d", p.status)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(ck.Value)
	var sess map[string]any
	_ = json.Unmarshal(raw, &sess)
	sess["a"] = "42"
	raw, _ = json.Marshal(sess)
	u, _ := url.Parse(base + "/console/")
	m.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lbaas_console", Value: base64.RawURLEncoding.EncodeToString(raw), Path: "/console"}})
	if p := m.do("GET", "/console/loadbalancers/"+id, nil); p.status == http.StatusOK || strings.Contains(p.body, "127.0.0.1") {
		t.Errorf("a session whose account was changed: %d", p.status)
	}

	// Sign out ends the session.
	if p := b.post("/console/signout", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	if p := b.do("GET", "/console/", nil); p.status != http.StatusSeeOther {
		t.Errorf("after sign out: %d", p.status)
	}
}

func waitActive(t *testing.T, srv *server.Server, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lb, err := srv.Store.GetLoadBalancer(context.Background(), "42", mustAtoi(t, id))
		if err == nil && lb.Status == store.StatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer %s: %v %v", id, lb.Status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustAtoi(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
