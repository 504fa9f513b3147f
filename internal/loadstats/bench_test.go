package loadstats

import (
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/openlbaas/lbaas/translator"
)

// BenchmarkAbsorb is one reporter's interval over 10,000 load balancers
// (what an Envoy of a full fleet sends), 1% of them busy; b.N intervals
// from 1,000 reporters in turn. Reported per cluster report.
func BenchmarkAbsorb(b *testing.B) {
	const lbs, reporters = 10_000, 1_000
	s := New(Options{LoadBalancerID: translator.LoadBalancerID})
	report := make([]*endpointv3.ClusterStats, lbs)
	for i := range report {
		l := &endpointv3.UpstreamLocalityStats{TotalIssuedRequests: 10, TotalSuccessfulRequests: 10}
		if i%100 == 0 {
			l.TotalRequestsInProgress = 1
		}
		report[i] = &endpointv3.ClusterStats{ClusterName: translator.ResourceName(uint32(i + 1)),
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{l}}
	}
	b.ResetTimer()
	for i := range b.N {
		s.absorb(uint64(i%reporters), nil, report)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lbs), "ns/cluster")
}

// BenchmarkSnapshot reads one load balancer that 1,000 reporters keep busy.
func BenchmarkSnapshot(b *testing.B) {
	s := New(Options{LoadBalancerID: translator.LoadBalancerID})
	busy := []*endpointv3.ClusterStats{{ClusterName: "lb_1", UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{TotalRequestsInProgress: 1}}}}
	for r := range 1_000 {
		s.absorb(uint64(r), nil, busy)
	}
	b.ResetTimer()
	for range b.N {
		if s.Snapshot(1).InProgress != 1_000 {
			b.Fatal("wrong sum")
		}
	}
}
