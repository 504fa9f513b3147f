package translator

import (
	"net/netip"
	"slices"
	"testing"
)

func TestDeniedNetworks(t *testing.T) {
	for _, c := range []struct {
		name  string
		items []NetworkItem
		want  []string
	}{
		{"only ALLOW refuses nothing", []NetworkItem{{"10.0.0.0/8", "ALLOW"}}, nil},
		{"DENY alone", []NetworkItem{{"203.0.113.7", "DENY"}}, []string{"203.0.113.7/32"}},
		{"ALLOW wins inside a DENY", []NetworkItem{{"10.0.0.0/30", "DENY"}, {"10.0.0.1", "ALLOW"}},
			[]string{"10.0.0.0/32", "10.0.0.2/31"}},
		{"ALLOW wins even when less specific", []NetworkItem{{"10.1.2.3", "DENY"}, {"10.0.0.0/8", "ALLOW"}}, nil},
		{"0.0.0.0/0 DENY is an allow-list for IPv4 and IPv6",
			[]NetworkItem{{"0.0.0.0/0", "DENY"}, {"128.0.0.0/1", "ALLOW"}, {"8000::/1", "ALLOW"}},
			[]string{"0.0.0.0/1", "::/1"}},
		{"families do not mix", []NetworkItem{{"2001:db8::/32", "DENY"}, {"10.0.0.0/8", "ALLOW"}}, []string{"2001:db8::/32"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range deniedNetworks(c.items) {
				got = append(got, p.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("denied %v, want %v", got, c.want)
			}
		})
	}
}

// Every address of a DENY network is refused unless an ALLOW network holds it.
func TestDeniedNetworksCoverExactly(t *testing.T) {
	items := []NetworkItem{{"192.168.0.0/24", "DENY"}, {"192.168.0.64/26", "ALLOW"}, {"192.168.0.7", "ALLOW"}}
	denied := deniedNetworks(items)
	for i := range 256 {
		addr := netip.AddrFrom4([4]byte{192, 168, 0, byte(i)})
		refused := slices.ContainsFunc(denied, func(p netip.Prefix) bool { return p.Contains(addr) })
		allowed := (i >= 64 && i < 128) || i == 7
		if refused == allowed {
			t.Fatalf("%s: refused=%v, allowed by an ALLOW item=%v", addr, refused, allowed)
		}
	}
}
