package gateway_test

import (
	"context"
	"encoding/xml"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// The usage API over the rows two replicas wrote: records per hour and
// event, the sums of both replicas, deleted load balancers included, the
// history zero-filled, and the faults of bad windows naming the parameter.
func TestUsageAPI(t *testing.T) {
	// A clock three hours ahead of the real one, 10 minutes into an hour.
	hour := time.Now().UTC().Truncate(time.Hour).Add(3 * time.Hour)
	clk := &testClock{now: hour.Add(-50 * time.Minute)}
	e := newEnv(t, withManualActivation(), func(c *server.Config) { c.Now = clk.Now })
	created := clk.Now()
	id := e.createLB(simpleLB)
	other := e.createLB(strings.Replace(simpleLB, `"web"`, `"other"`, 1))
	e.activate()
	clk.Set(created.Add(time.Minute))
	base := "/loadbalancers/" + itoa(id)

	// Nothing reported yet: records with zeros, a zero history.
	cur := e.mustCall(200, "GET", base+"/usage/current", "")
	recs := cur["loadBalancerUsageRecords"].([]any)
	if len(recs) != 1 {
		t.Fatalf("current usage %v, want the creation's record", cur)
	}
	r := recs[0].(map[string]any)
	if r["eventType"] != "CREATE_LOADBALANCER" || r["incomingTransfer"] != 0.0 || r["averageNumConnections"] != 0.0 ||
		r["numVips"] != 1.0 || r["vipType"] != "PUBLIC" || r["sslMode"] != "OFF" || r["startTime"] != created.Format(time.RFC3339) {
		t.Errorf("creation record %v", r)
	}
	h := e.mustCall(200, "GET", base+"/stats/history", "")["history"].(map[string]any)
	points := h["points"].([]any)
	if h["window"] != "hour" || h["step"] != 60.0 || len(points) != 60 {
		t.Fatalf("history %v", h)
	}
	for _, p := range points {
		p := p.(map[string]any)
		for _, f := range []string{"requests", "requestErrors", "currentConn", "incomingTransfer", "outgoingTransfer"} {
			if p[f] != 0.0 {
				t.Fatalf("point %v: %s is not 0", p, f)
			}
		}
	}
	if last := points[59].(map[string]any)["time"]; last != clk.Now().Truncate(time.Minute).Format(time.RFC3339) {
		t.Errorf("the last point is %v, want the current minute", last)
	}
	if day := e.mustCall(200, "GET", base+"/stats/history?window=day", "")["history"].(map[string]any); day["step"] != 300.0 || len(day["points"].([]any)) != 288 {
		t.Errorf("day history: step %v, %d points", day["step"], len(day["points"].([]any)))
	}

	// Two replicas' rows: the first hour's bytes from both, the next
	// hour's from one; the other load balancer's never mix in.
	ctx := context.Background()
	minute := func(d time.Duration) time.Time { return hour.Add(d) }
	add := func(replica string, ds ...store.UsageDelta) {
		if err := e.srv.Store.AddUsage(ctx, replica, ds); err != nil {
			t.Fatal(err)
		}
	}
	add("r1", store.UsageDelta{LoadBalancerID: uint32(id), Minute: minute(-40 * time.Minute), Requests: 10, RequestErrors: 1, BytesIn: 700, BytesOut: 80,
		Polled: true, Connections: 3})
	add("r2", store.UsageDelta{LoadBalancerID: uint32(id), Minute: minute(-40 * time.Minute), Requests: 5, BytesIn: 10, BytesOut: 9, Polled: true, Connections: 1},
		store.UsageDelta{LoadBalancerID: uint32(other), Minute: minute(-40 * time.Minute), Requests: 1000, BytesIn: 1000})
	clk.Set(hour.Add(5 * time.Minute))
	add("r2", store.UsageDelta{LoadBalancerID: uint32(id), Minute: minute(2 * time.Minute), Requests: 2, BytesIn: 5, BytesOut: 6})

	cur = e.mustCall(200, "GET", base+"/usage/current", "")
	recs = cur["loadBalancerUsageRecords"].([]any)
	if len(recs) != 2 {
		t.Fatalf("current usage %v, want the creation's hour and the next", cur)
	}
	first, next := recs[0].(map[string]any), recs[1].(map[string]any)
	if first["incomingTransfer"] != 710.0 || first["outgoingTransfer"] != 89.0 || first["endTime"] != hour.Format(time.RFC3339) ||
		first["numPolls"] != 1.0 || first["averageNumConnections"] != 4.0/60 {
		t.Errorf("first hour %v: want 710 bytes in, 89 out, to %v, 4 connections in one minute of 60", first, hour)
	}
	if next["incomingTransfer"] != 5.0 || next["eventType"] != nil || next["startTime"] != hour.Format(time.RFC3339) ||
		next["endTime"] != clk.Now().Format(time.RFC3339) {
		t.Errorf("next hour %v", next)
	}
	h = e.mustCall(200, "GET", base+"/stats/history", "")["history"].(map[string]any)
	byTime := map[string]map[string]any{}
	for _, p := range h["points"].([]any) {
		byTime[p.(map[string]any)["time"].(string)] = p.(map[string]any)
	}
	if p := byTime[minute(-40*time.Minute).Format(time.RFC3339)]; p["requests"] != 15.0 || p["requestErrors"] != 1.0 ||
		p["currentConn"] != 4.0 || p["incomingTransfer"] != 710.0 || p["outgoingTransfer"] != 89.0 {
		t.Errorf("history point %v", p)
	}

	// Deleted: its usage stays readable and billable, ending with the
	// deletion.
	e.mustCall(202, "DELETE", base, "")
	e.activate()
	clk.Set(hour.Add(10 * time.Minute))
	recs = e.mustCall(200, "GET", base+"/usage", "")["loadBalancerUsageRecords"].([]any)
	if last := recs[len(recs)-1].(map[string]any); last["eventType"] != "DELETE_LOADBALANCER" || last["startTime"] != hour.Add(5*time.Minute).Format(time.RFC3339) {
		t.Errorf("usage after deletion ends %v", last)
	}
	window := "?startTime=" + hour.Add(-2*time.Hour).Format(time.RFC3339) + "&endTime=" + hour.Add(time.Hour).Format(time.RFC3339)
	billable := e.mustCall(200, "GET", "/loadbalancers/billable"+window, "")["loadBalancers"].([]any)
	if len(billable) != 2 || billable[0].(map[string]any)["id"] != float64(id) || billable[0].(map[string]any)["status"] != "DELETED" {
		t.Errorf("billable %v, want both load balancers, the deleted one first", billable)
	}
	if page := e.mustCall(200, "GET", "/loadbalancers/billable"+window+"&offset=1&limit=1", "")["loadBalancers"].([]any); len(page) != 1 ||
		page[0].(map[string]any)["id"] != float64(other) {
		t.Errorf("billable page 2 %v", page)
	}
	// Deleted before the window: not billable.
	if later := e.mustCall(200, "GET", "/loadbalancers/billable?startTime="+hour.Add(6*time.Minute).Format(time.RFC3339)+
		"&endTime="+hour.Add(time.Hour).Format(time.RFC3339), "")["loadBalancers"].([]any); len(later) != 1 {
		t.Errorf("billable after the deletion %v, want the other one only", later)
	}
	acct := e.mustCall(200, "GET", "/loadbalancers/usage", "")
	accRecs := acct["accountUsage"].(map[string]any)["accountUsageRecords"].([]any)
	if lastRec := accRecs[len(accRecs)-1].(map[string]any); lastRec["numLoadBalancers"] != 1.0 || lastRec["numPublicVips"] != 1.0 {
		t.Errorf("account usage ends with %v, want one load balancer left", lastRec)
	}
	if lbs := acct["loadBalancerUsages"].([]any); len(lbs) != 2 || acct["accountId"] != 1234.0 {
		t.Errorf("account usage %v", acct)
	}

	// XML in the reference's shapes.
	var lbXML struct {
		XMLName xml.Name
		Records []struct {
			EventType        string `xml:"eventType,attr"`
			IncomingTransfer string `xml:"incomingTransfer,attr"`
		} `xml:"loadBalancerUsageRecord"`
	}
	_, _, body := e.request("GET", "/v1.0/"+e.account+base+"/usage", nil, "Accept", "application/xml")
	if err := xml.Unmarshal(body, &lbXML); err != nil || lbXML.XMLName.Local != "loadBalancerUsage" || len(lbXML.Records) != len(recs) ||
		lbXML.Records[0].EventType != "CREATE_LOADBALANCER" || lbXML.Records[0].IncomingTransfer != "710" {
		t.Errorf("usage as XML: %v %s", err, body)
	}
	var acctXML struct {
		XMLName      xml.Name
		AccountID    string `xml:"accountId,attr"`
		AccountUsage struct {
			Records []struct {
				NumLoadBalancers string `xml:"numLoadBalancers,attr"`
			} `xml:"accountUsageRecord"`
		} `xml:"accountUsage"`
		LoadBalancers []struct {
			ID      string `xml:"loadBalancerId,attr"`
			Records []struct {
				ID string `xml:"id,attr"`
			} `xml:"loadBalancerUsageRecord"`
		} `xml:"loadBalancerUsage"`
	}
	_, _, body = e.request("GET", "/v1.0/"+e.account+"/loadbalancers/usage", nil, "Accept", "application/xml")
	if err := xml.Unmarshal(body, &acctXML); err != nil || acctXML.XMLName.Local != "accountBilling" || acctXML.AccountID != "1234" ||
		len(acctXML.AccountUsage.Records) != len(accRecs) || len(acctXML.LoadBalancers) != 2 || len(acctXML.LoadBalancers[0].Records) == 0 {
		t.Errorf("account usage as XML: %v %s", err, body)
	}

	// Bad input: 400 naming the parameter, for every form of window.
	for _, c := range []struct{ path, field string }{
		{base + "/usage?startTime=yesterday", "startTime"},
		{base + "/usage?endTime=2026-13-01", "endTime"},
		{base + "/usage?startTime=2026-11-30&endTime=2026-11-29", "endTime"},
		{base + "/usage?startTime=2026-01-01&endTime=2026-11-29", "startTime"},
		{"/loadbalancers/usage?startTime=2026-11-30T25:00:00Z", "startTime"},
		{"/loadbalancers/billable", "startTime"},
		{"/loadbalancers/billable?startTime=2026-11-30", "endTime"},
		{"/loadbalancers/billable" + window + "&limit=1001", "limit"},
		{"/loadbalancers/billable" + window + "&offset=-1", "offset"},
		{base + "/stats/history?window=week", "window"},
	} {
		code, out := e.call("GET", c.path, "")
		msgs := strings.Join(validationMessages(out), " ") + " " + str(out["message"])
		if code != 400 || !strings.Contains(msgs, c.field) {
			t.Errorf("GET %s: %d %v, want a 400 naming %s", c.path, code, out, c.field)
		}
	}
	e.mustCall(404, "GET", "/loadbalancers/99999/usage", "")
	e.mustCall(404, "GET", "/loadbalancers/99999/stats/history", "")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
