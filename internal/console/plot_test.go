package console

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The history endpoint's answer, exactly as GET .../stats/history?window=hour
// gives it (oldest first, zero-filled), drawn as four plots.
func TestPlotsFromHistory(t *testing.T) {
	raw := []byte(`{"history":{"window":"hour","step":60,"points":[
		{"time":"2026-11-30T22:02:00Z","requests":0,"requestErrors":0,"currentConn":0,"incomingTransfer":0,"outgoingTransfer":0},
		{"time":"2026-11-30T22:30:00Z","requests":40,"requestErrors":3,"currentConn":7,"incomingTransfer":1000,"outgoingTransfer":52000},
		{"time":"2026-11-30T23:01:00Z","requests":12,"requestErrors":0,"currentConn":2,"incomingTransfer":300,"outgoingTransfer":9000}]}}`)
	h, err := ParseHistory(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.Window != "hour" || h.Step != 60 || len(h.Points) != 3 || h.Points[1].OutgoingTransfer != 52000 {
		t.Fatalf("parsed %+v", h)
	}
	ps := plotsFromHistory(h, time.Date(2026, 11, 30, 23, 1, 30, 0, time.UTC))
	if ps.Source != historySource || len(ps.Charts) != 3 {
		t.Fatalf("plots %+v", ps)
	}
	byID := map[string]chart{}
	for _, c := range ps.Charts {
		byID[c.ID] = c
	}
	req := byID["requests"]
	if req.Series[0].Total != 52 || req.Series[0].Peak != 40 || req.Series[1].Total != 3 {
		t.Errorf("requests and errors: %+v", req.Series)
	}
	if req.YMax != "50" || req.Unit != "per 1 min" {
		t.Errorf("y axis %q, unit %q", req.YMax, req.Unit)
	}
	// The window ends one step after the last point: 22:02 is its start.
	pts := strings.Fields(req.Series[0].Points)
	if len(pts) != 3 || pts[0] != fmt.Sprintf("%.1f,%.1f", plotLeft, plotTop+plotHeight) {
		t.Errorf("requests polyline %q", req.Series[0].Points)
	}
	// The peak (40 of a 50 axis) is 4/5 up.
	if want := fmt.Sprintf(",%.1f", plotTop+plotHeight*0.2); !strings.HasSuffix(pts[1], want) {
		t.Errorf("peak at %s, want y%s", pts[1], want)
	}
	if c := byID["connections"].Series[0]; c.Total != 2 || c.Peak != 7 {
		t.Errorf("connections (a gauge: latest and peak): %+v", c)
	}
	if b := byID["bytes"]; b.Series[0].Total != 1300 || b.Series[1].Total != 61000 || b.YMax != "100k" {
		t.Errorf("bytes: %+v, axis %s", b.Series, b.YMax)
	}
	if !strings.Contains(req.Summary, "Requests: 52 in all, peak 40 per 1 min") {
		t.Errorf("summary %q", req.Summary)
	}

	day, err := ParseHistory([]byte(`{"history":{"window":"day","step":900,"points":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	dp := plotsFromHistory(day, time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	if dp.Charts[0].Empty == "" || dp.Charts[0].From != "Nov 29 23:00" || dp.Charts[0].Unit != "per 15 min" {
		t.Errorf("an empty day: %+v", dp.Charts[0])
	}
	if _, err := ParseHistory([]byte(`{"stats":{}}`)); err == nil {
		t.Error("an answer without history was taken")
	}
}

// Where the history is not served, readings of /stats become the plots:
// the increase of each counter between readings (from zero after a
// restart), connections as read.
func TestPlotsFromSamples(t *testing.T) {
	sm := newSampler()
	t0 := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	read := func(d time.Duration, req, errs, conn int64) []statsSample {
		return sm.add("777/5", t0.Add(d), statsCounters{Requests: req, RequestErrors: errs, CurrentConn: conn}, time.Hour)
	}
	read(0, 100, 1, 0)
	read(500*time.Millisecond, 999, 9, 9) // within minSampleGap: not kept
	read(3*time.Second, 120, 4, 3)
	got := read(6*time.Second, 5, 0, 1) // lbaasd restarted
	if len(got) != 3 {
		t.Fatalf("%d readings kept, want 3", len(got))
	}
	ps := plotsFromSamples("hour", got, t0.Add(6*time.Second))
	req := ps.Charts[0]
	if ps.Source != sampled || req.Series[0].Total != 25 || req.Series[1].Total != 3 || req.Series[0].Peak != 20 {
		t.Errorf("requests %+v", req.Series)
	}
	// The baseline reading is drawn at zero; the plot spans the readings
	// (at least a minute), so a few seconds of them are not lost at the
	// edge of an hour.
	pts := strings.Fields(req.Series[0].Points)
	if len(pts) != 3 || !strings.HasPrefix(pts[2], fmt.Sprintf("%.1f,", plotLeft+plotWidth)) ||
		!strings.HasPrefix(pts[0], fmt.Sprintf("%.1f,", plotLeft+plotWidth*54/60)) {
		t.Errorf("requests polyline %q", req.Series[0].Points)
	}
	if c := ps.Charts[1].Series[0]; c.Total != 1 || c.Peak != 3 {
		t.Errorf("connections %+v", c)
	}
	if ps.Charts[2].Series != nil || ps.Charts[2].Empty == "" {
		t.Errorf("bytes from /stats, which has none: %+v", ps.Charts[2])
	}
	// Readings older than the window drop out of it.
	if later := read(2*time.Hour, 5, 0, 0); len(later) != 1 {
		t.Errorf("%d readings in the last hour, want 1", len(later))
	}
	// Other tenants' load balancers never mix, and the sampler is bounded.
	for i := range maxSampled + 10 {
		sm.add(fmt.Sprintf("other/%d", i), t0.Add(3*time.Hour+time.Duration(i)*time.Second), statsCounters{}, time.Hour)
	}
	if len(sm.byLB) != maxSampled {
		t.Errorf("%d load balancers sampled, want at most %d", len(sm.byLB), maxSampled)
	}
	if _, ok := sm.byLB["777/5"]; ok {
		t.Error("the least recently sampled load balancer was kept")
	}
}

func TestFieldOf(t *testing.T) {
	for msg, want := range map[string]string{
		"loadBalancer.port: must be a port number from 1 to 65535 (got 70000)":                  "port",
		"loadBalancer.nodes[0].address: \"nope nope\" is not a valid IP address or domain name": "node.address",
		"nodes[0].port: must be a port number from 1 to 65535 (got 0)":                          "node.port",
		"node.condition: must be ENABLED, DISABLED or DRAINING (got \"BAD\")":                   "node.condition",
		"loadBalancer.virtualIps[0].type: must be PUBLIC or SERVICENET (got \"X\")":             "vip.type",
		"healthMonitor.delay: must be from 1 to 3600 (got 0)":                                   "delay",
		"proto: (line 1:41): invalid value for uint32 field maxConnections: \"abc\"":            "maxConnections",
		"The load balancer is busy: try again":                                                  "",
		"accessList[0].address: \"10.0.0.0/33\" is not an IP address or CIDR network":           "address",
		"metadata[0].key: is required":                                                          "key",
		"errorpage.content: is required (the HTML of the page)":                                 "content",
		"sslTermination.securePort: must differ from the load balancer's port 80":               "securePort",
		"certificateMapping.hostName: \"bad host\" is not a host name":                          "hostName",
		"certificateMapping: hostName, certificate and privateKey are required":                 "certificateMapping",
	} {
		if got := fieldOf(msg); got != want {
			t.Errorf("fieldOf(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[int64]int64{0: 1, 1: 1, 2: 2, 3: 5, 7: 10, 40: 50, 52000: 100000, 100: 100, 101: 200} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", v, got, want)
		}
	}
}
