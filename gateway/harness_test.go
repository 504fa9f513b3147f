package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// env is a running control plane on loopback with one user.
type env struct {
	t       *testing.T
	srv     *server.Server
	base    string // http://127.0.0.1:port
	account string
	token   string
}

type envOption func(*server.Config)

func withLimits(l api.Limits) envOption { return func(c *server.Config) { c.Limits = l } }
func withPools(spec string) envOption   { return func(c *server.Config) { c.Pools = mustPools(spec) } }
func withManualActivation() envOption   { return func(c *server.Config) { c.ManualActivation = true } }

// withDatabase runs the server on another database (a PostgreSQL one
// gets a key-encryption key of its own for the secrets at rest).
func withDatabase(url string) envOption {
	return func(c *server.Config) {
		c.DatabaseURL = url
		if strings.HasPrefix(url, "postgres") {
			key := make([]byte, secrets.KeySize)
			_, _ = rand.Read(key)
			c.SecretsKey = base64.StdEncoding.EncodeToString(key)
		}
	}
}
func withoutProber() envOption { return func(c *server.Config) { c.DisableHealthChecks = true } }
func withSources(s server.SourceAddresses) envOption {
	return func(c *server.Config) { c.Source = s }
}
func mustPools(spec string) []store.Pool {
	p, err := store.ParsePools(spec)
	if err != nil {
		panic(err)
	}
	return p
}

// newEnv starts the real server (SQLite in a temp dir unless an option
// says otherwise) and signs in a user of tenant "1234".
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	cfg := server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0",
		DatabaseURL: filepath.Join(t.TempDir(), "lbaas.db"),
		Region:      "TEST", Fleet: "default",
		Pools:    mustPools("PUBLIC=127.1.0.0/24,SERVICENET=127.2.0.0/24,PUBLIC=fd00:1ba5::/64"),
		Limits:   api.DefaultLimits,
		TokenTTL: time.Hour,
		Source:   server.SourceAddresses{IPv4Public: "127.0.0.1"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	e := &env{t: t, srv: srv, base: "http://" + srv.HTTPAddr.String(), account: "1234"}
	e.token = e.login("alice", e.account)
	return e
}

// login creates a user (with roles, else the account's owner or an
// lbaas:admin) and returns a token issued by POST /v2.0/tokens.
func (e *env) login(username, tenant string, roles ...auth.Role) string {
	e.t.Helper()
	key, err := e.srv.Auth.CreateUser(context.Background(), username, tenant, "", roles...)
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	body := `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"` + username + `","apiKey":"` + key + `"}}}`
	code, resp := e.raw("POST", "/v2.0/tokens", "", body)
	if code != 200 {
		e.t.Fatalf("token request: %d %s", code, resp)
	}
	var out struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.Access.Token.ID == "" {
		e.t.Fatalf("token response %s: %v", resp, err)
	}
	return out.Access.Token.ID
}

// raw sends a request with an optional token and body; it returns the
// status code and the body.
func (e *env) raw(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	code, _, resp := e.rawHeaders(method, path, token, body)
	return code, resp
}

func (e *env) rawHeaders(method, path, token, body string) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	return e.do(http.DefaultClient, req)
}

// do sends a request and returns the status code, headers and body.
func (e *env) do(client *http.Client, req *http.Request) (int, http.Header, []byte) {
	e.t.Helper()
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// call sends an authenticated request to /v1.0/{account}+path and decodes
// the JSON answer (nil when there is no body).
func (e *env) call(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	code, b := e.raw(method, "/v1.0/"+e.account+path, e.token, body)
	if len(bytes.TrimSpace(b)) == 0 {
		return code, nil
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, code, b)
	}
	return code, out
}

// mustCall is call that fails the test on an unexpected status code.
func (e *env) mustCall(want int, method, path, body string) map[string]any {
	e.t.Helper()
	code, out := e.call(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: got %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// createLB creates a load balancer and returns its id, and activates it
// when the server activates manually.
func (e *env) createLB(body string) int {
	e.t.Helper()
	out := e.mustCall(202, "POST", "/loadbalancers", body)
	return int(out["loadBalancer"].(map[string]any)["id"].(float64))
}

// activate marks everything committed as applied (manual activation).
func (e *env) activate() {
	e.t.Helper()
	rev, err := e.srv.Store.Revision(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.srv.Store.MarkApplied(context.Background(), "default", rev); err != nil {
		e.t.Fatal(err)
	}
}

// waitStatus polls a load balancer until it has the status.
func (e *env) waitStatus(id int, status string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out := e.call("GET", "/loadbalancers/"+itoa(id), "")
		if code == 200 {
			lb := out["loadBalancer"].(map[string]any)
			if lb["status"] == status {
				return lb
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("load balancer %d never reached %s (last: %d %v)", id, status, code, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) revision() int64 {
	e.t.Helper()
	rev, err := e.srv.Store.Revision(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return rev
}

func itoa(i int) string { return strconv.Itoa(i) }

// validationMessages returns the fault's validationErrors.messages.
func validationMessages(out map[string]any) []string {
	ve, _ := out["validationErrors"].(map[string]any)
	raw, _ := ve["messages"].([]any)
	msgs := make([]string, len(raw))
	for i, m := range raw {
		msgs[i], _ = m.(string)
	}
	return msgs
}

const simpleLB = `{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
	"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
	"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"}]}}`
