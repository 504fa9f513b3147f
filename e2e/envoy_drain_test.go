package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An edit under long-lived connections: a TCP connection through a TCP
// load balancer and an HTTP keep-alive connection through an HTTP one keep
// working across edits of the timeout, persistence and logging, which
// Envoy takes in place (translator/ecds.go). Envoy runs with a 1 s
// drain time, so a connection it drained would be gone (and a draining
// HTTP connection answered "Connection: close") well before the check.
// Then a throttle edit (the throttle is in the serving chain) and a port
// change (the listener itself) are said to drain, and do. Skipped without
// Envoy.
func TestEnvoyEditUnderLongLivedConnections(t *testing.T) {
	t.Parallel()
	a, _ := envoyStack(t, []string{"LBAASD_ENVOY_DRAIN_TIME=1s"}, "--drain-time", "1s")

	tport := freePort(t)
	tcp := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"long-tcp","protocol":"TCP","port":%d,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, tport, nodeJSON("127.0.0.1", echoBackend(t), "")))
	hp, _ := httpBackend(t, "web")
	hport := freePort(t)
	web := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"long-http","protocol":"HTTP","port":%d,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, hport, nodeJSON("127.0.0.1", hp, "")))
	a.waitStatus(tcp.ID, "ACTIVE")
	a.waitStatus(web.ID, "ACTIVE")

	// One TCP connection, one HTTP keep-alive connection, held throughout.
	tcpAddr := net.JoinHostPort(vipOf(t, a, tcp.ID), strconv.Itoa(tport))
	webAddr := net.JoinHostPort(vipOf(t, a, web.ID), strconv.Itoa(hport))
	var tc, hc net.Conn
	var tr, hr *bufio.Reader
	waitFor(t, "a TCP connection through Envoy", func() bool {
		c, err := net.DialTimeout("tcp", tcpAddr, time.Second)
		if err != nil {
			return false
		}
		if r := bufio.NewReader(c); echoes(c, r, "hello") == nil {
			tc, tr = c, r
			return true
		}
		c.Close()
		return false
	})
	defer tc.Close()
	waitFor(t, "an HTTP connection through Envoy", func() bool {
		c, err := net.DialTimeout("tcp", webAddr, time.Second)
		if err != nil {
			return false
		}
		if r := bufio.NewReader(c); keptAlive(c, r) == nil {
			hc, hr = c, r
			return true
		}
		c.Close()
		return false
	})
	defer hc.Close()
	check := func(when string) {
		t.Helper()
		if err := echoes(tc, tr, when); err != nil {
			t.Fatalf("%s: the TCP connection: %v", when, err)
		}
		if err := keptAlive(hc, hr); err != nil {
			t.Fatalf("%s: the HTTP keep-alive connection: %v", when, err)
		}
	}
	check("before")

	for _, e := range []struct {
		setting, path, body string
		code                int
		lbs                 []int
	}{
		{"timeout", "", `{"loadBalancer":{"timeout":90}}`, 202, []int{tcp.ID, web.ID}},
		{"session persistence", "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, 202, []int{web.ID}},
		{"connection logging", "/connectionlogging", `{"connectionLogging":{"enabled":true}}`, 200, []int{tcp.ID, web.ID}},
	} {
		for _, id := range e.lbs {
			a.do("PUT", a.lbPath(id, e.path), e.body, e.code, nil)
			if lb := a.waitStatus(id, "ACTIVE"); lb.StatusDescription != "" {
				t.Errorf("%s: load balancer %d says %q", e.setting, id, lb.StatusDescription)
			}
		}
		check("after the " + e.setting)
	}
	time.Sleep(3 * time.Second) // three drain times
	check("three drain times after the edits")

	// A throttle edit rebuilds the serving chain: the status says the
	// proxies drain, and the keep-alive connection is closed.
	a.do("PUT", a.lbPath(web.ID, "/connectionthrottle"),
		`{"connectionThrottle":{"maxConnections":100,"minConnections":0,"maxConnectionRate":50,"rateInterval":60}}`, 200, nil)
	if lb := a.waitStatus(web.ID, "ACTIVE"); !strings.Contains(lb.StatusDescription, "drain") {
		t.Errorf("after a throttle edit the status says %q", lb.StatusDescription)
	}
	waitFor(t, "the drained keep-alive connection closed", func() bool { return keptAlive(hc, hr) != nil })

	// A port change rebuilds the listener: the status says the proxies
	// drain, and the connection on the old port is closed.
	a.do("PUT", a.lbPath(tcp.ID, ""), fmt.Sprintf(`{"loadBalancer":{"port":%d}}`, freePort(t)), 202, nil)
	if lb := a.waitStatus(tcp.ID, "ACTIVE"); !strings.Contains(lb.StatusDescription, "drain") {
		t.Errorf("after a port change the status says %q", lb.StatusDescription)
	}
	waitFor(t, "the drained TCP connection closed", func() bool { return echoes(tc, tr, "still there?") != nil })
}

// echoBackend writes back every line it reads, on every connection.
func echoBackend(t *testing.T) int {
	return tcpServer(t, func(c net.Conn) {
		t.Cleanup(func() { c.Close() })
		go func() { _, _ = io.Copy(c, c) }()
	})
}

// echoes sends a line on c and checks it comes back.
func echoes(c net.Conn, r *bufio.Reader, line string) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return fmt.Errorf("echoed %q, want %q", got, line)
	}
	return nil
}

// keptAlive sends a request on c and checks the answer, and that the
// connection stays open (a draining Envoy answers "Connection: close").
func keptAlive(c net.Conn, r *bufio.Reader) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	req, _ := http.NewRequest("GET", "http://lb/", nil)
	if err := req.Write(c); err != nil {
		return err
	}
	res, err := http.ReadResponse(r, req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	switch {
	case err != nil:
		return err
	case res.StatusCode != 200 || string(b) != "web":
		return fmt.Errorf("%d %q", res.StatusCode, b)
	case res.Close:
		return fmt.Errorf("the proxy closes the connection (Connection: close)")
	}
	return nil
}
