package gateway_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// hmJSON GETs path and compares its JSON with want.
func hmJSON(t *testing.T, e *env, path, want string) {
	t.Helper()
	code, body := e.raw("GET", "/v1.0/"+e.account+path, e.token, "")
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil || code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("GET %s:\n got %s\nwant %s", path, body, want)
	}
}

// hmFault expects a fault with code whose message or validation messages
// name field, and checks that the store did not change.
func hmFault(t *testing.T, e *env, code int, method, path, body, field string) map[string]any {
	t.Helper()
	before := e.revision()
	out := e.mustCall(code, method, path, body)
	text := fmt.Sprint(out["message"]) + " " + strings.Join(validationMessages(out), " | ")
	if out["code"] != float64(code) || !strings.Contains(text, field) {
		t.Errorf("%s %s %s: fault %v does not name %q", method, path, body, out, field)
	}
	if e.revision() != before {
		t.Errorf("%s %s %s: a refused request changed the store", method, path, body)
	}
	return out
}

func hmLBStatus(t *testing.T, e *env, lb string) string {
	t.Helper()
	return e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)["status"].(string)
}

// The reference's examples: GET shows {} without a monitor, PUT answers
// 202 with no body and puts the load balancer PENDING_UPDATE, GET shows
// what was set, DELETE removes it; a busy load balancer refuses both.
func TestHealthMonitorEndpoints(t *testing.T) {
	e := newEnv(t, withManualActivation())
	// A node that passes every monitor below, so that the prober writes nothing.
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "200\nit works\n")
	}))
	defer healthy.Close()
	id := e.createLB(fmt.Sprintf(`{"loadBalancer":{"name":"hm","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"nodes":[{"address":"127.0.0.1","port":%d,"condition":"ENABLED"}]}}`, healthy.Listener.Addr().(*net.TCPAddr).Port))
	lb := "/loadbalancers/" + itoa(id)
	hmJSON(t, e, lb+"/healthmonitor", `{"healthMonitor":{}}`)

	hmFault(t, e, 422, "PUT", lb+"/healthmonitor", `{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}`, "immutable")
	e.activate()

	change := func(method, body string) {
		t.Helper()
		code, hdr, resp := e.rawHeaders(method, "/v1.0/"+e.account+lb+"/healthmonitor", e.token, body)
		if code != 202 || len(resp) != 0 || hdr.Get("Content-Type") != "" {
			t.Fatalf("%s %s: %d %q (content-type %q), want 202 with no body", method, body, code, resp, hdr.Get("Content-Type"))
		}
		if st := hmLBStatus(t, e, lb); st != "PENDING_UPDATE" {
			t.Errorf("%s: the load balancer is %s, want PENDING_UPDATE", method, st)
		}
	}

	connect := `{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}`
	change("PUT", connect)
	hmFault(t, e, 422, "PUT", lb+"/healthmonitor", connect, "immutable")
	hmFault(t, e, 422, "DELETE", lb+"/healthmonitor", "", "immutable")
	e.activate()
	hmJSON(t, e, lb+"/healthmonitor", connect)

	// The HTTP example replaces the CONNECT monitor, with the checkBody extension.
	change("PUT", `{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/",
		"statusRegex":"^[234][0-9][0-9]$","bodyRegex":"^[234][0-9][0-9]$","hostHeader":"mysite.com","checkBody":"it works"}}`)
	e.activate()
	httpHM := `{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/",
		"statusRegex":"^[234][0-9][0-9]$","bodyRegex":"^[234][0-9][0-9]$","hostHeader":"mysite.com","checkBody":"it works"}}`
	hmJSON(t, e, lb+"/healthmonitor", httpHM)
	details := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)
	var want map[string]any
	_ = json.Unmarshal([]byte(httpHM), &want)
	if !reflect.DeepEqual(details["healthMonitor"], want["healthMonitor"]) {
		t.Errorf("details show healthMonitor %v, want %v", details["healthMonitor"], want["healthMonitor"])
	}

	change("DELETE", "")
	e.activate()
	hmJSON(t, e, lb+"/healthmonitor", `{"healthMonitor":{}}`)
	if _, ok := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)["healthMonitor"]; ok {
		t.Error("the details still show a health monitor")
	}
	out := hmFault(t, e, 422, "DELETE", lb+"/healthmonitor", "", "no health monitor")
	if out["code"] != 422.0 {
		t.Errorf("DELETE without a monitor: %v", out)
	}

	for _, method := range []string{"GET", "PUT", "DELETE"} {
		body := ""
		if method == "PUT" {
			body = connect
		}
		hmFault(t, e, 404, method, "/loadbalancers/999999/healthmonitor", body, "not found")
	}
	hmFault(t, e, 404, "GET", "/loadbalancers/999999/nodes/events", "", "not found")
}

