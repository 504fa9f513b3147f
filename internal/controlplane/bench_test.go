package controlplane

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

func storedFleet(n int) []*store.LoadBalancer {
	lbs := make([]*store.LoadBalancer, n)
	for i := range lbs {
		lb := &store.LoadBalancer{
			ID: uint32(i + 1), Protocol: "HTTP", Port: 80, Algorithm: "WEIGHTED_ROUND_ROBIN", Timeout: 30,
			Status: store.StatusActive, Fleet: "default", Revision: 1,
			VirtualIPs: []store.VirtualIP{{ID: uint32(i + 1), Address: fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)}},
		}
		for j := range 10 {
			lb.Nodes = append(lb.Nodes, store.Node{ID: uint32(i*10 + j + 1), Address: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, j+1),
				Port: 8080, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Status: "ONLINE"})
		}
		lbs[i] = lb
	}
	return lbs
}

// loaded returns a publisher whose cache holds n load balancers.
func loaded(b testing.TB, n int) (*Publisher, []*store.LoadBalancer) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := newPublisher(nil, Options{}, log)
	p.cache = xds.NewCache("default", 1)
	p.tracker = xds.NewTracker(p.cache, p, xds.DefaultLimits, log, nil)
	lbs := storedFleet(n)
	updates := map[xds.Group]*xds.Update{}
	for _, lb := range lbs {
		p.stage(lb, updates)
	}
	if err := p.cache.Apply(1, updates); err != nil {
		b.Fatal(err)
	}
	return p, lbs
}

// benchmarkOneChange measures what one load balancer's change costs the
// publisher: translation, diff against what is published, and the cache
// update (go-control-plane linear caches), among n load balancers.
func benchmarkOneChange(b *testing.B, n int) {
	p, lbs := loaded(b, n)
	lb := lbs[n/2]
	rev := int64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rev++
		lb.Nodes[0].Weight = uint32(rev%100) + 1
		lb.Revision = rev
		updates := map[xds.Group]*xds.Update{}
		p.stage(lb, updates)
		if err := p.cache.Apply(rev, updates); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOneChangeAmong10(b *testing.B)    { benchmarkOneChange(b, 10) }
func BenchmarkOneChangeAmong10000(b *testing.B) { benchmarkOneChange(b, 10_000) }
