// Package loadstats receives load reports (LRS, envoy.service.load_stats.v3)
// on the xDS port and aggregates them per load balancer, in memory.
//
// Proxyless gRPC clients report for the clusters whose lrs_server is the
// control plane (the translator's gRPC variant of every cluster), Envoy for
// every cluster once its bootstrap has cluster_manager.load_stats_config:
// per cluster and locality, the requests issued, succeeded and failed during
// the interval, the requests in progress at its end and, from reporters that
// count them, connections. A cluster is a load balancer (lb_<id>); the
// localities of a report are summed.
//
// Counters (requests, errors, failed connections) are the sum of every
// interval every reporter sent since this process started. Gauges (requests
// in progress, active connections) are the sum of each reporter's latest
// interval; a reporter whose stream ends stops counting at once, one that
// stays silent for longer than Options.Expiry (Envoy's metrics streams:
// Options.MetricsExpiry) stops counting then.
package loadstats

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults of Options.
const (
	DefaultInterval         = 10 * time.Second
	DefaultMaxLoadBalancers = 100_000
)

// Options configure the Service.
type Options struct {
	// Interval is the reporting interval asked of every reporter
	// (DefaultInterval when 0).
	Interval time.Duration
	// Expiry is how long a silent reporter's latest interval keeps
	// counting (3 intervals when 0).
	Expiry time.Duration
	// MetricsExpiry is the same for Envoy's metrics streams (3 ×
	// MetricsFlushInterval when 0, or Expiry when that is longer).
	MetricsExpiry time.Duration
	// MaxLoadBalancers bounds the load balancers tracked in memory
	// (DefaultMaxLoadBalancers when 0); reports for more are dropped and
	// counted.
	MaxLoadBalancers int
	// LoadBalancerID maps a reported cluster name to its load balancer;
	// reports for clusters it refuses are dropped and counted.
	LoadBalancerID func(cluster string) (uint32, bool)
	// Serves tells, for each cluster of a report, whether the reporter's
	// fleet is served it (a reporter may report only on its own fleet's
	// load balancers); the others are dropped and counted. Nil serves
	// every cluster.
	Serves func(node *corev3.Node, clusters []string) []bool
	// MetricsLoadBalancers is how many load balancers get Prometheus
	// series of their own (the label lb): the first that many to report,
	// for as long as this process runs. 0 gives none.
	MetricsLoadBalancers int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Counts are request, connection and byte counters. The load reports
// (LRS) count requests and failed connections, Envoy's metrics (the
// metrics service sink, see metricsMapping) the rest.
type Counts struct {
	Issued            uint64 // requests sent to a node
	Succeeded         uint64 // requests that completed successfully
	Errors            uint64 // requests that completed with an error
	Dropped           uint64 // requests the reporter dropped (no healthy node, circuit breaking)
	FailedConnections uint64 // connection attempts that failed (reporters that count them)

	ConnectTimeouts      uint64 // connection attempts to a node that timed out
	ConnectErrors        uint64 // connections a node closed with requests in flight
	DataTimeouts         uint64 // requests or connections ended by the load balancer's timeout
	KeepAliveTimeouts    uint64 // idle client connections closed
	DataTimeoutsSSL      uint64 // DataTimeouts of the secure listener
	KeepAliveTimeoutsSSL uint64 // KeepAliveTimeouts of the secure listener
	BytesIn              uint64 // bytes received from clients
	BytesOut             uint64 // bytes sent to clients
	BytesInSSL           uint64 // BytesIn of the secure listener
	BytesOutSSL          uint64 // BytesOut of the secure listener
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Issued += o.Issued
	c.Succeeded += o.Succeeded
	c.Errors += o.Errors
	c.Dropped += o.Dropped
	c.FailedConnections += o.FailedConnections
	c.ConnectTimeouts += o.ConnectTimeouts
	c.ConnectErrors += o.ConnectErrors
	c.DataTimeouts += o.DataTimeouts
	c.KeepAliveTimeouts += o.KeepAliveTimeouts
	c.DataTimeoutsSSL += o.DataTimeoutsSSL
	c.KeepAliveTimeoutsSSL += o.KeepAliveTimeoutsSSL
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.BytesInSSL += o.BytesInSSL
	c.BytesOutSSL += o.BytesOutSSL
}

// Gauges are the state at the end of a reporter's interval.
type Gauges struct {
	InProgress           uint64 // requests in progress
	ActiveConnections    uint64 // open connections (reporters that count them)
	ActiveConnectionsSSL uint64 // open connections of the secure listener
}

// Add adds o to g.
func (g *Gauges) Add(o Gauges) {
	g.InProgress += o.InProgress
	g.ActiveConnections += o.ActiveConnections
	g.ActiveConnectionsSSL += o.ActiveConnectionsSSL
}

// Snapshot is a load balancer's aggregate.
type Snapshot struct {
	Totals Counts // every interval of every reporter since this process started
	Gauges        // sum of the live reporters' latest intervals
	// MaxActiveConnections is the highest Gauges.ActiveConnections seen
	// when a report arrived, MaxActiveConnectionsSSL its secure twin.
	MaxActiveConnections, MaxActiveConnectionsSSL uint64
}

// Service implements the LoadReportingService and holds the aggregates.
type Service struct {
	lrsv3.UnimplementedLoadReportingServiceServer
	opts    Options
	streams atomic.Uint64 // stream ids

	mu      sync.Mutex
	lbs     map[uint32]*lbState
	seq     uint64     // reports absorbed: marks the load balancers a report touches
	touched []*lbState // scratch of absorb

	labelled int // load balancers with series of their own

	dirty    []uint32  // load balancers with usage since the last TakeUsage
	spilled  []Usage   // usage of earlier minutes not taken yet
	lastPoll time.Time // the last TakeUsage that polled the gauges

	reports [kinds]atomic.Uint64    // cluster reports absorbed, by kind
	dropped [kinds][2]atomic.Uint64 // cluster reports dropped, by kind and dropReasons
	live    [kinds]atomic.Int64     // open streams, by kind
}

// The kinds of report streams (the label kind).
const (
	kindLRS     = iota // envoy.service.load_stats.v3
	kindMetrics        // envoy.service.metrics.v3
	kinds
)

var kindNames = [kinds]string{"lrs", "metrics"}

// load is what one report says of one load balancer.
type load struct {
	name   string // the resource name, lb_<id>
	id     uint32 // of metricsLoads: lb_<id>'s number (0: another name)
	counts Counts
	gauges Gauges
	// Of Envoy's metrics: whether the load balancer has HTTP listener
	// stats, and its cluster's active connections (metricsLoads).
	http           bool
	upstreamActive uint64
}

// Reasons a cluster's report is dropped (the label reason).
var dropReasons = [2]string{"not_served", "too_many_load_balancers"}

const (
	dropNotServed = iota
	dropOverLimit
)

type lbState struct {
	labelled     bool // has Prometheus series of its own
	totals       Counts
	maxActive    uint64
	maxActiveSSL uint64
	reporters    map[uint64]latest // by stream, non-zero gauges only
	sum          Gauges            // the sum of reporters (expired ones until swept)
	seq          uint64            // the last report that touched it (absorb)
	pending      Gauges            // its gauges in that report
	// usage is what was absorbed in minute usageMinute (unix seconds)
	// since the last TakeUsage; usageMinute is 0 when nothing is.
	usage       Counts
	usageMinute int64
}

// sub takes o from g.
func (g *Gauges) sub(o Gauges) {
	g.InProgress -= o.InProgress
	g.ActiveConnections -= o.ActiveConnections
	g.ActiveConnectionsSSL -= o.ActiveConnectionsSSL
}

// setReporter replaces a stream's gauges (none when g is zero).
func (lb *lbState) setReporter(stream uint64, g Gauges, until time.Time) {
	if old, ok := lb.reporters[stream]; ok {
		lb.sum.sub(old.Gauges)
		delete(lb.reporters, stream)
	}
	if g == (Gauges{}) {
		return
	}
	if lb.reporters == nil {
		lb.reporters = map[uint64]latest{}
	}
	lb.reporters[stream] = latest{Gauges: g, until: until}
	lb.sum.Add(g)
}

type latest struct {
	Gauges
	until time.Time // counts until then unless the reporter reports again
}

// New returns the service.
func New(o Options) *Service {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Expiry <= 0 {
		o.Expiry = 3 * o.Interval
	}
	if o.MetricsExpiry <= 0 {
		o.MetricsExpiry = max(3*MetricsFlushInterval, o.Expiry)
	}
	if o.MaxLoadBalancers <= 0 {
		o.MaxLoadBalancers = DefaultMaxLoadBalancers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{opts: o, lbs: map[uint32]*lbState{}}
}

// Register serves the load reporting service on a gRPC server (the xDS
// server),
// and the metrics sink (envoy.service.metrics.v3) beside it.
func (s *Service) Register(g *grpc.Server) {
	lrsv3.RegisterLoadReportingServiceServer(g, s)
	metricsv3.RegisterMetricsServiceServer(g, metricsSink{s})
}

// open counts a stream of a kind and returns its id and the function
// that ends it (forgetting its gauges).
func (s *Service) open(kind int) (uint64, func()) {
	id := s.streams.Add(1)
	s.live[kind].Add(1)
	return id, func() {
		s.live[kind].Add(-1)
		s.forget(id)
	}
}

// StreamLoadStats asks the reporter for every cluster at the configured
// interval, then absorbs its reports until the stream ends.
func (s *Service) StreamLoadStats(stream lrsv3.LoadReportingService_StreamLoadStatsServer) error {
	id, done := s.open(kindLRS)
	defer done()
	asked := false
	var node *corev3.Node // the first request names it; later ones may
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n := req.GetNode(); n != nil {
			node = n
		}
		s.absorb(id, node, req.GetClusterStats())
		if !asked {
			// The first request names the node and may already carry stats.
			err := stream.Send(&lrsv3.LoadStatsResponse{
				SendAllClusters:       true,
				LoadReportingInterval: durationpb.New(s.opts.Interval),
			})
			if err != nil {
				return err
			}
			asked = true
		}
	}
}

// absorb adds a reporter's interval.
func (s *Service) absorb(stream uint64, node *corev3.Node, clusters []*endpointv3.ClusterStats) {
	s.absorbLoads(kindLRS, stream, node, len(clusters),
		func(i int) string { return clusters[i].GetClusterName() },
		func(i int, l *load) { clusterLoad(clusters[i], l) })
}

// absorbLoads adds what a report of a kind says of each of n load
// balancers: name(i) is the i-th's resource name, fill(i, l) sets l (a
// zero load) to what the report says of it.
func (s *Service) absorbLoads(kind int, stream uint64, node *corev3.Node, n int, name func(int) string, fill func(int, *load)) {
	if n == 0 {
		return
	}
	var served []bool
	if s.opts.Serves != nil {
		names := make([]string, n)
		for i := range n {
			names[i] = name(i)
		}
		served = s.opts.Serves(node, names)
	}
	now := s.opts.Now()
	minute := now.Truncate(time.Minute).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Several entries may name one cluster (one per EDS service name):
	// the stream's gauges for a load balancer are their sum.
	s.seq++
	touched := s.touched[:0]
	var l load
	absorbed := 0
	defer func() { s.reports[kind].Add(uint64(absorbed)) }()
	for i := range n {
		id, ok := s.opts.LoadBalancerID(name(i))
		if !ok || served != nil && !served[i] {
			s.dropped[kind][dropNotServed].Add(1)
			continue
		}
		lb := s.lbs[id]
		if lb == nil {
			if len(s.lbs) >= s.opts.MaxLoadBalancers {
				s.dropped[kind][dropOverLimit].Add(1)
				continue
			}
			lb = &lbState{labelled: s.labelled < s.opts.MetricsLoadBalancers}
			if lb.labelled {
				s.labelled++
			}
			s.lbs[id] = lb
		}
		l = load{}
		fill(i, &l)
		lb.totals.Add(l.counts)
		if l.counts != (Counts{}) {
			s.pend(id, lb, minute)
			lb.usage.Add(l.counts)
		}
		if lb.seq != s.seq {
			lb.seq, lb.pending = s.seq, Gauges{}
			touched = append(touched, lb)
		}
		lb.pending.Add(l.gauges)
		absorbed++
	}
	// Only non-zero gauges are kept: memory grows with the pairs of
	// stream and load balancer that have requests in progress or open
	// connections, not with every pair that ever reported. The sums are
	// kept as they change (expired reporters leave them when swept: on
	// reads, and each TakeUsage).
	until := now.Add(s.opts.Expiry)
	if kind == kindMetrics {
		until = now.Add(s.opts.MetricsExpiry)
	}
	for _, lb := range touched {
		lb.setReporter(stream, lb.pending, until)
		lb.maxActive = max(lb.maxActive, lb.sum.ActiveConnections)
		lb.maxActiveSSL = max(lb.maxActiveSSL, lb.sum.ActiveConnectionsSSL)
	}
	clear(touched)
	s.touched = touched
}

func clusterLoad(c *endpointv3.ClusterStats, l *load) {
	l.counts.Dropped = c.GetTotalDroppedRequests()
	for _, u := range c.GetUpstreamLocalityStats() {
		l.counts.Issued += u.GetTotalIssuedRequests()
		l.counts.Succeeded += u.GetTotalSuccessfulRequests()
		l.counts.Errors += u.GetTotalErrorRequests()
		l.counts.FailedConnections += u.GetTotalFailConnections()
		l.gauges.InProgress += u.GetTotalRequestsInProgress()
		l.gauges.ActiveConnections += u.GetTotalActiveConnections()
	}
}

// gauges sums the live reporters' latest gauges, forgetting the expired.
func (s *Service) gauges(lb *lbState, now time.Time) Gauges {
	for id, r := range lb.reporters {
		if now.After(r.until) {
			lb.setReporter(id, Gauges{}, now)
		}
	}
	return lb.sum
}

// forget drops an ended stream's gauges.
func (s *Service) forget(stream uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lb := range s.lbs {
		if len(lb.reporters) > 0 {
			lb.setReporter(stream, Gauges{}, time.Time{})
		}
	}
}

// Snapshot is the aggregate of load balancer id; zeros when nothing
// reported it.
func (s *Service) Snapshot(id uint32) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	lb := s.lbs[id]
	if lb == nil {
		return Snapshot{}
	}
	g := s.gauges(lb, s.opts.Now())
	return Snapshot{Totals: lb.totals, Gauges: g, MaxActiveConnections: lb.maxActive, MaxActiveConnectionsSSL: lb.maxActiveSSL}
}
