package translator

import (
	"fmt"
	"net/netip"
	"testing"
)

// fleetOf builds n HTTP and TCP load balancers with 10 nodes each.
func fleetOf(n int) []*LoadBalancer {
	lbs := make([]*LoadBalancer, n)
	for i := range lbs {
		lb := &LoadBalancer{
			ID: uint32(i + 1), Protocol: "HTTP", Port: 80, Algorithm: "WEIGHTED_ROUND_ROBIN", TimeoutSeconds: 30,
			VIPs: []VIP{{fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)}},
		}
		if i%2 == 1 {
			lb.Protocol, lb.Port = "TCP", 5432
		}
		for j := range 10 {
			addr := fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, j+1)
			lb.Nodes = append(lb.Nodes, Node{ID: uint32(j + 1), Address: addr, Addresses: []netip.Addr{netip.MustParseAddr(addr)},
				Port: 8080, Condition: "ENABLED", Type: "PRIMARY", Weight: uint32(j + 1), Online: true})
		}
		lbs[i] = lb
	}
	return lbs
}

// BenchmarkTranslate10k is the full translation of 10,000 load balancers
// with 10 nodes each, single-threaded (target: under 0.3 s per op).
func BenchmarkTranslate10k(b *testing.B) {
	lbs := fleetOf(10_000)
	b.ReportAllocs()
	for b.Loop() {
		for _, lb := range lbs {
			if _, err := Translate(lb); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkTranslateOne is one load balancer with 10 nodes.
func BenchmarkTranslateOne(b *testing.B) {
	lb := fleetOf(1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(lb); err != nil {
			b.Fatal(err)
		}
	}
}

// terminatedFleetOf is fleetOf(n) with every fifth load balancer
// terminating TLS with 3 certificate mappings (2,000 of 10,000; half HTTP,
// half TCP, as the fleet), so the two fleets differ only by TLS.
func terminatedFleetOf(n int) []*LoadBalancer {
	lbs := fleetOf(n)
	for i, lb := range lbs {
		if i%5 != 0 {
			continue
		}
		lb.TLS = &TLSTermination{SecurePort: 443, Ciphers: profile(len(Ciphers)), TLS11: true, Default: testCert("default"),
			Mappings: []CertificateMapping{
				{ID: 1, HostName: "a.example.com", Certificate: testCert("a")},
				{ID: 2, HostName: "b.example.com", Certificate: testCert("b")},
				{ID: 3, HostName: "*.example.org", Certificate: testCert("org")},
			}}
	}
	return lbs
}

// BenchmarkTranslate10kTLS is BenchmarkTranslate10k with 2,000 of the
// load balancers terminating TLS with 3 mappings each (target: within
// 1.5x of BenchmarkTranslate10k).
func BenchmarkTranslate10kTLS(b *testing.B) {
	lbs := terminatedFleetOf(10_000)
	b.ReportAllocs()
	for b.Loop() {
		for _, lb := range lbs {
			if _, err := Translate(lb); err != nil {
				b.Fatal(err)
			}
		}
	}
}
