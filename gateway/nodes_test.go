package gateway_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/server"
)

func TestNodes(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	// Add several at once, as the reference's example does (domain names too).
	out := e.mustCall(202, "POST", lb+"/nodes", `{"nodes": [
		{"address": "10.2.2.3", "port": 80, "condition": "ENABLED", "type": "PRIMARY"},
		{"address": "10.2.2.4", "port": 81, "condition": "ENABLED", "type": "SECONDARY"},
		{"address": "www.myrackspace.com", "port": 88, "condition": "ENABLED", "weight": 10, "type": "SECONDARY"}]}`)
	added := out["nodes"].([]any)
	if len(added) != 3 {
		t.Fatalf("added %v", added)
	}
	third := added[2].(map[string]any)
	if third["address"] != "www.myrackspace.com" || third["weight"] != 10.0 || third["status"] != "ONLINE" || third["id"] == nil {
		t.Errorf("added node %v", third)
	}
	if st := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)["status"]; st != "PENDING_UPDATE" {
		t.Errorf("adding nodes puts the load balancer in PENDING_UPDATE, got %v", st)
	}
	e.activate()

	nodes := e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)
	if len(nodes) != 4 {
		t.Fatalf("list %v", nodes)
	}
	nodeID := itoa(int(third["id"].(float64)))
	got := e.mustCall(200, "GET", lb+"/nodes/"+nodeID, "")["node"].(map[string]any)
	if got["port"] != 88.0 || got["type"] != "SECONDARY" {
		t.Errorf("show node %v", got)
	}

	// Update: condition and weight; address and port are immutable.
	e.mustCall(202, "PUT", lb+"/nodes/"+nodeID, `{"node":{"condition":"DRAINING","weight":59}}`)
	e.activate()
	got = e.mustCall(200, "GET", lb+"/nodes/"+nodeID, "")["node"].(map[string]any)
	if got["condition"] != "DRAINING" || got["weight"] != 59.0 {
		t.Errorf("after update %v", got)
	}
	before := e.revision()
	for _, c := range []struct{ body, field string }{
		{`{"node":{"address":"10.9.9.9"}}`, "address"},
		{`{"node":{"port":99}}`, "port"},
		{`{"node":{}}`, "node"},
		{`{"node":{"weight":0}}`, "node.weight"},
		{`{"node":{"condition":"PAUSED"}}`, "node.condition"},
		{`{"node":{"type":"TERTIARY"}}`, "node.type"},
	} {
		out := e.mustCall(400, "PUT", lb+"/nodes/"+nodeID, c.body)
		if !strings.Contains(strings.Join(validationMessages(out), ""), c.field) {
			t.Errorf("PUT %s: %v does not name %s", c.body, out, c.field)
		}
	}
	e.mustCall(404, "PUT", lb+"/nodes/99999", `{"node":{"condition":"ENABLED"}}`)
	e.mustCall(404, "GET", lb+"/nodes/99999", "")
	if e.revision() != before {
		t.Error("refused node updates changed the store")
	}

	// Bulk update answers the updated nodes.
	first := itoa(int(nodes[0].(map[string]any)["id"].(float64)))
	out = e.mustCall(202, "PUT", lb+"/nodes", `{"nodes":[{"id":`+first+`,"condition":"DISABLED","weight":1},{"id":`+nodeID+`,"condition":"ENABLED"}]}`)
	if updated := out["nodes"].([]any); len(updated) != 2 || updated[0].(map[string]any)["condition"] != "DISABLED" {
		t.Errorf("bulk update %v", out)
	}
	e.activate()

	// Bulk delete is all or nothing, and names the ids that are not there.
	before = e.revision()
	out = e.mustCall(400, "DELETE", lb+"/nodes?id="+first+"&id=100", "")
	if msgs := validationMessages(out); len(msgs) != 1 || msgs[0] != "Node ids 100 are not a part of your loadbalancer" {
		t.Errorf("bulk delete fault %v", out)
	}
	if e.revision() != before {
		t.Error("a refused bulk delete changed the store")
	}
	e.mustCall(202, "DELETE", lb+"/nodes?id="+first+"&id="+nodeID, "")
	e.activate()
	if nodes := e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any); len(nodes) != 2 {
		t.Errorf("after bulk delete %v", nodes)
	}
	remaining := e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)
	e.mustCall(202, "DELETE", lb+"/nodes/"+itoa(int(remaining[0].(map[string]any)["id"].(float64))), "")
	e.activate()
	e.mustCall(404, "DELETE", lb+"/nodes/99999", "")

	// Duplicates of an existing node are refused.
	dup := remaining[1].(map[string]any)
	out = e.mustCall(400, "POST", lb+"/nodes", `{"nodes":[{"address":"`+dup["address"].(string)+`","port":`+itoa(int(dup["port"].(float64)))+`,"condition":"ENABLED"}]}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "duplicate") {
		t.Errorf("duplicate node: %v", out)
	}
	// A deleted load balancer's nodes are gone with it.
	e.mustCall(404, "GET", "/loadbalancers/99999/nodes", "")
}

func TestVirtualIPs(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	vips := e.mustCall(200, "GET", lb+"/virtualips", "")["virtualIps"].([]any)
	if len(vips) != 1 {
		t.Fatalf("virtual IPs %v", vips)
	}
	v4 := itoa(int(vips[0].(map[string]any)["id"].(float64)))

	// Only IPv6 can be added.
	out := e.mustCall(400, "POST", lb+"/virtualips", `{"type":"PUBLIC","ipVersion":"IPV4"}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "ipVersion") {
		t.Errorf("fault %v", out)
	}
	added := e.mustCall(202, "POST", lb+"/virtualips", `{"type":"PUBLIC","ipVersion":"IPV6"}`)
	if added["ipVersion"] != "IPV6" || added["type"] != "PUBLIC" || !strings.HasPrefix(added["address"].(string), "fd00:1ba5:") {
		t.Errorf("added %v", added)
	}
	e.activate()
	v6 := itoa(int(added["id"].(float64)))

	// The last virtual IP can never be removed.
	e.mustCall(400, "DELETE", lb+"/virtualips?id="+v4+"&id="+v6, "")
	code, body := e.raw("DELETE", "/v1.0/1234"+lb+"/virtualips/"+v4, e.token, "")
	if code != 200 || len(body) != 0 {
		t.Fatalf("delete virtual IP: %d %s", code, body)
	}
	e.activate()
	out = e.mustCall(400, "DELETE", lb+"/virtualips/"+v6, "")
	if !strings.Contains(strings.Join(validationMessages(out), ""), "at least one virtual IP") {
		t.Errorf("deleting the last virtual IP: %v", out)
	}
	e.mustCall(404, "DELETE", lb+"/virtualips/99999", "")
}

