package loadstats

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	promv1 "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/openlbaas/lbaas/translator"
)

// The scale of issue 12: 1,000 reporters, each reporting on 10,000 load
// balancers (1% of them with requests in progress or open connections),
// LRS every 10 s, Envoy's metrics every MetricsFlushInterval. One op is one
// whole reporting interval: every reporter's report absorbed, then the
// interval's usage taken for the database (the recorder's flush, without
// the write). Reported: CPU time per interval (not wall time: the machine
// may be shared) as a share of one core over the interval, and the heap
// the aggregates hold. gRPC's decoding of the messages is not included.
//
//	go test -run XXX -bench 'Interval|AtScale' -benchtime 1x ./internal/loadstats
const (
	benchReporters = 1_000
	benchLBs       = 10_000
	benchInterval  = 10 * time.Second
)

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func reportInterval(b *testing.B, every time.Duration, absorbOne func(s *Service, reporter int)) {
	before := heapInUse()
	s := New(Options{LoadBalancerID: translator.LoadBalancerID})
	now := time.Now()
	interval := func() {
		for r := range benchReporters {
			absorbOne(s, r)
		}
		s.TakeUsage(now)
		now = now.Add(every)
	}
	interval() // the aggregates of every pair exist from here on
	extra := heapInUse() - before
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		interval()
	}
	cpu = cpuTime() - cpu
	b.StopTimer()
	// CPU time (the process's, garbage collection included), not wall
	// time: the machine may be shared.
	perInterval := cpu / time.Duration(b.N)
	b.ReportMetric(perInterval.Seconds(), "cpu-s/interval")
	b.ReportMetric(100*perInterval.Seconds()/every.Seconds(), "%core")
	b.ReportMetric(float64(extra)/(1<<20), "MB-held")
}

// BenchmarkIntervalLRS: the reports are LRS (grpc-go, grpc-js, Envoy's
// load_stats_config), decoded messages as the gRPC stream hands them.
func BenchmarkIntervalLRS(b *testing.B) {
	report := make([]*endpointv3.ClusterStats, benchLBs)
	for i := range report {
		l := &endpointv3.UpstreamLocalityStats{TotalIssuedRequests: 10, TotalSuccessfulRequests: 9, TotalErrorRequests: 1}
		if i%100 == 0 {
			l.TotalRequestsInProgress = 1
		}
		report[i] = &endpointv3.ClusterStats{ClusterName: translator.ResourceName(uint32(i + 1)),
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{l}}
	}
	reportInterval(b, benchInterval, func(s *Service, r int) { s.absorb(uint64(r+1), nil, report) })
}

// BenchmarkIntervalMetrics: the reports are Envoy's metrics service
// flushes, the seven stats per load balancer an HTTP load balancer sends
// through the stats matcher, counters first, then gauges, as Envoy
// flushes them.
func BenchmarkIntervalMetrics(b *testing.B) {
	var counters, gauges []*promv1.MetricFamily
	for i := range benchLBs {
		lb := translator.ResourceName(uint32(i + 1))
		add := func(name string, typ promv1.MetricType, v float64) {
			m := &promv1.Metric{}
			if typ == promv1.MetricType_COUNTER {
				m.Counter = &promv1.Counter{Value: proto.Float64(v)}
			} else {
				m.Gauge = &promv1.Gauge{Value: proto.Float64(v)}
			}
			f := &promv1.MetricFamily{Name: proto.String(name), Type: typ.Enum(), Metric: []*promv1.Metric{m}}
			if typ == promv1.MetricType_COUNTER {
				counters = append(counters, f)
			} else {
				gauges = append(gauges, f)
			}
		}
		conns := 0.0
		if i%100 == 0 {
			conns = 1
		}
		add(fmt.Sprintf("http.%s.downstream_cx_rx_bytes_total", lb), promv1.MetricType_COUNTER, 1000)
		add(fmt.Sprintf("http.%s.downstream_cx_tx_bytes_total", lb), promv1.MetricType_COUNTER, 5000)
		add(fmt.Sprintf("http.%s.downstream_cx_active", lb), promv1.MetricType_GAUGE, conns)
		add(fmt.Sprintf("http.%s.downstream_cx_idle_timeout", lb), promv1.MetricType_COUNTER, 0)
		add(fmt.Sprintf("cluster.%s.upstream_cx_active", lb), promv1.MetricType_GAUGE, conns)
		add(fmt.Sprintf("cluster.%s.upstream_cx_connect_fail", lb), promv1.MetricType_COUNTER, 0)
		add(fmt.Sprintf("cluster.%s.upstream_cx_connect_timeout", lb), promv1.MetricType_COUNTER, 0)
	}
	// Envoy sends its counters, then its gauges.
	families := append(counters, gauges...)
	var loads []load
	reportInterval(b, MetricsFlushInterval, func(s *Service, r int) {
		loads = metricsLoads(families, loads[:0])
		s.absorbMetrics(uint64(r+1), nil, loads)
	})
}

// BenchmarkSnapshotAtScale reads one load balancer's stats while the
// aggregates hold a whole interval of the scale above.
func BenchmarkSnapshotAtScale(b *testing.B) {
	s := New(Options{LoadBalancerID: translator.LoadBalancerID})
	report := make([]*endpointv3.ClusterStats, benchLBs)
	for i := range report {
		report[i] = &endpointv3.ClusterStats{ClusterName: translator.ResourceName(uint32(i + 1)),
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{TotalIssuedRequests: 1, TotalRequestsInProgress: 1}}}
	}
	for r := range benchReporters {
		s.absorb(uint64(r+1), nil, report)
	}
	b.ResetTimer()
	for range b.N {
		if s.Snapshot(benchLBs/2).InProgress != benchReporters {
			b.Fatal("wrong sum")
		}
	}
}
