package loadstats

import (
	"errors"
	"io"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	promv1 "github.com/prometheus/client_model/go"
)

// Envoy's metrics service sink (envoy.service.metrics.v3): Envoy streams
// its stats every flush interval, counters as deltas
// (report_counters_as_deltas), under their full names (emit_tags_as_labels
// off), only those the bootstrap's stats matcher includes (StatsMatcher).
// The listener side of a load balancer is named by the stat prefix of its
// HTTP connection manager, TCP or UDP proxy (lb_<id>, the secure listener
// of SSL termination lb_<id>_tls), the node side by its cluster (lb_<id>).
//
// metricsMapping is which stat feeds which number, by the stat's scope
// and name; the README's Statistics table is this table.
var metricsMapping = []struct {
	scope, stat string
	secure      bool // the stat of lb_<id>_tls
	apply       func(*load, uint64)
}{
	// Bytes (incomingTransfer, outgoingTransfer and their Ssl twins).
	{"http", "downstream_cx_rx_bytes_total", false, func(l *load, v uint64) { l.counts.BytesIn += v }},
	{"http", "downstream_cx_tx_bytes_total", false, func(l *load, v uint64) { l.counts.BytesOut += v }},
	{"tcp", "downstream_cx_rx_bytes_total", false, func(l *load, v uint64) { l.counts.BytesIn += v }},
	{"tcp", "downstream_cx_tx_bytes_total", false, func(l *load, v uint64) { l.counts.BytesOut += v }},
	{"udp", "downstream_sess_rx_bytes", false, func(l *load, v uint64) { l.counts.BytesIn += v }},
	{"udp", "downstream_sess_tx_bytes", false, func(l *load, v uint64) { l.counts.BytesOut += v }},
	{"http", "downstream_cx_rx_bytes_total", true, func(l *load, v uint64) { l.counts.BytesInSSL += v }},
	{"http", "downstream_cx_tx_bytes_total", true, func(l *load, v uint64) { l.counts.BytesOutSSL += v }},
	{"tcp", "downstream_cx_rx_bytes_total", true, func(l *load, v uint64) { l.counts.BytesInSSL += v }},
	{"tcp", "downstream_cx_tx_bytes_total", true, func(l *load, v uint64) { l.counts.BytesOutSSL += v }},
	// Open connections (currentConn, currentConnSsl): an HTTP listener's
	// client connections; a TCP proxy keeps one node connection per client
	// connection, so the cluster's active connections count them (only
	// when the load balancer has no HTTP listener: see metricsLoads).
	{"http", "downstream_cx_active", false, func(l *load, v uint64) { l.gauges.ActiveConnections += v }},
	{"udp", "downstream_sess_active", false, func(l *load, v uint64) { l.gauges.ActiveConnections += v }},
	{"http", "downstream_cx_active", true, func(l *load, v uint64) { l.gauges.ActiveConnectionsSSL += v }},
	{"cluster", "upstream_cx_active", false, func(l *load, v uint64) { l.upstreamActive += v }},
	// Timeouts and failures.
	{"cluster", "upstream_cx_connect_timeout", false, func(l *load, v uint64) { l.counts.ConnectTimeouts += v }},
	{"cluster", "upstream_cx_connect_fail", false, func(l *load, v uint64) { l.counts.FailedConnections += v }},
	{"cluster", "upstream_cx_destroy_remote_with_active_rq", false, func(l *load, v uint64) { l.counts.ConnectErrors += v }},
	{"cluster", "upstream_rq_timeout", false, func(l *load, v uint64) { l.counts.DataTimeouts += v }},
	{"tcp", "idle_timeout", false, func(l *load, v uint64) { l.counts.DataTimeouts += v }},
	{"tcp", "idle_timeout", true, func(l *load, v uint64) { l.counts.DataTimeoutsSSL += v }},
	{"http", "downstream_cx_idle_timeout", false, func(l *load, v uint64) { l.counts.KeepAliveTimeouts += v }},
	{"http", "downstream_cx_idle_timeout", true, func(l *load, v uint64) { l.counts.KeepAliveTimeoutsSSL += v }},
}

// MetricsFlushInterval is how often the bootstrap has Envoy send its
// stats: a minute, the history's step. An Envoy's flush carries every
// kept stat of every load balancer it serves (about seven each), so the
// sink's cost grows with proxies × load balancers / this interval
// (BenchmarkIntervalMetrics); the request counts and in-flight gauges
// come every --load-report-interval through LRS.
const MetricsFlushInterval = time.Minute

// SecureSuffix ends the stat prefix of a load balancer's secure listener
// (SSL termination): lb_<id>_tls.
const SecureSuffix = "_tls"

