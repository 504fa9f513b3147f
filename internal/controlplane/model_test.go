package controlplane

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/openlbaas/lbaas/store"
)

// Model gives the translator each node's addresses from the lookup: a
// name's resolution, nothing for a name that has none; without a lookup,
// IP addresses as they are and no name resolved.
func TestModelCarriesResolvedAddresses(t *testing.T) {
	lb := &store.LoadBalancer{ID: 7, Nodes: []store.Node{
		{ID: 1, Address: "10.0.0.1", Port: 80}, {ID: 2, Address: "web.example.com", Port: 80}, {ID: 3, Address: "gone.example.com", Port: 80},
	}}
	resolved := map[string][]netip.Addr{
		"10.0.0.1":        {netip.MustParseAddr("10.0.0.1")},
		"web.example.com": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
	}
	var asked []uint32
	m := Model(lb, func(id uint32, address string) []netip.Addr {
		asked = append(asked, id)
		return resolved[address]
	})
	for i, want := range [][]netip.Addr{resolved["10.0.0.1"], resolved["web.example.com"], nil} {
		if got := m.Nodes[i].Addresses; !slices.Equal(got, want) {
			t.Errorf("node %d: %v, want %v", i+1, got, want)
		}
	}
	if !slices.Equal(asked, []uint32{7, 7, 7}) {
		t.Errorf("lookups for load balancers %v, want 7 for each node", asked)
	}
	m = Model(lb, nil)
	if got := m.Nodes[0].Addresses; !slices.Equal(got, resolved["10.0.0.1"]) || m.Nodes[1].Addresses != nil {
		t.Errorf("without a lookup: %v, %v", m.Nodes[0].Addresses, m.Nodes[1].Addresses)
	}
}
