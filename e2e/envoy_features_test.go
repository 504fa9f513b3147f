package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The load balancer features through a real Envoy: access list, throttle,
// cookie persistence, error page and access log. Skipped without Envoy.
func TestEnvoyFeatures(t *testing.T) {
	t.Parallel()
	logs := t.TempDir()
	a, _ := envoyStack(t, []string{"LBAASD_ACCESS_LOG_PATH=" + filepath.Join(logs, "{lb}.log")})

	p1, _ := httpBackend(t, "one")
	p2, _ := httpBackend(t, "two")
	port := freePort(t)
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"features","protocol":"HTTP","port":%d,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"connectionLogging":{"enabled":true},"nodes":[%s,%s]}}`, port,
		nodeJSON("127.0.0.1", p1, ""), nodeJSON("127.0.0.1", p2, "")))
	a.waitStatus(lb.ID, "ACTIVE")
	vip := vipOf(t, a, lb.ID)
	url := fmt.Sprintf("http://%s:%d/", vip, port)
	waitHTTP(t, url, "serving", func(h map[string]int) bool { return h["one"]+h["two"] == 20 })

	t.Run("access log written", func(t *testing.T) {
		path := filepath.Join(logs, fmt.Sprintf("lb_%d.log", lb.ID))
		waitFor(t, "an access log line", func() bool {
			b, _ := os.ReadFile(path)
			return strings.Contains(string(b), fmt.Sprintf("lb_%d 127.0.0.1", lb.ID)) && strings.Contains(string(b), `"GET / HTTP/1.1" 200`)
		})
	})

	t.Run("access list denies, ALLOW wins", func(t *testing.T) {
		a.do("POST", a.lbPath(lb.ID, "/accesslist"), `{"accessList":[{"address":"127.0.0.0/8","type":"DENY"}]}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		waitHTTP(t, url, "denied", func(h map[string]int) bool { return h["error"] == 20 })
		a.do("POST", a.lbPath(lb.ID, "/accesslist"), `{"accessList":[{"address":"127.0.0.1","type":"ALLOW"}]}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		waitHTTP(t, url, "allowed again", func(h map[string]int) bool { return h["one"]+h["two"] == 20 })
		a.do("DELETE", a.lbPath(lb.ID, "/accesslist"), "", 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
	})

	t.Run("cookie persistence sticks", func(t *testing.T) {
		a.do("PUT", a.lbPath(lb.ID, "/sessionpersistence"), `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, Timeout: 2 * time.Second}
		waitFor(t, "20 requests with the cookie on one node", func() bool {
			seen := map[string]bool{}
			for range 20 {
				res, err := client.Get(url)
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				seen[string(b)] = true
			}
			return len(seen) == 1
		})
	})

	t.Run("error page for the load balancer's own 5xx", func(t *testing.T) {
		a.do("PUT", a.lbPath(lb.ID, "/errorpage"), `{"errorpage":{"content":"<html>sorry, 100% down</html>"}}`, 200, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		for _, n := range lb.Nodes {
			a.do("PUT", a.lbPath(lb.ID, "/nodes/"+strconv.Itoa(n.ID)), `{"node":{"condition":"DISABLED"}}`, 202, nil)
			a.waitStatus(lb.ID, "ACTIVE")
		}
		waitFor(t, "the custom error page", func() bool {
			res, err := http.Get(url)
			if err != nil {
				return false
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode == 503 && string(b) == "<html>sorry, 100% down</html>"
		})
	})

	t.Run("throttle refuses the connection over the limit", func(t *testing.T) {
		tport := freePort(t)
		tcp := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"throttled","protocol":"TCP","port":%d,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s],
			"connectionThrottle":{"maxConnections":1,"minConnections":0,"maxConnectionRate":0,"rateInterval":1}}}`,
			tport, nodeJSON("127.0.0.1", holdBackend(t), "")))
		a.waitStatus(tcp.ID, "ACTIVE")
		addr := net.JoinHostPort(vipOf(t, a, tcp.ID), strconv.Itoa(tport))
		var first net.Conn
		waitFor(t, "a first connection through Envoy", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			buf := make([]byte, 5)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
				c.Close()
				return false
			}
			first = c
			return true
		})
		defer first.Close()
		second, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return // refused outright: throttled
		}
		defer second.Close()
		_ = second.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, _ := second.Read(make([]byte, 5)); n > 0 {
			t.Fatal("a second connection over maxConnections=1 reached the node")
		}
	})
}

// holdBackend greets every connection with "hello" and keeps it open.
func holdBackend(t *testing.T) int {
	return tcpServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("hello"))
		t.Cleanup(func() { c.Close() })
	})
}
