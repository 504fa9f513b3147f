package loadstats

import (
	"errors"
	"io"
	"strings"

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
		m.s.absorbLoads(kindMetrics, id, node, metricsLoads(msg.GetEnvoyMetrics()))
	}
}

// metricsLoads groups a message's stats by load balancer.
func metricsLoads(families []*promv1.MetricFamily) []load {
	var loads []load
	at := map[string]int{} // index in loads by name
	for _, f := range families {
		scope, rest, ok := strings.Cut(f.GetName(), ".")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		if i < 0 {
			continue
		}
		name, stat := rest[:i], rest[i+1:]
		base, secure := strings.CutSuffix(name, SecureSuffix)
		for _, m := range metricsMapping {
			if m.scope != scope || m.stat != stat || m.secure != secure {
				continue
			}
			j, ok := at[base]
			if !ok {
				j = len(loads)
				at[base] = j
				loads = append(loads, load{name: base})
			}
			if scope == "http" {
				loads[j].http = true
			}
			m.apply(&loads[j], value(f))
			break
		}
	}
	for i := range loads {
		if !loads[i].http {
			loads[i].gauges.ActiveConnections += loads[i].upstreamActive
		}
	}
	return loads
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
