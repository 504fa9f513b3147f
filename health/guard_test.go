package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

// insideService is an HTTP service on the control plane's own host that
// counts the connections it accepts.
func insideService(t *testing.T) (port uint32, conns *atomic.Int32) {
	conns = new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port = hostPort(t, srv.URL)
	return port, conns
}

// The prober resolves a node's name itself before each probe, checks
// every address, and connects only to an allowed one. A name that points
// at a denied address (here loopback, as a hosts-file entry would) is a
// failed check whose event says so, and the backend listening there never
// sees a connection; a name that does not resolve says just that, never
// the resolver's details.
func TestProberNeverConnectsToDeniedNames(t *testing.T) {
	st := openStore(t, "")
	port, conns := insideService(t)
	dns := dnstest.Start(t, map[string][]string{
		"intranet.test": {"127.0.0.1"},
		"mapped.test":   {"::ffff:127.0.0.1"},
	})
	guard, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, netguard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hm := &store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1, Path: "/", StatusRegex: "^200$"}
	connect := &store.HealthMonitor{Type: "CONNECT", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1}
	httpLB := createLB(t, st, hm, node("intranet.test", port), node("nowhere.test", port), node("127.0.0.1", port))
	connectLB := createLB(t, st, connect, node("mapped.test", port), node("intranet.test", port))
	startProber(t, st, Options{Dialer: netguard.Dialer{Guard: guard, Resolver: dns.Resolver()}})

	for _, lb := range []*store.LoadBalancer{httpLB, connectLB} {
		for _, n := range lb.Nodes {
			waitFor(t, n.Address+" OFFLINE", func() bool { return nodeStatus(t, st, lb.ID, n.ID) == Offline })
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the prober connected to a denied address %d times", n)
	}
	host, _, _ := net.SplitHostPort(dns.Addr)
	want := map[string]string{
		"intranet.test": "resolves to 127.0.0.1, which is in 127.0.0.0/8, where nodes are not allowed",
		"mapped.test":   "resolves to 127.0.0.1, which is in 127.0.0.0/8, where nodes are not allowed",
		"nowhere.test":  "name did not resolve (nowhere.test)",
		"127.0.0.1":     "not connected: 127.0.0.1 is in 127.0.0.0/8",
	}
	for _, lb := range []*store.LoadBalancer{httpLB, connectLB} {
		evs := events(t, st, lb.ID)
		if len(evs) != len(lb.Nodes) {
			t.Fatalf("events %+v, want one per node", evs)
		}
		for _, ev := range evs {
			var address string
			for _, n := range lb.Nodes {
				if n.ID == ev.NodeID {
					address = n.Address
				}
			}
			if !strings.Contains(ev.DetailedMessage, want[address]) || strings.Contains(ev.DetailedMessage, host+":") {
				t.Errorf("%s: event %q, want it to contain %q and no resolver address", address, ev.DetailedMessage, want[address])
			}
		}
	}
	if dns.Queries("intranet.test") == 0 {
		t.Error("the names were not resolved by the test's DNS server")
	}
}

// With the guard off (--denied-node-networks none, as trials on loopback
// run) a name is resolved by the prober and its node probed.
func TestProberProbesNamesItResolves(t *testing.T) {
	st := openStore(t, "")
	b := newBackend(t)
	_, port := hostPort(t, b.URL)
	dns := dnstest.Start(t, map[string][]string{"web.test": {"127.0.0.1"}})
	hm := &store.HealthMonitor{Type: "HTTP", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1, Path: "/", StatusRegex: "^200$"}
	n := node("web.test", port)
	n.Status = Offline
	lb := createLB(t, st, hm, n)
	startProber(t, st, Options{Dialer: netguard.Dialer{Resolver: dns.Resolver()}})
	waitFor(t, "web.test ONLINE", func() bool { return nodeStatus(t, st, lb.ID, lb.Nodes[0].ID) == Online })
	if b.requests.Load() == 0 {
		t.Error("the backend saw no request")
	}
}

// The host's own addresses, read from its interfaces, are never probed
// (loopback is one of them), even with no network configured.
func TestProberNeverConnectsToHostAddresses(t *testing.T) {
	st := openStore(t, "")
	port, conns := insideService(t)
	guard, err := netguard.New(nil, netguard.Options{HostAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	connect := &store.HealthMonitor{Type: "CONNECT", Delay: 1, Timeout: 2, AttemptsBeforeDeactivation: 1}
	lb := createLB(t, st, connect, node("127.0.0.1", port))
	startProber(t, st, Options{Dialer: netguard.Dialer{Guard: guard}})
	waitFor(t, "the node OFFLINE", func() bool { return nodeStatus(t, st, lb.ID, lb.Nodes[0].ID) == Offline })
	evs := events(t, st, lb.ID)
	if len(evs) != 1 || !strings.Contains(evs[0].DetailedMessage, "is an address of the service's own hosts") {
		t.Errorf("events: %+v", evs)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the prober connected to the host's own address %d times", n)
	}
}
