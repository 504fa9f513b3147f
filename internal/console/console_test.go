package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"html/template"
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
	"github.com/openlbaas/lbaas/internal/pki"
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

// startConsole starts the server with user alice of account 42, and a
// browser, signed out; key is alice's API key.
func startConsole(t *testing.T) (srv *server.Server, b *browser, key string) {
	t.Helper()
	srv, base := startServer(t)
	key, err := srv.Auth.CreateUser(context.Background(), "alice", "42", "")
	if err != nil {
		t.Fatal(err)
	}
	return srv, newBrowser(t, base), key
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
	srv, b, key := startConsole(t)
	ctx := context.Background()

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
	m := newBrowser(t, b.base)
	ck := m.signIn("mallory", key2)
	if p := m.do("GET", "/console/loadbalancers/"+id, nil); p.status != http.StatusNotFound {
		t.Errorf("another tenant's load balancer: %d", p.status)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(ck.Value)
	var sess map[string]any
	_ = json.Unmarshal(raw, &sess)
	sess["a"] = "42"
	raw, _ = json.Marshal(sess)
	u, _ := url.Parse(b.base + "/console/")
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

// waitSettled waits until the load balancer's change is processed (any
// status but BUILD and PENDING_UPDATE) and returns it.
func waitSettled(t *testing.T, srv *server.Server, id string) *store.LoadBalancer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lb, err := srv.Store.GetLoadBalancer(context.Background(), "42", mustAtoi(t, id))
		if err == nil && lb.Status != store.StatusBuild && lb.Status != store.StatusPendingUpdate {
			return lb
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer %s: %v %v", id, lb.Status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pemLine is a line of a PEM block's body (a private key's no page may
// show).
func pemLine(block string) string { return strings.Split(block, "\n")[3] }

// shows tells whether the page's text holds s (html/template writes "+"
// of base64 as "&#43;").
func shows(body, s string) bool { return strings.Contains(html.UnescapeString(body), s) }

// The forms beyond the basics, against the real API: the access list,
// the error page, metadata, SSL termination and its certificate
// mappings, deleting a node and a load balancer. Each is refused without
// the CSRF token; a value the API refuses shows its message beside the
// field and changes nothing; a good one is applied.
func TestConsoleFeatures(t *testing.T) {
	srv, b, key := startConsole(t)
	ctx := context.Background()
	b.signIn("alice", key)
	b.do("GET", "/console/loadbalancers/new", nil)
	created := b.post("/console/loadbalancers", url.Values{"name": {"web"}, "protocol": {"HTTP"}, "port": {"80"},
		"algorithm": {"ROUND_ROBIN"}, "vip.type": {"PUBLIC"}, "node.address": {"127.0.0.1"}, "node.port": {"8001"}})
	if created.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	lbPage := created.location
	id := strings.TrimPrefix(lbPage, "/console/loadbalancers/")
	get := func() *store.LoadBalancer {
		t.Helper()
		lb, err := srv.Store.GetLoadBalancer(ctx, "42", mustAtoi(t, id))
		if err != nil {
			t.Fatal(err)
		}
		return lb
	}
	waitActive(t, srv, id)
	// refusedBeside posts form to path and wants the API's fault with
	// message (a prefix) beside field, with the form's value kept.
	refusedBeside := func(path string, form url.Values, status int, field, message string) page {
		t.Helper()
		p := b.post(lbPage+path, form)
		if p.status != status || !strings.Contains(p.body, `id="`+field+`-error">`+message) ||
			!strings.Contains(p.body, `aria-describedby="`+field+`-error"`) {
			t.Errorf("POST %s %v: %d, want %d with %q beside %s:\n%s", path, form, p.status, status, message, field, p.body)
		}
		return p
	}
	applied := func(path string, form url.Values) {
		t.Helper()
		if p := b.post(lbPage+path, form); p.status != http.StatusSeeOther || p.location != lbPage {
			t.Fatalf("POST %s %v: %d to %q\n%s", path, form, p.status, p.location, p.body)
		}
		waitSettled(t, srv, id)
	}
	show := func() string { t.Helper(); return b.do("GET", lbPage, nil).body }
	detail := show()
	if !strings.Contains(detail, "this service does not offer it") {
		t.Error("content caching is not shown as not offered")
	}

	pair, err := pki.SelfSignedRSA("www.example.com", 24*time.Hour)
	mpair, merr := pki.SelfSignedRSA("api.example.com", 24*time.Hour)
	if err != nil || merr != nil {
		t.Fatal(err, merr)
	}
	cert, certKey, mcert, mkey := string(pair.CertPEM), string(pair.KeyPEM), string(mpair.CertPEM), string(mpair.KeyPEM)

	// Without the session's CSRF token no form does anything.
	nodeID := itoa(get().Nodes[0].ID)
	for path, form := range map[string]url.Values{
		"/accesslist":                  {"address": {"192.0.2.0/24"}, "type": {"DENY"}},
		"/errorpage":                   {"content": {"<h1>down</h1>"}},
		"/metadata":                    {"key": {"owner"}, "value": {"web"}},
		"/ssltermination":              {"securePort": {"443"}, "certificate": {cert}, "privatekey": {certKey}},
		"/nodes/" + nodeID + "/delete": {},
		"/delete":                      {},
	} {
		if p := b.do("POST", lbPage+path, form); p.status != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d", path, p.status)
		}
	}
	if lb := get(); len(lb.AccessList)+len(lb.Metadata) != 0 || lb.ErrorPage != "" || lb.SSLTermination != nil || len(lb.Nodes) != 1 || lb.Status != store.StatusActive {
		t.Fatalf("forms without the CSRF token changed the load balancer: %+v", lb)
	}

	// The access list.
	p := refusedBeside("/accesslist", url.Values{"address": {"192.0.2.0/33"}, "type": {"DENY"}}, http.StatusBadRequest,
		"accesslist-address", "accessList[0].address: &#34;192.0.2.0/33&#34; is not an IP address or CIDR network")
	if !strings.Contains(p.body, `value="192.0.2.0/33"`) {
		t.Error("the refused access-list entry lost its address")
	}
	refusedBeside("/accesslist", url.Values{"address": {"192.0.2.0/24"}, "type": {"MAYBE"}}, http.StatusBadRequest,
		"accesslist-type", "accessList[0].type: must be ALLOW or DENY")
	if lb := get(); len(lb.AccessList) != 0 {
		t.Fatalf("refused entries were added: %+v", lb.AccessList)
	}
	applied("/accesslist", url.Values{"address": {"192.0.2.0/24"}, "type": {"DENY"}})
	lb := get()
	if len(lb.AccessList) != 1 || lb.AccessList[0].Address != "192.0.2.0/24" || lb.AccessList[0].Type != "DENY" {
		t.Fatalf("access list %+v", lb.AccessList)
	}
	item := itoa(lb.AccessList[0].ID)
	if !strings.Contains(show(), `<tr data-item="`+item+`"><td>DENY</td><td><code>192.0.2.0/24</code></td>`) {
		t.Error("the access-list entry is not listed")
	}
	if p := b.post(lbPage+"/accesslist/999999/delete", url.Values{}); p.status != http.StatusNotFound ||
		!strings.Contains(p.body, "404 Network item not found") {
		t.Errorf("deleting an entry that is not there: %d", p.status)
	}
	applied("/accesslist/"+item+"/delete", url.Values{})
	if lb := get(); len(lb.AccessList) != 0 {
		t.Errorf("the deleted entry is still there: %+v", lb.AccessList)
	}

	// The error page: shown, set, reset.
	if !strings.Contains(detail, `name="content" rows="6" spellcheck="false">&lt;!DOCTYPE html&gt;`) {
		t.Error("the default error page is not shown")
	}
	if p := b.post(lbPage+"/errorpage", url.Values{"content": {strings.Repeat("x", 1<<20)}}); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over 1 MiB: %d", p.status)
	}
	refusedBeside("/errorpage", url.Values{"content": {""}}, http.StatusBadRequest, "errorpage-content", "errorpage.content: is required")
	if lb := get(); lb.ErrorPage != "" {
		t.Fatalf("a refused error page was set: %q", lb.ErrorPage)
	}
	applied("/errorpage", url.Values{"content": {"<h1>Down for a bit</h1>"}})
	if lb := get(); lb.ErrorPage != "<h1>Down for a bit</h1>" {
		t.Fatalf("error page %q", lb.ErrorPage)
	}
	if !strings.Contains(show(), `>&lt;h1&gt;Down for a bit&lt;/h1&gt;</textarea>`) {
		t.Error("the error page set is not shown")
	}
	applied("/errorpage", url.Values{"content": {"<h1>Down for a bit</h1>"}, "reset": {"1"}})
	if lb := get(); lb.ErrorPage != "" {
		t.Errorf("after a reset the error page is %q", lb.ErrorPage)
	}

	// Metadata.
	refusedBeside("/metadata", url.Values{"key": {""}, "value": {"web team"}}, http.StatusBadRequest, "metadata-key", "metadata[0].key: is required")
	if lb := get(); len(lb.Metadata) != 0 {
		t.Fatalf("refused metadata was added: %+v", lb.Metadata)
	}
	applied("/metadata", url.Values{"key": {"owner"}, "value": {"web team"}})
	lb = get()
	if len(lb.Metadata) != 1 || lb.Metadata[0].Key != "owner" || lb.Metadata[0].Value != "web team" {
		t.Fatalf("metadata %+v", lb.Metadata)
	}
	if !strings.Contains(show(), `<td><code>owner</code></td><td>web team</td>`) {
		t.Error("the metadata is not listed")
	}
	applied("/metadata/"+itoa(lb.Metadata[0].ID)+"/delete", url.Values{})
	if lb := get(); len(lb.Metadata) != 0 {
		t.Errorf("the deleted metadata is still there: %+v", lb.Metadata)
	}

	// SSL termination: a refused port, and refused PEM, with the
	// certificate kept and the key never written back.
	ssl := url.Values{"securePort": {"80"}, "enabled": {"false", "true"}, "secureTrafficOnly": {"false"},
		"cipherProfile": {"CLBCipherPolicy2019-05"}, "certificate": {cert}, "privatekey": {certKey}}
	p = refusedBeside("/ssltermination", ssl, http.StatusBadRequest, "ssltermination-securePort",
		"sslTermination.securePort: must differ from the load balancer&#39;s port 80")
	if shows(p.body, pemLine(certKey)) || !shows(p.body, pemLine(cert)) {
		t.Error("the refused termination wrote the key back, or lost the certificate")
	}
	bad := url.Values{"securePort": {"443"}, "enabled": {"false", "true"}, "certificate": {"not PEM"}, "privatekey": {certKey}}
	refusedBeside("/ssltermination", bad, http.StatusBadRequest, "ssltermination-certificate", "sslTermination.certificate: is not PEM")
	if lb := get(); lb.SSLTermination != nil {
		t.Fatal("a refused termination was set")
	}
	ssl.Set("securePort", "443")
	applied("/ssltermination", ssl)
	lb = get()
	if tt := lb.SSLTermination; tt == nil || tt.SecurePort != 443 || !tt.Enabled || tt.SecureTrafficOnly || tt.CipherProfile != "CLBCipherPolicy2019-05" {
		t.Fatalf("termination %+v", lb.SSLTermination)
	}
	// The xDS port of this server is plaintext: the key is not published
	// and the page shows why, as the API's statusDescription says.
	detail = show()
	if lb.Status != store.StatusError || !strings.HasPrefix(lb.StatusDescription, "SSL termination is not published") ||
		!strings.Contains(detail, `<p class="message">`+template.HTMLEscapeString(lb.StatusDescription)+`</p>`) {
		t.Errorf("status %s %q; the page:\n%s", lb.Status, lb.StatusDescription, detail)
	}
	for _, want := range []string{"TLS is terminated on port <strong>443</strong>, enabled", "<code>www.example.com</code>",
		"<code>CLBCipherPolicy2019-05</code>", "The profile's 4 ciphers"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the termination's part lacks %q", want)
		}
	}
	if shows(detail, pemLine(certKey)) || shows(detail, "PRIVATE KEY-----") || !shows(detail, pemLine(cert)) {
		t.Error("the page shows a private key")
	}

	// Certificate mappings.
	refusedBeside("/certificatemappings", url.Values{"hostName": {"bad host"}, "certificate": {mcert}, "privateKey": {mkey}},
		http.StatusBadRequest, "certificatemappings-hostName", "certificateMapping.hostName: &#34;bad host&#34; is not a host name")
	if lb := get(); len(lb.SSLTermination.Mappings) != 0 {
		t.Fatal("a refused mapping was added")
	}
	applied("/certificatemappings", url.Values{"hostName": {"api.example.com"}, "certificate": {mcert}, "privateKey": {mkey}})
	lb = get()
	if len(lb.SSLTermination.Mappings) != 1 || lb.SSLTermination.Mappings[0].HostName != "api.example.com" {
		t.Fatalf("mappings %+v", lb.SSLTermination.Mappings)
	}
	mapping := itoa(lb.SSLTermination.Mappings[0].ID)
	if detail := show(); !strings.Contains(detail, `<tr data-item="`+mapping+`"><td>`+mapping+`</td><td><code>api.example.com</code></td>`) ||
		shows(detail, pemLine(mkey)) {
		t.Error("the mapping is not listed, or its key is shown")
	}
	applied("/certificatemappings/"+mapping+"/delete", url.Values{})
	if lb := get(); len(lb.SSLTermination.Mappings) != 0 {
		t.Error("the deleted mapping is still there")
	}
	// Disabled without pasting the certificate again (the stored one is
	// kept): the load balancer is served again.
	applied("/ssltermination", url.Values{"securePort": {"443"}, "enabled": {"false"}, "secureTrafficOnly": {"false"}, "cipherProfile": {"default"}})
	lb = get()
	if tt := lb.SSLTermination; tt == nil || tt.Enabled || tt.CipherProfile != "default" || tt.Certificate == "" || lb.Status != store.StatusActive {
		t.Fatalf("disabled termination: %s %+v", lb.Status, lb.SSLTermination)
	}
	applied("/ssltermination", url.Values{"remove": {"1"}})
	if lb := get(); lb.SSLTermination != nil {
		t.Error("the deleted termination is still there")
	}

	// Deleting a node.
	applied("/nodes", url.Values{"node.address": {"127.0.0.1"}, "node.port": {"8002"}, "node.condition": {"ENABLED"}})
	if p := b.post(lbPage+"/nodes/999999/delete", url.Values{}); p.status != http.StatusNotFound || !strings.Contains(p.body, `role="alert"`) {
		t.Errorf("deleting a node that is not there: %d", p.status)
	}
	applied("/nodes/"+nodeID+"/delete", url.Values{})
	if lb := get(); len(lb.Nodes) != 1 || itoa(lb.Nodes[0].ID) == nodeID {
		t.Errorf("nodes after the delete: %+v", lb.Nodes)
	}

	// Deleting the load balancer: a confirmation page, then the list.
	confirm := b.do("GET", lbPage+"/delete", nil)
	if confirm.status != 200 || !strings.Contains(confirm.body, `<form method="post" action="`+lbPage+`/delete"`) ||
		!strings.Contains(confirm.body, `<a href="`+lbPage+`">Cancel`) {
		t.Fatalf("the confirmation page: %d\n%s", confirm.status, confirm.body)
	}
	if p := b.post(lbPage+"/delete", url.Values{}); p.status != http.StatusSeeOther || p.location != "/console/" {
		t.Fatalf("delete: %d to %q\n%s", p.status, p.location, p.body)
	}
	if lb, err := srv.Store.GetLoadBalancer(ctx, "42", mustAtoi(t, id)); err == nil && lb.Status != store.StatusPendingDelete {
		t.Errorf("after the delete the load balancer is %s", lb.Status)
	}
	if p := b.post(lbPage+"/delete", url.Values{}); p.status < 400 || !strings.Contains(p.body, `role="alert"`) {
		t.Errorf("deleting it again: %d", p.status)
	}
}
