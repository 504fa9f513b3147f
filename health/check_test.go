package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

// hostPort splits a test server's URL into a node's address and port.
func hostPort(t *testing.T, rawURL string) (string, uint32) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, uint32(p)
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint32(port)
}

func check(t *testing.T, hm store.HealthMonitor, address string, port uint32) error {
	t.Helper()
	c, err := NewChecker(hm, address, port, netguard.Dialer{})
	if err != nil {
		t.Fatalf("NewChecker: %v", err)
	}
	defer c.Close()
	return c.Check(context.Background())
}

func connectMonitor() store.HealthMonitor {
	return store.HealthMonitor{Type: "CONNECT", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1}
}

func httpMonitor(path, statusRegex string) store.HealthMonitor {
	return store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1, Path: path, StatusRegex: statusRegex}
}

func TestConnectCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	if err := check(t, connectMonitor(), "127.0.0.1", port); err != nil {
		t.Errorf("a listening port fails: %v", err)
	}
	ln.Close()
	err = check(t, connectMonitor(), "127.0.0.1", port)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(int(port))) {
		t.Errorf("a closed port: got %v, want a connection refused naming the node", err)
	}
}

// A node that accepts connections but never answers fails on the timeout,
// and the failure says so.
func TestHTTPCheckTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	address, port := hostPort(t, srv.URL)
	c, err := NewChecker(httpMonitor("/", "^200$"), address, port, netguard.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.timeout = 200 * time.Millisecond // the API's smallest is 1 s
	start := time.Now()
	err = c.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "within the timeout") {
		t.Errorf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the check took %s, the timeout does not bound it", d)
	}
}

func TestHTTPCheck(t *testing.T) {
	var (
		code atomic.Int32
		body atomic.Value
		host atomic.Value
		path atomic.Value
	)
	code.Store(200)
	body.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		path.Store(r.URL.RequestURI())
		w.WriteHeader(int(code.Load()))
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	address, port := hostPort(t, srv.URL)

	long := strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name    string
		code    int
		body    string
		monitor func(*store.HealthMonitor)
		fail    string // "" when the check passes
	}{
		{name: "status matches", code: 200, body: "ok"},
		{name: "status does not match", code: 500, fail: "Status code 500 did not match statusRegex '^[23][0-9][0-9]$'"},
		{name: "3xx matches and is not followed", code: 302},
		{name: "bodyRegex matches", code: 200, body: "status: healthy\n",
			monitor: func(hm *store.HealthMonitor) { hm.BodyRegex = "^status: healthy$" }},
		{name: "bodyRegex matches a line, like egrep", code: 200, body: "<html>\nsuccess\n</html>",
			monitor: func(hm *store.HealthMonitor) { hm.BodyRegex = "^success$" }},
		{name: "bodyRegex does not match", code: 200, body: "status: sick",
			monitor: func(hm *store.HealthMonitor) { hm.BodyRegex = "healthy" },
			fail:    "did not match bodyRegex 'healthy' within the first 2048 bytes"},
		{name: "bodyRegex sees only 2048 bytes", code: 200, body: long + "healthy",
			monitor: func(hm *store.HealthMonitor) { hm.BodyRegex = "healthy" }, fail: "bodyRegex"},
		{name: "checkBody found", code: 200, body: "<p>it works</p>",
			monitor: func(hm *store.HealthMonitor) { hm.CheckBody = "it works" }},
		{name: "checkBody found beyond 2048 bytes", code: 200, body: long + "it works",
			monitor: func(hm *store.HealthMonitor) { hm.CheckBody = "it works" }},
		{name: "checkBody missing", code: 200, body: "it broke",
			monitor: func(hm *store.HealthMonitor) { hm.CheckBody = "it works" },
			fail:    "did not contain checkBody 'it works'"},
		{name: "checkBody and bodyRegex both needed", code: 200, body: "it works",
			monitor: func(hm *store.HealthMonitor) { hm.CheckBody = "it works"; hm.BodyRegex = "^fine$" }, fail: "bodyRegex"},
		{name: "status is checked before the body", code: 503, body: "it works",
			monitor: func(hm *store.HealthMonitor) { hm.CheckBody = "it works" }, fail: "Status code 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code.Store(int32(tc.code))
			body.Store(tc.body)
			hm := httpMonitor("/health?full=1", "^[23][0-9][0-9]$")
			if tc.monitor != nil {
				tc.monitor(&hm)
			}
			err := check(t, hm, address, port)
			switch {
			case tc.fail == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Errorf("got %v, want a failure saying %q", err, tc.fail)
			}
			if got := path.Load(); got != "/health?full=1" {
				t.Errorf("requested %v, want /health?full=1", got)
			}
		})
	}

	t.Run("Host header", func(t *testing.T) {
		code.Store(200)
		_ = check(t, httpMonitor("/", "^200$"), address, port)
		if got := host.Load(); got != net.JoinHostPort(address, strconv.Itoa(int(port))) {
			t.Errorf("without hostHeader the Host is %v, want the node's address and port", got)
		}
		hm := httpMonitor("/", "^200$")
		hm.HostHeader = "www.example.com"
		_ = check(t, hm, address, port)
		if got := host.Load(); got != "www.example.com" {
			t.Errorf("Host is %v, want the hostHeader", got)
		}
	})

	t.Run("no proxy from the environment", func(t *testing.T) {
		t.Setenv("HTTP_PROXY", "http://127.0.0.1:"+strconv.Itoa(int(closedPort(t))))
		t.Setenv("http_proxy", "http://127.0.0.1:"+strconv.Itoa(int(closedPort(t))))
		code.Store(200)
		if err := check(t, httpMonitor("/", "^200$"), address, port); err != nil {
			t.Errorf("the check went through a proxy: %v", err)
		}
	})

	t.Run("recovers", func(t *testing.T) {
		code.Store(500)
		if check(t, httpMonitor("/", "^200$"), address, port) == nil {
			t.Fatal("a 500 passes")
		}
		code.Store(200)
		if err := check(t, httpMonitor("/", "^200$"), address, port); err != nil {
			t.Errorf("after recovering: %v", err)
		}
	})

	t.Run("server gone", func(t *testing.T) {
		err := check(t, httpMonitor("/", "^200$"), "127.0.0.1", closedPort(t))
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("got %v, want connection refused", err)
		}
	})
}