func TestSharedVirtualIP(t *testing.T) {
	e := newEnv(t)
	first := e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer":{"name":"http","port":80,"protocol":"HTTP",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`)["loadBalancer"].(map[string]any)
	vip := first["virtualIps"].([]any)[0].(map[string]any)
	vipID := itoa(int(vip["id"].(float64)))

	out := e.mustCall(400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"clash","port":80,"protocol":"HTTP","virtualIps":[{"id":`+vipID+`}]}}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "port 80") {
		t.Errorf("same port on a shared VIP: %v", out)
	}
	second := e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer":{"name":"https","port":443,"protocol":"HTTPS","virtualIps":[{"id":`+vipID+`}]}}`)["loadBalancer"].(map[string]any)
	shared := second["virtualIps"].([]any)[0].(map[string]any)
	if shared["id"] != vip["id"] || shared["address"] != vip["address"] {
		t.Errorf("shared VIP %v, want %v", shared, vip)
	}
	// TCP and UDP protocols are designed to share a port.
	tcp := e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer":{"name":"tcp","port":53,"protocol":"TCP","virtualIps":[{"id":`+vipID+`}]}}`)
	e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer":{"name":"udp","port":53,"protocol":"UDP","virtualIps":[{"id":`+vipID+`}]}}`)
	e.mustCall(400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"tcp2","port":53,"protocol":"TCP_CLIENT_FIRST","virtualIps":[{"id":`+vipID+`}]}}`)

	// Moving onto a port another load balancer of the VIP uses is refused.
	tcpID := int(tcp["loadBalancer"].(map[string]any)["id"].(float64))
	e.waitStatus(tcpID, "ACTIVE")
	out = e.mustCall(400, "PUT", "/loadbalancers/"+itoa(tcpID), `{"loadBalancer":{"port":443,"protocol":"HTTPS"}}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "port 443") {
		t.Errorf("update onto a used port: %v", out)
	}

	// Another account cannot use the VIP.
	other := e.login("mallory", "5678")
	code, body := e.raw("POST", "/v1.0/5678/loadbalancers", other, `{"loadBalancer":{"name":"steal","port":8080,"protocol":"HTTP","virtualIps":[{"id":`+vipID+`}]}}`)
	if code != 400 {
		t.Errorf("another account's VIP: %d %s", code, body)
	}
}

