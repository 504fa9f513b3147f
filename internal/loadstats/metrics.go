package loadstats

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The collector's series. Per load balancer (label lb, its id) only for
// the first Options.MetricsLoadBalancers to report, so that the number of
// series stays bounded whatever the fleet holds.
var (
	reportsDesc = prometheus.NewDesc("lbaas_load_reports_total",
		"Per-load-balancer reports absorbed into the aggregates, by kind (lrs: a cluster's load report; metrics: a load balancer's share of an Envoy metrics message).", []string{"kind"}, nil)
	droppedDesc = prometheus.NewDesc("lbaas_load_reports_dropped_total",
		"Per-load-balancer reports dropped, by kind and reason (the cluster is no load balancer of the reporter's fleet; more load balancers than tracked).", []string{"kind", "reason"}, nil)
	reportersDesc = prometheus.NewDesc("lbaas_load_reporters",
		"Report streams open on this replica, by kind (lrs: proxies and proxyless clients; metrics: Envoy's metrics service sink).", []string{"kind"}, nil)
	trackedDesc = prometheus.NewDesc("lbaas_load_balancers_reported",
		"Load balancers with load reports in memory, and how many of them have series of their own (labelled).", []string{"labelled"}, nil)
	lbIssuedDesc = prometheus.NewDesc("lbaas_lb_requests_issued_total",
		"Requests a load balancer's clients and proxies sent to its nodes, from their load reports.", []string{"lb"}, nil)
	lbCompletedDesc = prometheus.NewDesc("lbaas_lb_requests_completed_total",
		"Requests completed, from the load reports, by result (succeeded, error).", []string{"lb", "result"}, nil)
	lbDroppedDesc = prometheus.NewDesc("lbaas_lb_requests_dropped_total",
		"Requests the reporters dropped (no healthy node, circuit breaking), from the load reports.", []string{"lb"}, nil)
	lbInProgressDesc = prometheus.NewDesc("lbaas_lb_requests_in_progress",
		"Requests in progress at the end of the live reporters' latest intervals.", []string{"lb"}, nil)
	lbConnectionsDesc = prometheus.NewDesc("lbaas_lb_connections",
		"Open connections at the end of the live reporters' latest intervals (reporters that count them).", []string{"lb"}, nil)
	lbBytesDesc = prometheus.NewDesc("lbaas_lb_bytes_total",
		"Bytes clients sent (direction in) and received (out), secure listener included, from Envoy's metrics.", []string{"lb", "direction"}, nil)
	lbFailedConnectionsDesc = prometheus.NewDesc("lbaas_lb_connection_failures_total",
		"Failed connection attempts, from the load reports (reporters that count them).", []string{"lb"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{reportsDesc, droppedDesc, reportersDesc, trackedDesc,
		lbIssuedDesc, lbCompletedDesc, lbDroppedDesc, lbInProgressDesc, lbConnectionsDesc, lbFailedConnectionsDesc, lbBytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	for k, kind := range kindNames {
		ch <- prometheus.MustNewConstMetric(reportsDesc, prometheus.CounterValue, float64(s.reports[k].Load()), kind)
		for i, reason := range dropReasons {
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped[k][i].Load()), kind, reason)
		}
		ch <- prometheus.MustNewConstMetric(reportersDesc, prometheus.GaugeValue, float64(s.live[k].Load()), kind)
	}

	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(len(s.lbs)-s.labelled), "false")
	ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(s.labelled), "true")
	for id, lb := range s.lbs {
		if !lb.labelled {
			continue
		}
		name := strconv.FormatUint(uint64(id), 10)
		g := s.gauges(lb, now)
		ch <- prometheus.MustNewConstMetric(lbIssuedDesc, prometheus.CounterValue, float64(lb.totals.Issued), name)
		ch <- prometheus.MustNewConstMetric(lbCompletedDesc, prometheus.CounterValue, float64(lb.totals.Succeeded), name, "succeeded")
		ch <- prometheus.MustNewConstMetric(lbCompletedDesc, prometheus.CounterValue, float64(lb.totals.Errors), name, "error")
		ch <- prometheus.MustNewConstMetric(lbDroppedDesc, prometheus.CounterValue, float64(lb.totals.Dropped), name)
		ch <- prometheus.MustNewConstMetric(lbFailedConnectionsDesc, prometheus.CounterValue, float64(lb.totals.FailedConnections), name)
		ch <- prometheus.MustNewConstMetric(lbInProgressDesc, prometheus.GaugeValue, float64(g.InProgress), name)
		ch <- prometheus.MustNewConstMetric(lbConnectionsDesc, prometheus.GaugeValue, float64(g.ActiveConnections+g.ActiveConnectionsSSL), name)
		ch <- prometheus.MustNewConstMetric(lbBytesDesc, prometheus.CounterValue, float64(lb.totals.BytesIn+lb.totals.BytesInSSL), name, "in")
		ch <- prometheus.MustNewConstMetric(lbBytesDesc, prometheus.CounterValue, float64(lb.totals.BytesOut+lb.totals.BytesOutSSL), name, "out")
	}
}
