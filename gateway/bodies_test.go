package gateway_test

import (
	"strings"
	"testing"
)

// Bodies as clients send them: the root wrapper is optional wherever the
// two forms cannot be confused, and the reference's string forms of
// numbers and booleans are accepted; the answers carry the documented
// types. Everything else stays strict.
func TestBodiesWithOrWithoutWrapper(t *testing.T) {
	e := newEnv(t, withManualActivation())
	// Unwrapped create, with the reference's string forms.
	out := e.mustCall(202, "POST", "/loadbalancers", `{"name":"bare","port":"8080","protocol":"TCP",
		"halfClosed":"true","virtualIps":[{"type":"PUBLIC"}],
		"nodes":[{"address":"10.1.1.1","port":"80","condition":"ENABLED","weight":"2"}],
		"connectionLogging":{"enabled":"true"}}`)
	lb := out["loadBalancer"].(map[string]any)
	id := int(lb["id"].(float64))
	if lb["port"] != float64(8080) || lb["halfClosed"] != true {
		t.Fatalf("port and halfClosed answer in their documented types: %v", lb)
	}
	node := lb["nodes"].([]any)[0].(map[string]any)
	if node["port"] != float64(80) || node["weight"] != float64(2) {
		t.Fatalf("node port and weight answer as numbers: %v", node)
	}
	if lb["connectionLogging"].(map[string]any)["enabled"] != true {
		t.Fatalf("connectionLogging.enabled from \"true\": %v", lb["connectionLogging"])
	}
	if e.mustCall(202, "POST", "/loadbalancers", `{"name":"h","protocol":"HTTP","port":"80","virtualIps":[{"id":"`+
		itoa(int(lb["virtualIps"].([]any)[0].(map[string]any)["id"].(float64)))+`"}]}`)["loadBalancer"].(map[string]any)["port"] != float64(80) {
		t.Fatal("port answers as a number")
	}
	e.activate()
	id = e.createLB(`{"name":"web","protocol":"HTTP","port":"80","virtualIps":[{"type":"PUBLIC"}]}`)
	e.activate()
	path := "/loadbalancers/" + itoa(id)
	for _, c := range []struct{ method, path, wrapped, bare string }{
		{"PUT", path, `{"loadBalancer":{"name":"w","checkPassive":true}}`, `{"name":"b","checkPassive":"false"}`},
		{"PUT", path + "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SOURCE_IP"}}`, `{"persistenceType":"HTTP_COOKIE"}`},
		{"PUT", path + "/healthmonitor", `{"healthMonitor":{"type":"CONNECT","delay":10,"timeout":5,"attemptsBeforeDeactivation":2}}`,
			`{"type":"CONNECT","delay":"10","timeout":"5","attemptsBeforeDeactivation":"2"}`},
		{"PUT", path + "/connectionthrottle", `{"connectionThrottle":{"maxConnections":10,"minConnections":1,"maxConnectionRate":5,"rateInterval":60}}`, `{"maxConnections":"20"}`},
		{"PUT", path + "/connectionlogging", `{"connectionLogging":{"enabled":false}}`, `{"enabled":"true"}`},
		{"PUT", path + "/contentcaching", `{"contentCaching":{"enabled":false}}`, `{"enabled":"false"}`},
		{"PUT", path + "/errorpage", `{"errorpage":{"content":"<html>w</html>"}}`, `{"content":"<html>b</html>"}`},
		{"POST", path + "/virtualips", `{"virtualIp":{"type":"PUBLIC","ipVersion":"IPV6"}}`, `{"type":"PUBLIC","ipVersion":"IPV6"}`},
	} {
		for _, body := range []string{c.wrapped, c.bare} {
			if code, out := e.call(c.method, c.path, body); code >= 300 {
				t.Fatalf("%s %s %s: %d %v", c.method, c.path, body, code, out)
			}
			e.activate()
		}
	}
	lb = e.mustCall(200, "GET", path, "")["loadBalancer"].(map[string]any)
	if lb["name"] != "b" || lb["checkPassive"] != false || lb["connectionThrottle"].(map[string]any)["maxConnections"] != float64(20) ||
		lb["contentCaching"].(map[string]any)["enabled"] != false || lb["connectionLogging"].(map[string]any)["enabled"] != true {
		t.Fatalf("the unwrapped updates were not applied: %v", lb)
	}
	if hm := lb["healthMonitor"].(map[string]any); hm["delay"] != float64(10) || hm["attemptsBeforeDeactivation"] != float64(2) {
		t.Fatalf("health monitor: %v", hm)
	}

	// Strict everywhere else: 400 naming the field, nothing changed.
	before := e.revision()
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/loadbalancers", `{"name":"x","protocol":"HTTP","colour":"red","virtualIps":[{"type":"PUBLIC"}]}`, "colour"},
		{"POST", "/loadbalancers", `{"loadBalancer":{"name":"x","protocol":"HTTP","port":"eighty","virtualIps":[{"type":"PUBLIC"}]}}`, "port"},
		{"POST", "/loadbalancers", `{"name":"x","protocol":"HTTP","halfClosed":"maybe","virtualIps":[{"type":"PUBLIC"}]}`, "halfClosed"},
		{"POST", "/loadbalancers", `{"name":"x","halfClosed":"yes","virtualIps":[{"type":"PUBLIC"}]}`, "halfClosed"},
		{"PUT", path + "/healthmonitor", `{"type":"CONNECT","delay":10,"colour":1}`, "colour"},
		{"PUT", path + "/healthmonitor", `{"healthMonitor":{"type":"CONNECT"},"delay":10}`, "delay"},
		{"PUT", path + "/connectionlogging", `{"enabled":1}`, "enabled"},
		{"POST", path + "/virtualips", `{"virtualIp":{"type":"PUBLIC"},"ipVersion":"IPV6"}`, "ipVersion"},
		{"POST", path + "/virtualips", `{"type":"PUBLIC","colour":"IPV6"}`, "colour"},
	} {
		code, out := e.call(c.method, c.path, c.body)
		msgs := strings.Join(validationMessages(out), " ")
		if code != 400 || !strings.Contains(msgs, c.field) {
			t.Errorf("%s %s %s: got %d %v, want 400 naming %q", c.method, c.path, c.body, code, out, c.field)
		}
	}
	if after := e.revision(); after != before {
		t.Fatalf("refused bodies changed the revision: %d -> %d", before, after)
	}
}

// The reference's "Add shared virtual IP version 6" body: a new load
// balancer sharing virtual IPs of the one in the path.
func TestAddSharedVirtualIP(t *testing.T) {
	e := newEnv(t, withManualActivation())
	a := e.createLB(`{"name":"a","protocol":"HTTP","port":80,"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV6"}]}`)
	b := e.createLB(`{"name":"b","protocol":"HTTP","port":80,"virtualIps":[{"type":"PUBLIC"}]}`)
	e.activate()
	vipOf := func(id int) int {
		lb := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id), "")["loadBalancer"].(map[string]any)
		return int(lb["virtualIps"].([]any)[0].(map[string]any)["id"].(float64))
	}
	before := e.revision()
	for _, c := range []struct{ body, field string }{
		{`{"loadBalancer":{"name":"s","protocol":"TCP","port":53,"virtualIps":[{"id":` + itoa(vipOf(b)) + `}]}}`, "loadBalancer.virtualIps[0].id"},
		{`{"loadBalancer":{"name":"s","protocol":"TCP","port":53,"virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.virtualIps[0].id"},
		{`{"loadBalancer":{"name":"s","protocol":"TCP","port":53}}`, "loadBalancer.virtualIps"},
		{`{"loadBalancer":{"name":"s","protocol":"TCP","port":53,"virtualIps":[{"id":` + itoa(vipOf(a)) + `}]},"virtualIp":{"type":"PUBLIC"}}`, "not both"},
	} {
		code, out := e.call("POST", "/loadbalancers/"+itoa(a)+"/virtualips", c.body)
		if code != 400 || !strings.Contains(strings.Join(validationMessages(out), " "), c.field) {
			t.Errorf("%s: got %d %v, want 400 naming %s", c.body, code, out, c.field)
		}
	}
	if e.revision() != before {
		t.Fatal("a refused shared virtual IP changed something")
	}
	out := e.mustCall(202, "POST", "/loadbalancers/"+itoa(a)+"/virtualips",
		`{"loadBalancer":{"name":"s","protocol":"TCP","port":"53","virtualIps":[{"id":`+itoa(vipOf(a))+`}]}}`)
	if int(out["id"].(float64)) != vipOf(a) || out["ipVersion"] != "IPV6" {
		t.Fatalf("the answer is not the shared IPv6 virtual IP %d: %v", vipOf(a), out)
	}
	lbs := e.mustCall(200, "GET", "/loadbalancers", "")["loadBalancers"].([]any)
	if len(lbs) != 3 {
		t.Fatalf("want the new load balancer: %v", lbs)
	}
}