// HTTPS checks skip certificate verification (nodes have self-signed
// certificates) and send the hostHeader as the server name.
func TestHTTPSCheck(t *testing.T) {
	var sni atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni.Store(r.TLS.ServerName)
		_, _ = w.Write([]byte("secure ok"))
	}))
	defer srv.Close()
	address, port := hostPort(t, srv.URL)
	hm := httpMonitor("/", "^200$")
	hm.Type, hm.HostHeader, hm.CheckBody = "HTTPS", "secure.example.com", "secure ok"
	if err := check(t, hm, address, port); err != nil {
		t.Fatalf("HTTPS check of a self-signed node: %v", err)
	}
	if got := sni.Load(); got != "secure.example.com" {
		t.Errorf("server name %v, want the hostHeader", got)
	}
	// HTTP against a TLS port is a failure, not a pass.
	hm.Type = "HTTP"
	if err := check(t, hm, address, port); err == nil {
		t.Error("plain HTTP against a TLS node passes")
	}
}

func TestNewCheckerRefusesBadMonitors(t *testing.T) {
	for _, hm := range []store.HealthMonitor{
		{Type: "PING", Timeout: 1},
		{Type: "HTTP", Timeout: 1, Path: "/", StatusRegex: "("},
		{Type: "HTTP", Timeout: 1, Path: "/", StatusRegex: "200", BodyRegex: "[z-a]"},
	} {
		if _, err := NewChecker(hm, "127.0.0.1", 80, netguard.Dialer{}); err == nil {
			t.Errorf("NewChecker(%+v) accepted it", hm)
		}
	}
}

// A check stops when its context ends (shutdown), long before the timeout.
func TestCheckHonoursCancellation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	address, port := hostPort(t, srv.URL)
	hm := httpMonitor("/", "^200$")
	hm.Timeout = 300
	c, err := NewChecker(hm, address, port, netguard.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Check(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a cancelled check passes")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the check ignored its context")
	}
}
