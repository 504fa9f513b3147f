package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/dnstest"
)

// defaults is lbaasd's default --denied-node-networks.
var defaults = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range strings.Split(DefaultDenied, ",") {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// hostAddr stands for an address of one of the host's interfaces.
const hostAddr = "192.0.2.77"

func testGuard(t *testing.T) *Guard {
	t.Helper()
	g, err := New(defaults, Options{HostAddresses: true, Interfaces: func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr(hostAddr), netip.MustParseAddr("fe80::1%eth0")}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheck(t *testing.T) {
	g := testGuard(t)
	denied := map[string]string{
		"127.0.0.1":                            "loopback",
		"127.9.9.9":                            "loopback",
		"0.0.0.0":                              "this network",
		"169.254.169.254":                      "link-local metadata service",
		"::1":                                  "IPv6 loopback",
		"fe80::1":                              "IPv6 link-local",
		"fec0::1":                              "site-local",
		"feff::1":                              "site-local",
		hostAddr:                               "the host's own address",
		"::ffff:127.0.0.1":                     "IPv4-mapped",
		"::ffff:" + hostAddr:                   "IPv4-mapped host address",
		"::127.0.0.1":                          "IPv4-compatible",
		"::a9fe:a9fe":                          "IPv4-compatible 169.254.169.254",
		"64:ff9b::7f00:1":                      "NAT64",
		"64:ff9b::c000:24d":                    "NAT64 of the host address",
		"64:ff9b:1::7f00:1":                    "local-use NAT64, /96 placement",
		"64:ff9b:1:7f00:0:100::":               "local-use NAT64, /48 placement",
		"64:ff9b:1:a9fe:a9:fe00::":             "local-use NAT64, /48 placement of 169.254.169.254",
		"2002:7f00:1::":                        "6to4",
		"2002:a9fe:a9fe::1":                    "6to4 of 169.254.169.254",
		"2002:c000:24d:1::5":                   "6to4 of the host address",
		"2001:0:7f00:1::1":                     "Teredo server",
		"2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo client 127.0.0.1",
		// The client's address is stored inverted: a9fe:a9fe ^ ffff:ffff.
		"2001:0:4136:e378:8000:63bf:5601:5601": "Teredo client 169.254.169.254",
		"2001:0:4136:e378:8000:63bf:3fff:fdb2": "Teredo client of the host address",
	}

	for addr, why := range denied {
		err := g.Check(netip.MustParseAddr(addr))
		var d *DeniedError
		if !errors.As(err, &d) {
			t.Errorf("%s (%s) allowed", addr, why)
			continue
		}
		if !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: %q", addr, err)
		}
	}
	for _, addr := range []string{
		"10.1.1.1", "192.0.2.78", "2001:db8::1", "::ffff:10.1.1.1", "64:ff9b::a01:101", "2002:a01:101::1",
		"2001:0:a01:101::1", "fd00::1", "ff00::1:2", "8.8.8.8",
	} {
		if err := g.Check(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
}

// The error names the configured network, or says "own hosts" without
// naming a network for the host's addresses.
func TestDeniedErrorText(t *testing.T) {
	g := testGuard(t)
	for addr, want := range map[string]string{
		"127.0.0.1":         "127.0.0.1 is in 127.0.0.0/8, where nodes are not allowed",
		"2002:7f00:1::":     "2002:7f00:1:: (embedding 127.0.0.1) is in 127.0.0.0/8, where nodes are not allowed",
		hostAddr:            hostAddr + " is an address of the service's own hosts, where nodes are not allowed",
		"64:ff9b::c000:24d": "64:ff9b::c000:24d (embedding 192.0.2.77) is an address of the service's own hosts",
	} {
		if err := g.Check(netip.MustParseAddr(addr)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", addr, err, want)
		}
	}
}

// The host's addresses are read from the real interfaces: loopback is
// denied with no network configured at all, and so is every address the
// machine has.
func TestHostAddresses(t *testing.T) {
	g, err := New(nil, Options{HostAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		t.Fatal("the machine has no interface address")
	}
	for _, a := range addrs {
		if err := g.Check(a.WithZone("")); err == nil {
			t.Errorf("the host's own %s allowed", a)
		}
	}
	if err := g.Check(netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("127.0.0.1 allowed")
	}

	// Refreshed: an address the host gains is denied after Refresh.
	current := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	g, err = New(nil, Options{HostAddresses: true, Interfaces: func() ([]netip.Addr, error) { return current, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if g.Check(netip.MustParseAddr("192.0.2.9")) != nil {
		t.Fatal("192.0.2.9 denied before the host has it")
	}
	current = append(current, netip.MustParseAddr("192.0.2.9"))
	if err := g.Refresh(); err != nil {
		t.Fatal(err)
	}
	if g.Check(netip.MustParseAddr("192.0.2.9")) == nil {
		t.Error("192.0.2.9 allowed after the host gained it")
	}
}

// With nothing to deny ("none") the guard is off.
func TestNoneAllowsEverything(t *testing.T) {
	g, err := New(nil, Options{})
	if err != nil || g != nil {
		t.Fatalf("New(none) = %v, %v", g, err)
	}
	if err := g.Check(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Error(err)
	}
}

func TestResolve(t *testing.T) {
	dns := dnstest.Start(t, map[string][]string{
		"ok.test":        {"10.1.1.1", "2001:db8::1"},
		"loop.test":      {"127.0.0.1"},
		"mixed.test":     {"10.1.1.2", "127.0.0.1"},
		"mapped.test":    {"::ffff:127.0.0.1"},
		"nat64.test":     {"64:ff9b::7f00:1"},
		"sixtofour.test": {"2002:a9fe:a9fe::1"},
		"host.test":      {hostAddr},
		"empty.test":     {},
	})
	r := dns.Resolver()
	g := testGuard(t)
	ctx := context.Background()

	got, err := g.Resolve(ctx, r, "ok.test")
	if err != nil || len(got) != 2 {
		t.Errorf("ok.test: %v, %v", got, err)
	}
	for _, name := range []string{"loop.test", "mixed.test", "mapped.test", "nat64.test", "sixtofour.test", "host.test", "localhost", "db.localhost."} {
		_, err := g.Resolve(ctx, r, name)
		var ne *NameError
		var d *DeniedError
		if !errors.As(err, &ne) || !errors.As(err, &d) {
			t.Errorf("%s: %v, want a denied name", name, err)
		}
	}
	for _, name := range []string{"nx.test", "empty.test"} {
		_, err := g.Resolve(ctx, r, name)
		if !errors.Is(err, ErrNotResolved) {
			t.Errorf("%s: %v, want ErrNotResolved", name, err)
		}
		// Never the resolver's details: not the DNS server's address.
		host, _, _ := net.SplitHostPort(dns.Addr)
		if err != nil && (strings.Contains(err.Error(), host) || err.Error() != "name did not resolve") {
			t.Errorf("%s: %q reveals resolver details", name, err)
		}
	}
	if dns.Queries("nx.test") == 0 {
		t.Error("nx.test never reached the test's DNS server")
	}
	// No resolver: names do not resolve; IP addresses are checked as they are.
	if _, err := g.Resolve(ctx, nil, "ok.test"); !errors.Is(err, ErrNotResolved) {
		t.Errorf("no resolver: %v", err)
	}
	if _, err := g.Resolve(ctx, nil, "127.0.0.1"); err == nil {
		t.Error("127.0.0.1 allowed")
	}
}

// The dialer connects only to allowed addresses: a name that resolves to
// a denied one is never connected to.
func TestDialerNeverConnectsToDenied(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dns := dnstest.Start(t, map[string][]string{"loop.test": {"127.0.0.1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	target := net.JoinHostPort("loop.test", strconv.Itoa(port))

	guarded := Dialer{Guard: testGuard(t), Resolver: dns.Resolver()}
	for _, addr := range []string{target, ln.Addr().String(), net.JoinHostPort("::ffff:127.0.0.1", strconv.Itoa(port))} {
		if c, err := guarded.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s: connected", addr)
		} else if d := (*DeniedError)(nil); !errors.As(err, &d) {
			t.Errorf("%s: %v, want a denied address", addr, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("the denied address was connected to")
	case <-time.After(100 * time.Millisecond):
	}

	// The guard off (--denied-node-networks none): the same name connects,
	// through the address the dialer resolved.
	open := Dialer{Resolver: dns.Resolver()}
	c, err := open.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatalf("guard off: %v", err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection arrived")
	}
}