// Every bad attribute is a 400 naming it, and nothing is written.
func TestHealthMonitorValidation(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	lb := "/loadbalancers/" + itoa(id)
	e.waitStatus(id, "ACTIVE")
	long := strings.Repeat("x", 1025)
	for _, tc := range []struct{ body, field string }{
		{`{}`, "healthMonitor"},
		{`{"healthMonitor":{"delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.type"},
		{`{"healthMonitor":{"type":"PING","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.type"},
		{`{"healthMonitor":{"type":"CONNECT","timeout":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.delay"},
		{`{"healthMonitor":{"type":"CONNECT","delay":0,"timeout":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.delay"},
		{`{"healthMonitor":{"type":"CONNECT","delay":3601,"timeout":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.delay"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"attemptsBeforeDeactivation":3}}`, "healthMonitor.timeout"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":301,"attemptsBeforeDeactivation":3}}`, "healthMonitor.timeout"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10}}`, "healthMonitor.attemptsBeforeDeactivation"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":11}}`, "healthMonitor.attemptsBeforeDeactivation"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/"}}`, "healthMonitor.path: applies to HTTP and HTTPS monitors only"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"checkBody":"ok"}}`, "healthMonitor.checkBody: applies to HTTP and HTTPS monitors only"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"statusRegex":"^2"}}`, "healthMonitor.path: is required"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"health","statusRegex":"^2"}}`, "healthMonitor.path"},
		{`{"healthMonitor":{"type":"HTTPS","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/"}}`, "healthMonitor.statusRegex: is required"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"("}}`, "healthMonitor.statusRegex: is not a valid regular expression"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"^2","bodyRegex":"[z-a]"}}`, "healthMonitor.bodyRegex"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"^2","hostHeader":"bad host!"}}`, "healthMonitor.hostHeader"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"^2","checkBody":""}}`, "healthMonitor.checkBody: must not be empty"},
		{`{"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"^2","checkBody":"` + long + `"}}`, "healthMonitor.checkBody: must be at most 1024"},
		{`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"interval":5}}`, ""},
	} {
		hmFault(t, e, 400, "PUT", lb+"/healthmonitor", tc.body, tc.field)
	}
	// Several bad attributes are all named at once.
	out := hmFault(t, e, 400, "PUT", lb+"/healthmonitor", `{"healthMonitor":{"type":"HTTP","delay":0,"timeout":0,"attemptsBeforeDeactivation":0}}`, "healthMonitor.delay")
	msgs := strings.Join(validationMessages(out), " | ")
	for _, f := range []string{"healthMonitor.timeout", "healthMonitor.attemptsBeforeDeactivation", "healthMonitor.path", "healthMonitor.statusRegex"} {
		if !strings.Contains(msgs, f) {
			t.Errorf("messages %q do not name %s", msgs, f)
		}
	}
	hmJSON(t, e, lb+"/healthmonitor", `{"healthMonitor":{}}`)
	if st := hmLBStatus(t, e, lb); st != "ACTIVE" {
		t.Errorf("refused requests left the load balancer %s", st)
	}

	// UDP load balancers get no health monitor, through either endpoint.
	udp := e.createLB(`{"loadBalancer":{"name":"udp","port":5353,"protocol":"UDP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`)
	e.waitStatus(udp, "ACTIVE")
	hmFault(t, e, 400, "PUT", "/loadbalancers/"+itoa(udp)+"/healthmonitor",
		`{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}`, "not available for protocol UDP")
	hmFault(t, e, 400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"udp2","port":5354,"protocol":"UDP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}}`, "loadBalancer.healthMonitor")
	hmFault(t, e, 400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"c","port":81,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"checkBody":"x"}}}`, "loadBalancer.healthMonitor.checkBody")
}

// With the prober running: nodes that refuse connections go OFFLINE, each
// with an event in /nodes/events; a node that comes back goes ONLINE; the
// monitor's removal puts every node back ONLINE.
func TestHealthMonitorTakesFailedNodesOffline(t *testing.T) {
	e := newEnv(t)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go acceptAll(up)
	downB, downC := hmClosedPort(t), hmClosedPort(t)
	id := e.createLB(fmt.Sprintf(`{"loadBalancer":{"name":"hm","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"nodes":[{"address":"127.0.0.1","port":%d,"condition":"ENABLED"},{"address":"127.0.0.1","port":%d,"condition":"ENABLED"},
		{"address":"127.0.0.1","port":%d,"condition":"ENABLED"}]}}`, up.Addr().(*net.TCPAddr).Port, downB, downC))
	lb := "/loadbalancers/" + itoa(id)
	e.waitStatus(id, "ACTIVE")
	hmJSON(t, e, lb+"/nodes/events", `{"nodeServiceEvents":[],"links":[]}`)

	e.mustCall(202, "PUT", lb+"/healthmonitor", `{"healthMonitor":{"type":"CONNECT","delay":1,"timeout":1,"attemptsBeforeDeactivation":1}}`)
	e.waitStatus(id, "ACTIVE")
	statuses := func() (map[float64]string, map[string]any) {
		d := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)
		out := map[float64]string{}
		for _, n := range d["nodes"].([]any) {
			n := n.(map[string]any)
			out[n["port"].(float64)] = n["status"].(string)
		}
		return out, d
	}
	hmWait(t, "two nodes OFFLINE", func() bool {
		s, _ := statuses()
		return s[float64(downB)] == "OFFLINE" && s[float64(downC)] == "OFFLINE"
	})
	s, details := statuses()
	if s[float64(up.Addr().(*net.TCPAddr).Port)] != "ONLINE" {
		t.Errorf("the listening node is %v", s)
	}
	if ns := details["nodesStatus"]; !reflect.DeepEqual(ns, map[string]any{"up": 1.0, "down": 2.0}) {
		t.Errorf("nodesStatus %v, want up 1, down 2", ns)
	}
	if details["status"] != "ACTIVE" {
		t.Errorf("node health changed the load balancer's status to %v", details["status"])
	}
	nodeID := map[float64]int{}
	for _, n := range details["nodes"].([]any) {
		n := n.(map[string]any)
		nodeID[n["port"].(float64)] = int(n["id"].(float64))
	}
	node := e.mustCall(200, "GET", lb+"/nodes/"+itoa(nodeID[float64(downB)]), "")["node"].(map[string]any)
	if node["status"] != "OFFLINE" || node["condition"] != "ENABLED" {
		t.Errorf("node details %v", node)
	}

	// The feed, in the reference's shape, oldest first.
	feed := e.mustCall(200, "GET", lb+"/nodes/events", "")
	evs := feed["nodeServiceEvents"].([]any)
	if len(evs) != 2 || !reflect.DeepEqual(feed["links"], []any{}) {
		t.Fatalf("feed %v, want two events and no links", feed)
	}
	ev := evs[0].(map[string]any)
	var keys []string
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"accountId", "author", "callbackHost", "category", "created", "description", "detailedMessage", "id",
		"loadbalancerId", "nodeId", "relativeUri", "severity", "title", "type"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("event fields %v, want %v", keys, wantKeys)
	}
	n := int(ev["nodeId"].(float64))
	// The account is a number, as the reference shows it; the callback host
	// is the replica that ran the checks.
	hostname, _ := os.Hostname()
	if (n != nodeID[float64(downB)] && n != nodeID[float64(downC)]) || ev["loadbalancerId"] != float64(id) ||
		ev["accountId"] != float64(1234) || ev["callbackHost"] != hostname || ev["type"] != "UPDATE_NODE" || ev["category"] != "UPDATE" ||
		ev["severity"] != "INFO" || ev["title"] != "Node Status Updated" || ev["author"] != "lbaas" ||
		ev["description"] != fmt.Sprintf("Node '%d' status changed to 'OFFLINE' for load balancer '%d'", n, id) ||
		ev["relativeUri"] != fmt.Sprintf("/%s/loadbalancers/%d/nodes/%d/events", e.account, id, n) ||
		!strings.Contains(ev["detailedMessage"].(string), "connection refused") {
		t.Errorf("event %v", ev)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", ev["created"].(string)); err != nil {
		t.Errorf("created %v: %v", ev["created"], err)
	}
	first, second := ev["id"].(float64), evs[1].(map[string]any)["id"].(float64)
	if first >= second {
		t.Errorf("events not oldest first: %v then %v", first, second)
	}

	// Pagination: limit, marker (inclusive), offset.
	page := e.mustCall(200, "GET", lb+"/nodes/events?limit=1", "")
	links := page["links"].([]any)
	if got := page["nodeServiceEvents"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != first || len(links) != 1 {
		t.Fatalf("limit=1: %v", page)
	}
	next := links[0].(map[string]any)
	wantHref := fmt.Sprintf("/v1.0/%s/loadbalancers/%d/nodes/events?limit=1&marker=%d", e.account, id, int(second))
	if next["rel"] != "next" || next["href"] != wantHref {
		t.Errorf("next link %v, want %s", next, wantHref)
	}
	page = e.mustCall(200, "GET", strings.TrimPrefix(wantHref, "/v1.0/"+e.account), "")
	if got := page["nodeServiceEvents"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != second || len(page["links"].([]any)) != 0 {
		t.Errorf("marker page: %v", page)
	}
	page = e.mustCall(200, "GET", lb+"/nodes/events?offset=1", "")
	if got := page["nodeServiceEvents"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != second {
		t.Errorf("offset=1: %v", page)
	}
	hmFault(t, e, 400, "GET", lb+"/nodes/events?limit=0", "", "limit")
	hmFault(t, e, 400, "GET", lb+"/nodes/events?offset=-1", "", "offset")

	// Node B comes back: ONLINE again, with an event.
	back, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", downB))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	go acceptAll(back)
	hmWait(t, "node B ONLINE", func() bool { s, _ := statuses(); return s[float64(downB)] == "ONLINE" })
	evs = e.mustCall(200, "GET", lb+"/nodes/events", "")["nodeServiceEvents"].([]any)
	last := evs[len(evs)-1].(map[string]any)
	if last["nodeId"] != float64(nodeID[float64(downB)]) || !strings.Contains(last["description"].(string), "to 'ONLINE'") ||
		last["detailedMessage"] != "Node is working" {
		t.Errorf("last event %v", last)
	}

	// Deleting the monitor puts node C back ONLINE at once, and it stays so.
	e.mustCall(202, "DELETE", lb+"/healthmonitor", "")
	s, details = statuses()
	if s[float64(downC)] != "ONLINE" || !reflect.DeepEqual(details["nodesStatus"], map[string]any{"up": 3.0, "down": 0.0}) {
		t.Errorf("after DELETE: nodes %v, nodesStatus %v", s, details["nodesStatus"])
	}
	evs = e.mustCall(200, "GET", lb+"/nodes/events", "")["nodeServiceEvents"].([]any)
	last = evs[len(evs)-1].(map[string]any)
	if last["nodeId"] != float64(nodeID[float64(downC)]) || !strings.Contains(last["description"].(string), "to 'ONLINE'") {
		t.Errorf("last event after DELETE %v", last)
	}
	e.waitStatus(id, "ACTIVE")
	time.Sleep(1500 * time.Millisecond) // more than a delay: a leftover probe would have struck
	if s, _ := statuses(); s[float64(downC)] != "ONLINE" {
		t.Errorf("node C is %s after the monitor went", s[float64(downC)])
	}
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func hmClosedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// hmWait polls cond for 10 s at most.
func hmWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
