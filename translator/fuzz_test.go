package translator_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	. "github.com/openlbaas/lbaas/translator"
)

// FuzzTranslate: every load balancer the API can accept translates without
// error into resources that pass go-control-plane's validation.
func FuzzTranslate(f *testing.F) {
	f.Add(uint32(1), uint8(3), uint16(80), uint8(1), uint8(30), uint8(0), []byte{1, 2, 3, 4, 5, 6})
	f.Add(uint32(7), uint8(17), uint16(53), uint8(4), uint8(120), uint8(7), []byte{200, 0, 1, 9, 255, 3, 4, 4})
	f.Add(uint32(4294967295), uint8(4), uint16(443), uint8(2), uint8(1), uint8(2), []byte{})
	f.Fuzz(func(t *testing.T, id uint32, protocol uint8, port uint16, algorithm uint8, timeout uint8, flags uint8, nodes []byte) {
		if id == 0 || port == 0 {
			t.Skip("the API never stores these")
		}
		p := api.Protocols[int(protocol)%len(api.Protocols)]
		lb := &LoadBalancer{
			ID: id, Protocol: p.Name, Port: uint32(port),
			Algorithm:      api.Algorithms[int(algorithm)%len(api.Algorithms)],
			TimeoutSeconds: uint32(timeout)%120 + 1,
			HalfClosed:     flags&1 != 0 && (p.Name == "TCP" || p.Name == "TCP_CLIENT_FIRST"),
			HTTPSRedirect:  flags&2 != 0 && p.Name == "HTTPS" && port == 443,
			VIPs:           []VIP{{"127.1.0.1"}},
		}
		if flags&4 != 0 {
			lb.VIPs = append(lb.VIPs, VIP{"fd00:1ba5:0000:0000:0000:0000:0000:0001"})
		}
		// The features, as the API accepts them.
		if flags&8 != 0 {
			lb.AccessList = []NetworkItem{{"0.0.0.0/0", "DENY"}, {fmt.Sprintf("10.%d.0.0/16", port%256), "ALLOW"}, {"2001:db8::/32", "DENY"}}
		}
		if flags&16 != 0 {
			lb.Throttle = &Throttle{MaxConnections: uint32(port) % 100001, MaxConnectionRate: uint32(timeout), RateInterval: uint32(algorithm)%3600 + 1}
		}
		if flags&32 != 0 {
			lb.Persistence = []string{"HTTP_COOKIE", "SOURCE_IP", "SSL_ID"}[int(algorithm)%3]
		}
		lb.ConnectionLogging = flags&64 != 0
		lb.ContentCaching = flags&128 != 0 && p.Name == "HTTP"
		lb.CheckPassive = timeout%2 == 0
		lb.BackendKeepAlive = timeout%3 == 0
		lb.ClientKeepAliveSeconds = uint32(timeout)%3600 + 1
		if len(nodes) > 0 {
			// The API accepts UTF-8 only (seed 25a7af7bc26cb594 found the
			// translator panicking on anything else; it now refuses it).
			lb.ErrorPage = "<html>" + strings.ToValidUTF8(string(nodes), "?") + " 100%</html>"
		}
		conditions := []string{"ENABLED", "DISABLED", "DRAINING"}
		for i := 0; i+2 < len(nodes) && len(lb.Nodes) < 25; i += 3 {
			b := nodes[i : i+3]
			addr := fmt.Sprintf("10.0.%d.%d", b[0], b[1])
			ips := []netip.Addr{netip.MustParseAddr(addr)}
			if b[2]&64 != 0 {
				// A name, resolved by the control plane to none, one or
				// several addresses (possibly another node's).
				addr = fmt.Sprintf("node%d.example.com", b[0])
				ips = ips[:0]
				for k := range int(b[0]) % 4 {
					ips = append(ips, netip.AddrFrom4([4]byte{10, 1, b[1], byte(k)}), netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(k)}))
				}
			}
			lb.Nodes = append(lb.Nodes, Node{
				ID: uint32(i + 1), Address: addr, Addresses: ips, Port: uint32(b[1]) + 1,
				Condition: conditions[int(b[2])%3], Type: map[bool]string{true: "SECONDARY", false: "PRIMARY"}[b[2]&8 != 0],
				Weight: uint32(b[2])%100 + 1, Online: b[2]&16 == 0,
			})
		}
		out, err := Translate(lb)
		if err != nil {
			t.Fatalf("translate %+v: %v", lb, err)
		}
		if err := out.Validate(); err != nil {
			t.Fatalf("translate %+v: %v", lb, err)
		}
	})
}

// Input the API would never store is refused, never a panic.
func TestTranslateRefusesNonUTF8(t *testing.T) {
	lb := &LoadBalancer{ID: 1, Protocol: "HTTP", Port: 80, VIPs: []VIP{{"127.1.0.1"}}, ErrorPage: "\xff"}
	if _, err := Translate(lb); err == nil {
		t.Fatal("an error page that is not UTF-8 was translated")
	}
}
