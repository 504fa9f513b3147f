package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// healthBackend is a gRPC backend that also answers an HTTP health check
// on the same port (HTTP/1.1 for the check, h2c for gRPC), so the test can
// fail its health check while it still serves traffic, or stop it.
type healthBackend struct {
	t       *testing.T
	name    string
	port    int
	healthy atomic.Bool
	grpc    *grpc.Server

	mu   sync.Mutex
	http *http.Server
}

func startHealthBackend(t *testing.T, name string) *healthBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &healthBackend{t: t, name: name, port: ln.Addr().(*net.TCPAddr).Port, grpc: grpc.NewServer()}
	b.healthy.Store(true)
	testgrpc.RegisterTestServiceServer(b.grpc, &backend{name: name})
	b.serve(ln)
	t.Cleanup(func() { b.stop(); b.grpc.Stop() })
	return b
}

func (b *healthBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		b.grpc.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != "/health" {
		http.NotFound(w, r)
		return
	}
	if !b.healthy.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	fmt.Fprintln(w, "serving")
}

func (b *healthBackend) serve(ln net.Listener) {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: b, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.http = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: the port refuses connections.
func (b *healthBackend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.http != nil {
		_ = b.http.Close()
		b.http = nil
	}
}

// restart listens on the same port again.
func (b *healthBackend) restart() {
	b.t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", b.port))
	if err != nil {
		b.t.Fatalf("listen again on %d: %v", b.port, err)
	}
	b.serve(ln)
}

type healthLB struct {
	Status string `json:"status"`
	Nodes  []struct {
		ID     int    `json:"id"`
		Port   int    `json:"port"`
		Status string `json:"status"`
	} `json:"nodes"`
	NodesStatus struct{ Up, Down int } `json:"nodesStatus"`
}

type nodeEvent struct {
	ID              int    `json:"id"`
	NodeID          int    `json:"nodeId"`
	Description     string `json:"description"`
	DetailedMessage string `json:"detailedMessage"`
}

// An active health monitor, probed by the control plane, takes a failing
// node out of a proxyless gRPC client's rotation through EDS, shows it
// OFFLINE with an event in the API, and puts it back when it recovers.
func TestHealthMonitorProxyless(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	client := newProxyless(t, bin, d, "e2e-health")
	nodeA, nodeB := startHealthBackend(t, "a"), startHealthBackend(t, "b")

	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"checked","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s],
		"healthMonitor":{"type":"HTTP","delay":1,"timeout":1,"attemptsBeforeDeactivation":1,"path":"/health","statusRegex":"^2[0-9][0-9]$","checkBody":"serving"}}}`,
		nodeJSON("127.0.0.1", nodeA.port, ""), nodeJSON("127.0.0.1", nodeB.port, "")))
	a.waitStatus(lb.ID, "ACTIVE")
	idB := lb.Nodes[1].ID
	c := client.dial(lb.ID)
	eventually(t, c, "both nodes serve", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })

	details := func() healthLB {
		var out struct{ LoadBalancer healthLB }
		a.do("GET", a.lbPath(lb.ID, ""), "", 200, &out)
		return out.LoadBalancer
	}
	statusOfB := func() string {
		for _, n := range details().Nodes {
			if n.ID == idB {
				return n.Status
			}
		}
		return ""
	}
	events := func() []nodeEvent {
		var out struct {
			NodeServiceEvents []nodeEvent `json:"nodeServiceEvents"`
		}
		a.do("GET", a.lbPath(lb.ID, "/nodes/events"), "", 200, &out)
		return out.NodeServiceEvents
	}
	lastEvent := func(want string) nodeEvent {
		t.Helper()
		evs := events()
		if len(evs) == 0 {
			t.Fatal("no node service events")
		}
		ev := evs[len(evs)-1]
		if ev.NodeID != idB || !strings.Contains(ev.Description, fmt.Sprintf("Node '%d' status changed to '%s'", idB, want)) {
			t.Errorf("last event %+v, want node %d %s", ev, idB, want)
		}
		return ev
	}

	t.Run("a node failing its HTTP check leaves the rotation while it still serves", func(t *testing.T) {
		nodeB.healthy.Store(false)
		waitFor(t, "node b OFFLINE", func() bool { return statusOfB() == "OFFLINE" })
		lb := details()
		if lb.NodesStatus.Up != 1 || lb.NodesStatus.Down != 1 || lb.Status != "ACTIVE" {
			t.Errorf("details: status %s, nodesStatus %+v; want ACTIVE, up 1, down 1", lb.Status, lb.NodesStatus)
		}
		if ev := lastEvent("OFFLINE"); !strings.Contains(ev.DetailedMessage, "Status code 503") {
			t.Errorf("detailedMessage %q does not say why", ev.DetailedMessage)
		}
		// b's gRPC server is up: only the published health keeps traffic off it.
		eventually(t, c, "only a serves", func(h map[string]int) bool { return h["a"] == 20 })
	})
	t.Run("it comes back when it passes again", func(t *testing.T) {
		nodeB.healthy.Store(true)
		waitFor(t, "node b ONLINE", func() bool { return statusOfB() == "ONLINE" })
		lastEvent("ONLINE")
		eventually(t, c, "b serves again", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	})

	t.Run("a CONNECT monitor: a stopped node goes OFFLINE, restarted on its port it is back", func(t *testing.T) {
		a.do("PUT", a.lbPath(lb.ID, "/healthmonitor"), `{"healthMonitor":{"type":"CONNECT","delay":1,"timeout":1,"attemptsBeforeDeactivation":1}}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		nodeB.stop()
		waitFor(t, "node b OFFLINE", func() bool { return statusOfB() == "OFFLINE" })
		if ev := lastEvent("OFFLINE"); !strings.Contains(ev.DetailedMessage, "connection refused") {
			t.Errorf("detailedMessage %q", ev.DetailedMessage)
		}
		if ns := details().NodesStatus; ns.Up != 1 || ns.Down != 1 {
			t.Errorf("nodesStatus %+v", ns)
		}
		eventually(t, c, "only a serves", func(h map[string]int) bool { return h["a"] == 20 })
		nodeB.restart()
		waitFor(t, "node b ONLINE", func() bool { return statusOfB() == "ONLINE" })
		lastEvent("ONLINE")
		eventually(t, c, "b is back in rotation", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	})

	t.Run("deleting the monitor puts every node ONLINE", func(t *testing.T) {
		nodeB.stop()
		waitFor(t, "node b OFFLINE", func() bool { return statusOfB() == "OFFLINE" })
		a.do("DELETE", a.lbPath(lb.ID, "/healthmonitor"), "", 202, nil)
		if s := statusOfB(); s != "ONLINE" {
			t.Errorf("after DELETE node b is %s", s)
		}
		a.waitStatus(lb.ID, "ACTIVE")
		nodeB.restart()
		eventually(t, c, "b serves without a monitor", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	})
	d.stop(t)
}