// StatsMatcher is the regular expression (RE2) of the stats the bootstrap
// lets Envoy keep and send: those of metricsMapping, nothing else (Envoy
// would otherwise send every stat of every listener and cluster each flush).
func StatsMatcher() string {
	scopes, stats := map[string]bool{}, map[string]bool{}
	var sc, st []string
	for _, m := range metricsMapping {
		if !scopes[m.scope] {
			scopes[m.scope] = true
			sc = append(sc, m.scope)
		}
		if !stats[m.stat] {
			stats[m.stat] = true
			st = append(st, m.stat)
		}
	}
	return `^(` + strings.Join(sc, "|") + `)\.lb_[1-9][0-9]*(` + SecureSuffix + `)?\.(` + strings.Join(st, "|") + `)$`
}

type metricsSink struct{ s *Service }

// StreamMetrics absorbs an Envoy's metrics until its stream ends. The
// first message names the node (its fleet); later ones may not.
func (m metricsSink) StreamMetrics(stream metricsv3.MetricsService_StreamMetricsServer) error {
	id, done := m.s.open(kindMetrics)
	defer done()
	var node *corev3.Node
	var loads []load // reused
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&metricsv3.StreamMetricsResponse{})
		}
		if err != nil {
			return err
		}
		if n := msg.GetIdentifier().GetNode(); n != nil {
			node = n
		}
		loads = metricsLoads(msg.GetEnvoyMetrics(), loads[:0])
		m.s.absorbMetrics(id, node, loads)
	}
}

// absorbMetrics absorbs an Envoy's flush, grouped by load balancer.
func (s *Service) absorbMetrics(stream uint64, node *corev3.Node, loads []load) {
	s.absorbLoads(kindMetrics, stream, node, len(loads), func(i int) string { return loads[i].name },
		func(i int, l *load) { *l = loads[i] })
}

// The scopes of metricsMapping, by index.
var scopes = []string{"http", "tcp", "udp", "cluster"}

func scopeIndex(scope string) int {
	for i, s := range scopes {
		if s == scope {
			return i
		}
	}
	return -1
}

// statIndex finds metricsMapping's entry of a stat: by stat name, then
// scope and whether it is the secure listener's (one string hash per stat).
var statIndex = func() map[string]*[4][2]func(*load, uint64) {
	m := map[string]*[4][2]func(*load, uint64){}
	for _, e := range metricsMapping {
		if m[e.stat] == nil {
			m[e.stat] = &[4][2]func(*load, uint64){}
		}
		secure := 0
		if e.secure {
			secure = 1
		}
		m[e.stat][scopeIndex(e.scope)][secure] = e.apply
	}
	return m
}()

// metricsLoads groups a message's stats by load balancer, into loads.
func metricsLoads(families []*promv1.MetricFamily, loads []load) []load {
	var at map[uint32]int // index in loads by load balancer
	last := -1
	for _, f := range families {
		scope, rest, ok := strings.Cut(f.GetName(), ".")
		if !ok {
			continue
		}
		sc := scopeIndex(scope)
		i := strings.LastIndexByte(rest, '.')
		if sc < 0 || i < 0 {
			continue
		}
		byScope := statIndex[rest[i+1:]]
		if byScope == nil {
			continue
		}
		base, secure := strings.CutSuffix(rest[:i], SecureSuffix)
		apply := byScope[sc][0]
		if secure {
			apply = byScope[sc][1]
		}
		if apply == nil {
			continue
		}
		id := lbNumber(base)
		j := last
		if j < 0 || loads[j].id != id || loads[j].name != base {
			if at == nil {
				at = make(map[uint32]int, len(families)/4)
			}
			if j, ok = at[id]; !ok || loads[j].name != base {
				j = len(loads)
				loads = append(loads, load{name: base, id: id})
				if id != 0 {
					at[id] = j
				}
			}
			last = j
		}
		if sc == 0 {
			loads[j].http = true
		}
		apply(&loads[j], value(f))
	}
	for i := range loads {
		if !loads[i].http {
			loads[i].gauges.ActiveConnections += loads[i].upstreamActive
		}
	}
	return loads
}

// lbNumber is the number of lb_<number>, 0 for any other name (grouped
// by name alone).
func lbNumber(name string) uint32 {
	digits, ok := strings.CutPrefix(name, "lb_")
	if !ok || len(digits) == 0 || len(digits) > 10 {
		return 0
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<32-1 {
		return 0
	}
	return uint32(n)
}

// value is a family's value: counters (as deltas) and gauges, summed over
// its metrics (one, with tags as names).
func value(f *promv1.MetricFamily) uint64 {
	var v float64
	for _, m := range f.GetMetric() {
		switch f.GetType() {
		case promv1.MetricType_COUNTER:
			v += m.GetCounter().GetValue()
		case promv1.MetricType_GAUGE:
			v += m.GetGauge().GetValue()
		}
	}
	if v < 0 {
		return 0
	}
	return uint64(v)
}