// Nodes may not point into the machines' own networks (loopback,
// link-local metadata services): the proxies and the health prober would
// connect there for the customer.
func TestDeniedNodeNetworks(t *testing.T) {
	denied := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("::1/128")}
	e := newEnv(t, func(c *server.Config) { c.DeniedNodeNetworks = denied })
	for _, addr := range []string{"127.0.0.1", "127.9.9.9", "169.254.169.254", "::1", "::ffff:127.0.0.1", "localhost", "api.localhost"} {
		body := `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"` + addr + `","port":80,"condition":"ENABLED"}]}}`
		out := e.mustCall(400, "POST", "/loadbalancers", body)
		if msgs := strings.Join(validationMessages(out), ""); !strings.Contains(msgs, "loadBalancer.nodes[0].address") {
			t.Errorf("%s: %v", addr, out)
		}
	}
	id := e.createLB(simpleLB) // 10.1.1.1 is fine
	e.waitStatus(id, "ACTIVE")
	e.mustCall(400, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"127.0.0.1","port":9901,"condition":"ENABLED"}]}`)
}

// An HTTPS load balancer with httpsRedirect also listens on port 80.
func TestHTTPSRedirectHoldsPort80(t *testing.T) {
	e := newEnv(t)
	https := e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer":{"name":"tls","protocol":"HTTPS","port":443,"httpsRedirect":true,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`)["loadBalancer"].(map[string]any)
	vip := itoa(int(https["virtualIps"].([]any)[0].(map[string]any)["id"].(float64)))
	out := e.mustCall(400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"web","protocol":"HTTP","port":80,"virtualIps":[{"id":`+vip+`}]}}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "port 80") {
		t.Errorf("%v", out)
	}
	web := e.createLB(`{"loadBalancer":{"name":"web","protocol":"HTTP","port":8080,"virtualIps":[{"id":` + vip + `}]}}`)
	e.waitStatus(web, "ACTIVE")
	e.mustCall(400, "PUT", "/loadbalancers/"+itoa(web), `{"loadBalancer":{"port":80}}`)
}

// A DISABLED node takes no traffic: it shows OFFLINE and counts as down in
// nodesStatus, and shows its measured health again once enabled.
func TestDisabledNodeIsOffline(t *testing.T) {
	e := newEnv(t, withManualActivation(), withoutProber())
	id := e.createLB(`{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],
		"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"},{"address":"10.1.1.2","port":80,"condition":"DISABLED"}]}}`)
	e.activate()
	check := func(wantStatus string, up, down float64) {
		t.Helper()
		lb := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id), "")["loadBalancer"].(map[string]any)
		var disabled map[string]any
		for _, n := range lb["nodes"].([]any) {
			if n.(map[string]any)["address"] == "10.1.1.2" {
				disabled = n.(map[string]any)
			}
		}
		ns := lb["nodesStatus"].(map[string]any)
		if disabled["status"] != wantStatus || ns["up"] != up || ns["down"] != down {
			t.Fatalf("node %v, nodesStatus %v; want %s, up %v, down %v", disabled, ns, wantStatus, up, down)
		}
		nodeID := itoa(int(disabled["id"].(float64)))
		if got := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/nodes/"+nodeID, "")["node"].(map[string]any)["status"]; got != wantStatus {
			t.Fatalf("GET node: status %v, want %s", got, wantStatus)
		}
	}
	check("OFFLINE", 1, 1)
	nodes := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/nodes", "")["nodes"].([]any)
	e.mustCall(202, "PUT", "/loadbalancers/"+itoa(id)+"/nodes/"+itoa(int(nodes[1].(map[string]any)["id"].(float64))), `{"condition":"ENABLED"}`)
	e.activate()
	check("ONLINE", 2, 0)
}

// changes-since lists only the nodes changed at or after the time.
func TestNodesChangesSince(t *testing.T) {
	e := newEnv(t, withManualActivation(), withoutProber())
	id := e.createLB(`{"name":"web","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],
		"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"},{"address":"10.1.1.2","port":80,"condition":"ENABLED"}]}`)
	e.activate()
	nodes := "/loadbalancers/" + itoa(id) + "/nodes"
	all := e.mustCall(200, "GET", nodes, "")["nodes"].([]any)
	time.Sleep(5 * time.Millisecond) // the store keeps microseconds: the mark is after the creation
	mark := time.Now().UTC().Format(time.RFC3339Nano)
	second := itoa(int(all[1].(map[string]any)["id"].(float64)))
	e.mustCall(202, "PUT", nodes+"/"+second, `{"node":{"weight":5}}`)
	e.activate()
	for _, path := range []string{nodes + "?changes-since=" + mark, nodes + ".json?changes-since=" + mark} {
		got := e.mustCall(200, "GET", path, "")["nodes"].([]any)
		if len(got) != 1 || itoa(int(got[0].(map[string]any)["id"].(float64))) != second {
			t.Fatalf("%s: %v, want only node %s", path, got, second)
		}
	}
	if got := e.mustCall(200, "GET", nodes+"?changes-since=2000-01-01", "")["nodes"].([]any); len(got) != 2 {
		t.Fatalf("changes since 2000: %v", got)
	}
	code, out := e.call("GET", nodes+"?changes-since=yesterday", "")
	if code != 400 || !strings.Contains(strings.Join(validationMessages(out), " "), "changes-since") {
		t.Fatalf("a bad changes-since: %d %v", code, out)
	}
}
