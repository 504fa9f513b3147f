package gateway_test

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/internal/server"
)

// hostsFileLoopbackNames are the names the machine's hosts file maps to a
// loopback address (localhost aside, which is refused by name).
func hostsFileLoopbackNames(t *testing.T) []string {
	f, err := os.Open("/etc/hosts")
	if err != nil {
		t.Logf("no hosts file: %v", err)
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
		if len(fields) < 2 {
			continue
		}
		if ip, err := netip.ParseAddr(fields[0]); err != nil || !ip.IsLoopback() {
			continue
		}
		for _, name := range fields[1:] {
			if !netguard.IsLocalhost(name) && !strings.Contains(name, "localhost") && !strings.Contains(name, "loopback") {
				names = append(names, name)
			}
		}
	}
	return names
}

// Customers cannot aim the prober or the fleet at the service's own hosts:
// names resolving to denied addresses, the host's interface addresses,
// IPv6 forms embedding a denied IPv4 address, site-local IPv6 and unusual
// IPv4 spellings are all refused with the fault naming the field, on
// create and on adding nodes. A name that resolves elsewhere, or not (yet)
// at all, is accepted, as the reference accepts names.
func TestNodeAddressGuard(t *testing.T) {
	var hostAddr string // a non-loopback address of this machine
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	for _, a := range ifAddrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		own = append(own, p.Addr().String())
		if !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() && hostAddr == "" {
			hostAddr = p.Addr().String()
		}
	}
	records := map[string][]string{
		"intranet.test": {"127.0.0.1"},
		"metadata.test": {"169.254.169.254"},
		"nat64.test":    {"64:ff9b::7f00:1"},
		"mixed.test":    {"10.1.1.9", "127.0.0.1"},
		"good.test":     {"10.1.1.1", "2001:db8::1"},
	}
	if hostAddr != "" {
		records["me.test"] = []string{hostAddr}
	} else {
		t.Log("this machine has no address but loopback: the host-address name case is not run")
	}
	dns := dnstest.Start(t, records)
	var denied []netip.Prefix
	for _, p := range strings.Split(netguard.DefaultDenied, ",") {
		denied = append(denied, netip.MustParsePrefix(p))
	}
	e := newEnv(t, func(c *server.Config) {
		c.DeniedNodeNetworks, c.DenyHostAddresses, c.NodeResolver = denied, true, dns.Resolver()
	})

	bad := []string{
		"intranet.test", "metadata.test", "nat64.test", "mixed.test", "localhost",
		"::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe", "2002:7f00:1::", "2002:a9fe:a9fe::1",
		"2001:0:4136:e378:8000:63bf:80ff:fffe", "fec0::1", "fe80::1",
		"0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.1", "2130706433",
	}
	bad = append(bad, own...)
	if hostAddr != "" {
		bad = append(bad, "me.test", "::ffff:"+hostAddr)
	}
	hosts := hostsFileLoopbackNames(t)
	t.Logf("hosts file names on loopback: %v", hosts)
	bad = append(bad, hosts...)

	id := e.createLB(simpleLB)
	e.waitStatus(id, "ACTIVE")
	for _, addr := range bad {
		body := `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"` + addr + `","port":80,"condition":"ENABLED"}]}}`
		out := e.mustCall(400, "POST", "/loadbalancers", body)
		if msgs := strings.Join(validationMessages(out), ""); !strings.Contains(msgs, "loadBalancer.nodes[0].address: ") || !strings.Contains(msgs, addr) {
			t.Errorf("create with %s: %v", addr, out)
		}
		out = e.mustCall(400, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"`+addr+`","port":80,"condition":"ENABLED"}]}`)
		if msgs := strings.Join(validationMessages(out), ""); !strings.HasPrefix(msgs, "nodes[0].address: ") {
			t.Errorf("add %s: %v", addr, out)
		}
	}
	// Never the resolver's details in a fault.
	host, _, _ := net.SplitHostPort(dns.Addr)
	out := e.mustCall(400, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"intranet.test","port":80,"condition":"ENABLED"}]}`)
	if msgs := strings.Join(validationMessages(out), ""); strings.Contains(msgs, host+":") ||
		msgs != "nodes[0].address: \"intranet.test\": intranet.test resolves to 127.0.0.1, which is in 127.0.0.0/8, where nodes are not allowed" {
		t.Errorf("fault: %q", msgs)
	}

	e.mustCall(202, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"good.test","port":80,"condition":"ENABLED"}]}`)
	e.waitStatus(id, "ACTIVE")
	e.mustCall(202, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"not-yet.test","port":80,"condition":"ENABLED"}]}`)
	if dns.Queries("not-yet.test") == 0 {
		t.Error("not-yet.test was never resolved")
	}
}
