package console

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HistoryPoint is one step of GET .../stats/history: what happened in the
// step that starts at Time (counts), and the connections open then (gauge).
type HistoryPoint struct {
	Time             time.Time `json:"time"`
	Requests         int64     `json:"requests"`
	RequestErrors    int64     `json:"requestErrors"`
	CurrentConn      int64     `json:"currentConn"`
	IncomingTransfer int64     `json:"incomingTransfer"`
	OutgoingTransfer int64     `json:"outgoingTransfer"`
}

// History is the body of GET /v1.0/{account}/loadbalancers/{id}/stats/history
// ?window=hour|day: points oldest first, zero-filled, Step seconds apart.
type History struct {
	Window string         `json:"window"`
	Step   int            `json:"step"`
	Points []HistoryPoint `json:"points"`
}

// ParseHistory reads the history endpoint's answer ({"history": {...}}).
func ParseHistory(raw []byte) (History, error) {
	var body struct {
		History *History `json:"history"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return History{}, err
	}
	if body.History == nil {
		return History{}, fmt.Errorf("no history object")
	}
	return *body.History, nil
}

// windows are the plots' time spans.
var windows = map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}

// chart is one plot, ready for the template: each series' polyline in
// the SVG's coordinates, the axis labels, and a text summary (the
// plot's accessible description and what tests read).
type chart struct {
	ID, Title, Unit string
	Series          []line
	YMax            string // label of the top of the y axis
	From, To        string // labels of the x axis (UTC)
	Summary         string
	Empty           string // why there is nothing to draw, when so
}

type line struct {
	Name   string
	Class  string // CSS class: its colour and dash
	Points string // "x,y x,y ..." in the plot's viewBox
	Total  int64  // sum (counts) or latest value (gauges)
	Peak   int64
}

// The plot area inside the SVG's viewBox (see the chart template).
const (
	plotLeft, plotTop      = 64.0, 10.0
	plotWidth, plotHeight  = 560.0, 120.0
	viewWidth, viewHeight  = 640, 160
	seriesRequests         = "requests"
	seriesErrors           = "errors"
	seriesConnections      = "connections"
	seriesIncoming         = "in"
	seriesOutgoing         = "out"
	kindCount, kindGauge   = false, true
	historySource, sampled = "history", "sampled"
)

// sample is a value of each series at a time: counts over the step that
// starts (history) or ends (samples of /stats) there, gauges at that time.
type sample struct {
	t      time.Time
	values map[string]int64
}

// plotSet is the four plots of a load balancer over a window.
type plotSet struct {
	Window  string
	Source  string // historySource or sampled
	Note    string
	Charts  []chart
	Windows []string
}

// plotsFromHistory draws the history endpoint's points.
func plotsFromHistory(h History, now time.Time) plotSet {
	span, ok := windows[h.Window]
	if !ok {
		span = time.Hour
	}
	samples := make([]sample, 0, len(h.Points))
	for _, p := range h.Points {
		samples = append(samples, sample{t: p.Time, values: map[string]int64{
			seriesRequests: p.Requests, seriesErrors: p.RequestErrors, seriesConnections: p.CurrentConn,
			seriesIncoming: p.IncomingTransfer, seriesOutgoing: p.OutgoingTransfer,
		}})
	}
	end := now
	if n := len(h.Points); n > 0 {
		end = h.Points[n-1].Time.Add(time.Duration(h.Step) * time.Second)
	}
	per := fmt.Sprintf("per %s", stepName(h.Step))
	ps := plotSet{Window: h.Window, Source: historySource,
		Note: fmt.Sprintf("From the statistics history: %d points, one every %s.", len(h.Points), stepName(h.Step))}
	ps.Charts = charts(samples, end.Add(-span), end, per, true)
	return ps
}

func stepName(step int) string {
	switch {
	case step <= 0:
		return "step"
	case step%3600 == 0:
		return fmt.Sprintf("%d h", step/3600)
	case step%60 == 0:
		return fmt.Sprintf("%d min", step/60)
	default:
		return fmt.Sprintf("%d s", step)
	}
}

// charts builds the four plots from samples between from and to.
func charts(samples []sample, from, to time.Time, per string, bytes bool) []chart {
	out := []chart{
		build("requests", "Requests and errors", per, samples, from, to,
			[]seriesDef{{seriesRequests, "Requests", "s-requests", kindCount}, {seriesErrors, "Errors", "s-errors", kindCount}}),
		build("connections", "Open connections", "at each point", samples, from, to,
			[]seriesDef{{seriesConnections, "Connections", "s-connections", kindGauge}}),
	}
	bytesChart := build("bytes", "Bytes in and out", per, samples, from, to,
		[]seriesDef{{seriesIncoming, "In", "s-in", kindCount}, {seriesOutgoing, "Out", "s-out", kindCount}})
	if !bytes {
		bytesChart.Series = nil
		bytesChart.Summary = "No byte counts: GET /stats has none (the statistics history has)."
		bytesChart.Empty = bytesChart.Summary
	}
	return append(out, bytesChart)
}

type seriesDef struct {
	key, name, class string
	gauge            bool
}

func build(id, title, unit string, samples []sample, from, to time.Time, defs []seriesDef) chart {
	c := chart{ID: id, Title: title, Unit: unit, From: from.UTC().Format("15:04"), To: to.UTC().Format("15:04 MST")}
	if to.Sub(from) > 2*time.Hour {
		c.From = from.UTC().Format("Jan 2 15:04")
		c.To = to.UTC().Format("Jan 2 15:04 MST")
	}
	var inWindow []sample
	for _, s := range samples {
		if !s.t.Before(from) && !s.t.After(to) {
			inWindow = append(inWindow, s)
		}
	}
	var peak int64
	for _, d := range defs {
		for _, s := range inWindow {
			peak = max(peak, s.values[d.key])
		}
	}
	top := niceCeil(peak)
	c.YMax = humanCount(top)
	span := to.Sub(from).Seconds()
	var parts []string
	for _, d := range defs {
		l := line{Name: d.name, Class: d.class}
		var pts []string
		for _, s := range inWindow {
			v := s.values[d.key]
			if d.gauge {
				l.Total = v
			} else {
				l.Total += v
			}
			l.Peak = max(l.Peak, v)
			x := plotLeft + plotWidth*s.t.Sub(from).Seconds()/span
			y := plotTop + plotHeight*(1-float64(v)/float64(top))
			pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
		}
		l.Points = strings.Join(pts, " ")
		c.Series = append(c.Series, l)
		if d.gauge {
			parts = append(parts, fmt.Sprintf("%s: %d now, peak %d", d.name, l.Total, l.Peak))
		} else {
			parts = append(parts, fmt.Sprintf("%s: %d in all, peak %d %s", d.name, l.Total, l.Peak, unit))
		}
	}
	if len(inWindow) == 0 {
		c.Empty = "No data in this window yet."
	}
	c.Summary = strings.Join(parts, "; ") + "."
	return c
}

// niceCeil is the y axis' top: 1, 2 or 5 times a power of ten, at least v.
func niceCeil(v int64) int64 {
	if v <= 1 {
		return 1
	}
	p := int64(math.Pow(10, math.Floor(math.Log10(float64(v)))))
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func humanCount(v int64) string {
	switch {
	case v >= 1_000_000_000:
		return strconv.FormatFloat(float64(v)/1e9, 'f', -1, 64) + "G"
	case v >= 1_000_000:
		return strconv.FormatFloat(float64(v)/1e6, 'f', -1, 64) + "M"
	case v >= 10_000:
		return strconv.FormatFloat(float64(v)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatInt(v, 10)
}

// statsCounters is what the fallback reads of GET .../stats.
type statsCounters struct {
	Requests      int64 `json:"requests"`
	RequestErrors int64 `json:"requestErrors"`
	CurrentConn   int64 `json:"currentConn"`
}

// sampler keeps, per load balancer, the /stats readings the console took
// while someone watched it: the fallback of the plots where the history
// endpoint is not served (it answers 404). Memory is bounded: at most
// maxSampled load balancers (the least recently sampled is dropped) and a
// day of samples each, at most one per minSampleGap.
type sampler struct {
	mu   sync.Mutex
	byLB map[string]*sampleRing
}

type statsSample struct {
	t time.Time
	s statsCounters
}

type sampleRing struct {
	samples []statsSample
	last    time.Time
}

const (
	maxSampled   = 256
	maxSamples   = 1440
	minSampleGap = time.Second
)

func newSampler() *sampler { return &sampler{byLB: map[string]*sampleRing{}} }

// add records a reading of the load balancer key (account/id) and
// returns its samples of the last span.
func (sm *sampler) add(key string, now time.Time, s statsCounters, span time.Duration) []statsSample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	r := sm.byLB[key]
	if r == nil {
		if len(sm.byLB) >= maxSampled {
			var oldest string
			for k, v := range sm.byLB {
				if oldest == "" || v.last.Before(sm.byLB[oldest].last) {
					oldest = k
				}
			}
			delete(sm.byLB, oldest)
		}
		r = &sampleRing{}
		sm.byLB[key] = r
	}
	if n := len(r.samples); n == 0 || now.Sub(r.samples[n-1].t) >= minSampleGap {
		r.samples = append(r.samples, statsSample{t: now, s: s})
		if len(r.samples) > maxSamples {
			r.samples = append(r.samples[:0:0], r.samples[len(r.samples)-maxSamples:]...)
		}
	}
	r.last = now
	var out []statsSample
	for _, x := range r.samples {
		if now.Sub(x.t) <= span {
			out = append(out, x)
		}
	}
	return out
}

// plotsFromSamples draws readings of /stats: counts are the increase
// between two readings (a counter that went down, after lbaasd restarted,
// counts from zero), connections the reading itself.
func plotsFromSamples(window string, readings []statsSample, now time.Time) plotSet {
	span, ok := windows[window]
	if !ok {
		window, span = "hour", time.Hour
	}
	// The first reading is the baseline: nothing counted before it shows.
	var samples []sample
	for i, r := range readings {
		values := map[string]int64{seriesRequests: 0, seriesErrors: 0, seriesConnections: r.s.CurrentConn}
		if i > 0 {
			prev := readings[i-1].s
			values[seriesRequests] = increase(prev.Requests, r.s.Requests)
			values[seriesErrors] = increase(prev.RequestErrors, r.s.RequestErrors)
		}
		samples = append(samples, sample{t: r.t, values: values})
	}
	// The plots span what was read (at least a minute), up to the window.
	from := now.Add(-span)
	if len(readings) > 0 && readings[0].t.After(from) {
		from = readings[0].t
		if now.Sub(from) < time.Minute {
			from = now.Add(-time.Minute)
		}
	}
	note := "The statistics history is not served here: these plots are GET /stats read at each refresh while the console shows this load balancer"
	if len(readings) > 0 {
		note += fmt.Sprintf(" (%d readings since %s UTC)", len(readings), readings[0].t.UTC().Format("15:04:05"))
	}
	return plotSet{Window: window, Source: sampled, Note: note + ".",
		Charts: charts(samples, from, now, "between readings", false)}
}

func increase(prev, cur int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}
