package gateway_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/server"
)

// withAllowedDomains configures the domains node addresses may use.
func withAllowedDomains(domains ...string) envOption {
	return func(c *server.Config) { c.AllowedDomains = domains }
}

// metaItems decodes {"metadata":[...]} and checks that it is the only key.
func metaItems(t *testing.T, out map[string]any) []map[string]any {
	t.Helper()
	raw, ok := out["metadata"].([]any)
	if !ok || len(out) != 1 {
		t.Fatalf("%v, want {\"metadata\": [...]}", out)
	}
	items := make([]map[string]any, len(raw))
	for i, r := range raw {
		items[i] = r.(map[string]any)
	}
	return items
}

// metaOf decodes {"meta":{...}} and checks that it is the only key.
func metaOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	m, ok := out["meta"].(map[string]any)
	if !ok || len(out) != 1 {
		t.Fatalf("%v, want {\"meta\": {...}}", out)
	}
	return m
}

// metaIs checks an item is exactly {id (a number), key, value}.
func metaIs(t *testing.T, what string, m map[string]any, key, value string) {
	t.Helper()
	id, isNumber := m["id"].(float64)
	if len(m) != 3 || !isNumber || id < 1 || m["key"] != key || m["value"] != value {
		t.Errorf("%s: %v, want {id: <number>, key: %q, value: %q}", what, m, key, value)
	}
}

func metaID(m map[string]any) string { return itoa(int(m["id"].(float64))) }

// foreignID returns the id of an item of from that no item of others has
// (load balancer and node items are numbered apart, both from 1).
func foreignID(t *testing.T, from, others []map[string]any) string {
	t.Helper()
	taken := map[string]bool{}
	for _, m := range others {
		taken[metaID(m)] = true
	}
	for _, m := range from {
		if !taken[metaID(m)] {
			return metaID(m)
		}
	}
	t.Fatalf("test setup: every id of %v is also in %v", from, others)
	return ""
}

// metaFault checks that a request is refused with code, naming text in
// the fault's message or validation messages, and changes nothing.
func metaFault(t *testing.T, e *env, code int, method, path, body, text string) map[string]any {
	t.Helper()
	before := e.revision()
	out := e.mustCall(code, method, path, body)
	msg, _ := out["message"].(string)
	all := msg + " | " + strings.Join(validationMessages(out), " | ")
	if out["code"] != float64(code) || !strings.Contains(all, text) {
		t.Errorf("%s %s %s: fault %v does not name %q", method, path, body, out, text)
	}
	if e.revision() != before {
		t.Errorf("%s %s %s: a refused request changed the store", method, path, body)
	}
	return out
}

// noDataPlaneChange checks that nothing committed since revision concerns
// the data plane, and that the load balancer kept its status.
func noDataPlaneChange(t *testing.T, e *env, since int64, lb, status string) {
	t.Helper()
	changes, err := e.srv.Store.ChangesSince(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("metadata changes recorded data-plane changes: %+v", changes)
	}
	if got := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)["status"]; got != status {
		t.Errorf("load balancer status %v after metadata changes, want %s (unchanged)", got, status)
	}
}

// The reference's examples for load balancer metadata, in order: add
// ({"meta": ...} answers {"metadata": [...]}), show the list, show, update,
// delete one.
func TestLoadBalancerMetadataReferenceExamples(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	start := e.revision()

	code, body := e.raw("GET", "/v1.0/1234"+lb+"/metadata", e.token, "")
	if code != 200 || strings.TrimSpace(string(body)) != `{"metadata":[]}` {
		t.Fatalf("no metadata yet: %d %s, want 200 {\"metadata\":[]}", code, body)
	}

	// POST the reference's request: one item under "meta".
	added := metaItems(t, e.mustCall(200, "POST", lb+"/metadata", `{
      "meta": {
        "key":"color",
        "value":"blue"
      }
    }`))
	if len(added) != 1 {
		t.Fatalf("added %v, want the one item", added)
	}
	metaIs(t, "POST meta", added[0], "color", "blue")
	color := metaID(added[0])

	// POST what clients send: a list under "metadata"; the answer is the
	// created items only.
	added = metaItems(t, e.mustCall(200, "POST", lb+"/metadata",
		`{"metadata":[{"key":"label","value":"web-load-balancer"},{"key":"ünïcødé","value":"ça va"}]}`))
	if len(added) != 2 {
		t.Fatalf("added %v, want two items", added)
	}
	metaIs(t, "POST metadata[0]", added[0], "label", "web-load-balancer")
	metaIs(t, "POST metadata[1]", added[1], "ünïcødé", "ça va")

	list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", ""))
	if len(list) != 3 {
		t.Fatalf("list %v, want 3 items", list)
	}
	metaIs(t, "list[0]", list[0], "color", "blue")
	metaIs(t, "list[1]", list[1], "label", "web-load-balancer")
	metaIs(t, "list[2]", list[2], "ünïcødé", "ça va")
	// The load balancer's details show them too.
	details := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)
	if md, _ := details["metadata"].([]any); len(md) != 3 {
		t.Errorf("details metadata %v, want the 3 items", details["metadata"])
	}

	// Show one item: {"meta": {"id", "key", "value"}}.
	metaIs(t, "GET item", metaOf(t, e.mustCall(200, "GET", lb+"/metadata/"+color, "")), "color", "blue")

	// Update with the reference's request; the answer is the item.
	got := metaOf(t, e.mustCall(200, "PUT", lb+"/metadata/"+color, `{
      "meta": {
        "value":"red"
      }
    }`))
	metaIs(t, "PUT answer", got, "color", "red")
	if metaID(got) != color {
		t.Errorf("PUT changed the id: %v, want %s", got, color)
	}
	metaIs(t, "GET after PUT", metaOf(t, e.mustCall(200, "GET", lb+"/metadata/"+color, "")), "color", "red")

	// Delete one: 200 with no body; then it is gone.
	code, hdr, body := e.rawHeaders("DELETE", "/v1.0/1234"+lb+"/metadata/"+color, e.token, "")
	if code != 200 || len(body) != 0 || hdr.Get("Content-Type") != "" {
		t.Fatalf("DELETE item: %d %q content-type %q, want 200 with no body", code, body, hdr.Get("Content-Type"))
	}
	metaFault(t, e, 404, "GET", lb+"/metadata/"+color, "", "not found")
	metaFault(t, e, 404, "PUT", lb+"/metadata/"+color, `{"meta":{"value":"x"}}`, "not found")
	metaFault(t, e, 404, "DELETE", lb+"/metadata/"+color, "", "not found")
	if list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", "")); len(list) != 2 {
		t.Errorf("after delete: %v, want 2 items", list)
	}

	// Metadata is not data-plane configuration: the load balancer stays
	// ACTIVE and no change reaches the data plane.
	noDataPlaneChange(t, e, start, lb, "ACTIVE")

	// An unknown load balancer is 404 for all six.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/loadbalancers/99999/metadata", ""},
		{"POST", "/loadbalancers/99999/metadata", `{"meta":{"key":"k","value":"v"}}`},
		{"DELETE", "/loadbalancers/99999/metadata?id=1", ""},
		{"GET", "/loadbalancers/99999/metadata/1", ""},
		{"PUT", "/loadbalancers/99999/metadata/1", `{"meta":{"value":"v"}}`},
		{"DELETE", "/loadbalancers/99999/metadata/1", ""},
	} {
		metaFault(t, e, 404, c.method, c.path, c.body, "Load balancer not found")
	}
}

// Node metadata: the same six operations under /nodes/{nodeId}/metadata;
// the node must belong to the load balancer.
func TestNodeMetadata(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(`{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED","metadata":[{"key":"rack","value":"r1"}]}]}}`)
	other := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	nodeID := itoa(int(e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)[0].(map[string]any)["id"].(float64)))
	otherNode := itoa(int(e.mustCall(200, "GET", "/loadbalancers/"+itoa(other)+"/nodes", "")["nodes"].([]any)[0].(map[string]any)["id"].(float64)))
	node := lb + "/nodes/" + nodeID
	start := e.revision()

	// Metadata given when the node was created is listed.
	list := metaItems(t, e.mustCall(200, "GET", node+"/metadata", ""))
	if len(list) != 1 {
		t.Fatalf("node metadata %v, want the item given at creation", list)
	}
	metaIs(t, "created with the node", list[0], "rack", "r1")

	added := metaItems(t, e.mustCall(200, "POST", node+"/metadata", `{"meta":{"key":"color","value":"blue"}}`))
	if len(added) != 1 {
		t.Fatalf("added %v", added)
	}
	metaIs(t, "POST meta", added[0], "color", "blue")
	color := metaID(added[0])
	added = metaItems(t, e.mustCall(200, "POST", node+"/metadata", `{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"}]}`))
	if len(added) != 2 {
		t.Fatalf("added %v", added)
	}
	metaIs(t, "POST metadata[1]", added[1], "b", "2")

	metaIs(t, "GET item", metaOf(t, e.mustCall(200, "GET", node+"/metadata/"+color, "")), "color", "blue")
	// The reference's update example and answer.
	metaIs(t, "PUT answer", metaOf(t, e.mustCall(200, "PUT", node+"/metadata/"+color, `{"meta":{"value":"blue2"}}`)), "color", "blue2")
	metaIs(t, "GET after PUT", metaOf(t, e.mustCall(200, "GET", node+"/metadata/"+color, "")), "color", "blue2")
	// The node's details show its metadata.
	nd := e.mustCall(200, "GET", node, "")["node"].(map[string]any)
	if md, _ := nd["metadata"].([]any); len(md) != 4 {
		t.Errorf("node details metadata %v, want 4 items", nd["metadata"])
	}

	e.mustCall(200, "DELETE", node+"/metadata/"+color, "")
	metaFault(t, e, 404, "GET", node+"/metadata/"+color, "", "not found")
	if list := metaItems(t, e.mustCall(200, "GET", node+"/metadata", "")); len(list) != 3 {
		t.Errorf("after delete: %v, want 3 items", list)
	}

	// Node metadata and load balancer metadata are separate: the keys of
	// one do not clash with the other, and ids of one are not found in the other.
	lbItems := metaItems(t, e.mustCall(200, "POST", lb+"/metadata", `{"metadata":[{"key":"color","value":"green"},
		{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"},{"key":"d","value":"4"}]}`))
	e.mustCall(200, "DELETE", lb+"/metadata/"+metaID(lbItems[2]), "")
	lbItems = metaItems(t, e.mustCall(200, "GET", lb+"/metadata", ""))
	nodeItems := metaItems(t, e.mustCall(200, "GET", node+"/metadata", ""))
	for _, c := range []struct{ method, path, body string }{
		{"GET", node + "/metadata/" + foreignID(t, lbItems, nodeItems), ""},
		{"PUT", node + "/metadata/" + foreignID(t, lbItems, nodeItems), `{"meta":{"value":"x"}}`},
		{"DELETE", node + "/metadata/" + foreignID(t, lbItems, nodeItems), ""},
		{"GET", lb + "/metadata/" + foreignID(t, nodeItems, lbItems), ""},
		{"PUT", lb + "/metadata/" + foreignID(t, nodeItems, lbItems), `{"meta":{"value":"x"}}`},
		{"DELETE", lb + "/metadata/" + foreignID(t, nodeItems, lbItems), ""},
	} {
		metaFault(t, e, 404, c.method, c.path, c.body, "Metadata item not found")
	}
	noDataPlaneChange(t, e, start, lb, "ACTIVE")

	// Another load balancer's node, and a node that does not exist: 404 for all six.
	for _, n := range []string{lb + "/nodes/" + otherNode, lb + "/nodes/99999"} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", n + "/metadata", ""},
			{"POST", n + "/metadata", `{"meta":{"key":"k","value":"v"}}`},
			{"DELETE", n + "/metadata?id=1", ""},
			{"GET", n + "/metadata/1", ""},
			{"PUT", n + "/metadata/1", `{"meta":{"value":"v"}}`},
			{"DELETE", n + "/metadata/1", ""},
		} {
			metaFault(t, e, 404, c.method, c.path, c.body, "Node not found")
		}
	}
	// Even naming the other node's real metadata ids.
	otherItems := metaItems(t, e.mustCall(200, "POST", "/loadbalancers/"+itoa(other)+"/nodes/"+otherNode+"/metadata",
		`{"metadata":[{"key":"k1","value":"v"},{"key":"k2","value":"v"},{"key":"k3","value":"v"},{"key":"k4","value":"v"},{"key":"k5","value":"v"},{"key":"k6","value":"v"}]}`))
	metaFault(t, e, 404, "GET", lb+"/nodes/"+otherNode+"/metadata/"+metaID(otherItems[0]), "", "Node not found")
	nodeItems = metaItems(t, e.mustCall(200, "GET", node+"/metadata", ""))
	metaFault(t, e, 404, "DELETE", node+"/metadata/"+foreignID(t, otherItems, nodeItems), "", "Metadata item not found")
}

// Keys and values are required, 1 to 256 characters; keys are unique per
// load balancer (or node), also against the items already there; on update
// only the value may be given.
func TestMetadataValidation(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	nodeID := itoa(int(e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)[0].(map[string]any)["id"].(float64)))
	existing := metaID(metaItems(t, e.mustCall(200, "POST", lb+"/metadata", `{"meta":{"key":"color","value":"blue"}}`))[0])
	e.mustCall(200, "POST", lb+"/nodes/"+nodeID+"/metadata", `{"meta":{"key":"color","value":"blue"}}`)

	long := strings.Repeat("é", 257) // 257 characters, 514 bytes
	for _, path := range []string{lb + "/metadata", lb + "/nodes/" + nodeID + "/metadata"} {
		for _, c := range []struct{ body, field string }{
			{`{"meta":{"value":"x"}}`, "meta.key"},
			{`{"meta":{"key":"k"}}`, "meta.value"},
			{`{"meta":{"key":"","value":"x"}}`, "meta.key"},
			{`{"meta":{"key":"k","value":""}}`, "meta.value"},
			{`{"meta":{"key":"` + long + `","value":"x"}}`, "meta.key"},
			{`{"meta":{"key":"k","value":"` + long + `"}}`, "meta.value"},
			{`{"meta":{"id":7,"key":"k","value":"v"}}`, "meta.id"},
			{`{"metadata":[{"key":"a","value":"1"},{"value":"2"}]}`, "metadata[1].key"},
			{`{"metadata":[{"key":"a","value":"1"},{"key":"a","value":"2"}]}`, `key "a" appears more than once`},
			{`{"metadata":[{"key":"new","value":"1"},{"key":"color","value":"2"}]}`, "metadata[1].key"},
			{`{"meta":{"key":"color","value":"red"}}`, `"color" is already the key`},
			{`{"meta":{"key":"k","value":"v"},"metadata":[{"key":"l","value":"w"}]}`, "not both"},
			{`{}`, "metadata"},
			{`{"metadata":[]}`, "metadata"},
			{`{"meta":{"key":"k","value":"v","colour":"x"}}`, ""}, // unknown field: strict JSON
			{`{"meta":{"key":"k","value":3}}`, ""},
		} {
			metaFault(t, e, 400, "POST", path, c.body, c.field)
		}
	}
	// The bounds are characters, not bytes: 256 two-byte characters are fine.
	max := strings.Repeat("é", 256)
	metaIs(t, "256 characters", metaItems(t, e.mustCall(200, "POST", lb+"/metadata",
		`{"meta":{"key":"`+max+`","value":"`+max+`"}}`))[0], max, max)
	// Keys are case-sensitive.
	e.mustCall(200, "POST", lb+"/metadata", `{"meta":{"key":"Color","value":"x"}}`)

	item := lb + "/metadata/" + existing
	for _, c := range []struct{ body, field string }{
		{`{"meta":{"key":"colour","value":"red"}}`, "meta.key"},
		{`{"meta":{"key":"color","value":"red"}}`, "meta.key"},
		{`{"meta":{"id":` + existing + `,"value":"red"}}`, "meta.id"},
		{`{"meta":{}}`, "meta.value"},
		{`{"meta":{"value":""}}`, "meta.value"},
		{`{"meta":{"value":"` + long + `"}}`, "meta.value"},
		{`{}`, "meta"},
		{`{"value":"red","colour":"x"}`, ""}, // unwrapped but not a meta: unknown field
	} {
		metaFault(t, e, 400, "PUT", item, c.body, c.field)
	}
	metaIs(t, "after refused updates", metaOf(t, e.mustCall(200, "GET", item, "")), "color", "blue")
}

// LOADBALANCER_META_LIMIT and NODE_META_LIMIT: 413 overLimit and nothing
// written, counting the items already there.
func TestMetadataLimits(t *testing.T) {
	limits := api.DefaultLimits
	limits.LoadBalancerMeta = 3
	limits.NodeMeta = 2
	e := newEnv(t, withManualActivation(), withLimits(limits))
	id := e.createLB(`{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"metadata":[{"key":"created","value":"with the load balancer"}],
		"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"}]}}`)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	node := lb + "/nodes/" + itoa(int(e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)[0].(map[string]any)["id"].(float64)))

	// More than the limit in one request, even before counting what is there.
	metaFault(t, e, 413, "POST", lb+"/metadata",
		`{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"},{"key":"d","value":"4"}]}`,
		"LOADBALANCER_META_LIMIT")
	// One item exists (given at creation): three more would make four.
	metaFault(t, e, 413, "POST", lb+"/metadata",
		`{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"}]}`, "LOADBALANCER_META_LIMIT")
	if list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", "")); len(list) != 1 {
		t.Fatalf("after refused adds: %v, want only the item given at creation", list)
	}
	e.mustCall(200, "POST", lb+"/metadata", `{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"}]}`)
	metaFault(t, e, 413, "POST", lb+"/metadata", `{"meta":{"key":"c","value":"3"}}`, "LOADBALANCER_META_LIMIT")
	// A request over the limit by itself is refused before its items are
	// validated, as on create.
	metaFault(t, e, 413, "POST", lb+"/metadata",
		`{"metadata":[{"key":""},{"key":""},{"key":""},{"key":""}]}`, "LOADBALANCER_META_LIMIT")

	// Deleting makes room again.
	list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", ""))
	e.mustCall(200, "DELETE", lb+"/metadata/"+metaID(list[0]), "")
	e.mustCall(200, "POST", lb+"/metadata", `{"meta":{"key":"c","value":"3"}}`)

	metaFault(t, e, 413, "POST", node+"/metadata",
		`{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"}]}`, "NODE_META_LIMIT")
	e.mustCall(200, "POST", node+"/metadata", `{"meta":{"key":"a","value":"1"}}`)
	e.mustCall(200, "POST", node+"/metadata", `{"meta":{"key":"b","value":"2"}}`)
	metaFault(t, e, 413, "POST", node+"/metadata", `{"meta":{"key":"c","value":"3"}}`, "NODE_META_LIMIT")
	if list := metaItems(t, e.mustCall(200, "GET", node+"/metadata", "")); len(list) != 2 {
		t.Errorf("node metadata %v, want 2 items", list)
	}
}

// Bulk delete takes 1 to BATCH_DELETE_LIMIT ids and is all or nothing:
// ids that are not the load balancer's (or node's) are named in a 400.
func TestMetadataBulkDelete(t *testing.T) {
	limits := api.DefaultLimits
	limits.BatchDelete = 3
	e := newEnv(t, withManualActivation(), withLimits(limits))
	id := e.createLB(simpleLB)
	other := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	nodeID := itoa(int(e.mustCall(200, "GET", lb+"/nodes", "")["nodes"].([]any)[0].(map[string]any)["id"].(float64)))
	node := lb + "/nodes/" + nodeID

	lbItems := metaItems(t, e.mustCall(200, "POST", lb+"/metadata",
		`{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"},{"key":"c","value":"3"},{"key":"d","value":"4"}]}`))
	var ids []string
	for _, m := range lbItems {
		ids = append(ids, metaID(m))
	}
	foreign := metaID(metaItems(t, e.mustCall(200, "POST", "/loadbalancers/"+itoa(other)+"/metadata", `{"meta":{"key":"a","value":"1"}}`))[0])
	nodeItems := metaItems(t, e.mustCall(200, "POST", node+"/metadata", `{"metadata":[{"key":"a","value":"1"},{"key":"b","value":"2"}]}`))

	out := metaFault(t, e, 400, "DELETE", lb+"/metadata?id="+ids[0]+"&id=99999&id="+foreign, "", "99999")
	if msgs := validationMessages(out); len(msgs) != 1 || msgs[0] != "Metadata ids 99999,"+foreign+" are not a part of your load balancer" {
		t.Errorf("bulk delete fault %v", out)
	}
	// A load balancer's item is not one of its node's.
	notNodes := foreignID(t, lbItems, nodeItems)
	out = metaFault(t, e, 400, "DELETE", node+"/metadata?id="+metaID(nodeItems[0])+"&id="+notNodes, "", notNodes)
	if msgs := validationMessages(out); len(msgs) != 1 || msgs[0] != "Metadata ids "+notNodes+" are not a part of your node" {
		t.Errorf("node bulk delete fault %v", out)
	}
	metaFault(t, e, 400, "DELETE", lb+"/metadata", "", "id")
	metaFault(t, e, 400, "DELETE", lb+"/metadata?id="+ids[0]+"&id="+ids[1]+"&id="+ids[2]+"&id="+ids[3], "", "BATCH_DELETE_LIMIT")
	metaFault(t, e, 400, "DELETE", lb+"/metadata?id=x", "", "id")
	if list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", "")); len(list) != 4 {
		t.Fatalf("after refused bulk deletes: %v, want all 4 items", list)
	}

	code, hdr, body := e.rawHeaders("DELETE", "/v1.0/1234"+lb+"/metadata?id="+ids[0]+"&id="+ids[2], e.token, "")
	if code != 200 || len(body) != 0 || hdr.Get("Content-Type") != "" {
		t.Fatalf("bulk delete: %d %q content-type %q, want 200 with no body", code, body, hdr.Get("Content-Type"))
	}
	list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", ""))
	if len(list) != 2 || list[0]["key"] != "b" || list[1]["key"] != "d" {
		t.Errorf("after bulk delete: %v, want b and d", list)
	}
	// Nor is a node's item one of the load balancer's.
	notLBs := foreignID(t, nodeItems, list)
	metaFault(t, e, 400, "DELETE", lb+"/metadata?id="+notLBs, "", notLBs)

	e.mustCall(200, "DELETE", node+"/metadata?id="+metaID(nodeItems[0])+"&id="+metaID(nodeItems[1]), "")
	if list := metaItems(t, e.mustCall(200, "GET", node+"/metadata", "")); len(list) != 0 {
		t.Errorf("node metadata after bulk delete: %v", list)
	}
	if list := metaItems(t, e.mustCall(200, "GET", lb+"/metadata", "")); len(list) != 2 {
		t.Errorf("load balancer metadata after the node's bulk delete: %v, want b and d", list)
	}
	// The other load balancer's item is untouched.
	e.mustCall(200, "GET", "/loadbalancers/"+itoa(other)+"/metadata/"+foreign, "")
}

// Metadata may change in any status but DELETED, and never moves the
// status; another tenant cannot see or change it.
func TestMetadataStatusesAndTenants(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB) // stays in BUILD until activated
	lb := "/loadbalancers/" + itoa(id)
	start := e.revision()
	item := metaID(metaItems(t, e.mustCall(200, "POST", lb+"/metadata", `{"meta":{"key":"k","value":"v"}}`))[0])
	e.mustCall(200, "PUT", lb+"/metadata/"+item, `{"meta":{"value":"w"}}`)
	noDataPlaneChange(t, e, start, lb, "BUILD")

	e.activate()
	e.mustCall(202, "PUT", lb, `{"loadBalancer":{"name":"renamed"}}`) // PENDING_UPDATE
	start = e.revision()
	e.mustCall(200, "POST", lb+"/metadata", `{"meta":{"key":"k2","value":"v"}}`)
	e.mustCall(200, "DELETE", lb+"/metadata/"+item, "")
	noDataPlaneChange(t, e, start, lb, "PENDING_UPDATE")
	e.activate()

	// Another tenant: 404, and nothing changes.
	otherToken := e.login("mallory", "5678")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1.0/1234" + lb + "/metadata", ""},
		{"POST", "/v1.0/1234" + lb + "/metadata", `{"meta":{"key":"x","value":"y"}}`},
		{"POST", "/v1.0/5678" + lb + "/metadata", `{"meta":{"key":"x","value":"y"}}`},
	} {
		before := e.revision()
		if code, body := e.raw(c.method, c.path, otherToken, c.body); code != 404 {
			t.Errorf("%s %s by another tenant: %d %s, want 404", c.method, c.path, code, body)
		}
		if e.revision() != before {
			t.Errorf("%s %s by another tenant changed the store", c.method, c.path)
		}
	}
	if code, _ := e.raw("GET", "/v1.0/1234"+lb+"/metadata", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}

	// Deleted: 404.
	e.mustCall(202, "DELETE", lb, "")
	e.mustCall(200, "GET", lb+"/metadata", "") // PENDING_DELETE is not deleted yet
	e.activate()
	metaFault(t, e, 404, "GET", lb+"/metadata", "", "Load balancer not found")
	metaFault(t, e, 404, "POST", lb+"/metadata", `{"meta":{"key":"x","value":"y"}}`, "Load balancer not found")
}

func TestAllowedDomainsList(t *testing.T) {
	// Not configured: an empty list, and any domain name is accepted.
	e := newEnv(t, withManualActivation())
	code, body := e.raw("GET", "/v1.0/1234/loadbalancers/alloweddomains", e.token, "")
	if code != 200 || strings.TrimSpace(string(body)) != `{"allowedDomains":[]}` {
		t.Errorf("no allowed domains: %d %s, want 200 {\"allowedDomains\":[]}", code, body)
	}
	e.mustCall(200, "GET", "/loadbalancers/alloweddomains.json", "")
	if code, _ := e.raw("GET", "/v1.0/1234/loadbalancers/alloweddomains", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	id := e.createLB(`{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"nodes":[{"address":"www.example.net","port":80,"condition":"ENABLED"}]}}`)
	e.activate()
	e.mustCall(202, "POST", "/loadbalancers/"+itoa(id)+"/nodes", `{"nodes":[{"address":"db.internal","port":5432,"condition":"ENABLED"}]}`)

	// Configured as the reference's example shows them.
	e = newEnv(t, withAllowedDomains("rackspace.com", "randomsite.org", "org"))
	code, body = e.raw("GET", "/v1.0/1234/loadbalancers/alloweddomains", e.token, "")
	var got, want any
	_ = json.Unmarshal(body, &got)
	_ = json.Unmarshal([]byte(`{
        "allowedDomains":[
            {"allowedDomain":{
                "name":"rackspace.com"}},
            {"allowedDomain":{
                "name":"randomsite.org"}},
            {"allowedDomain":{
                "name":"org"}}
        ]
    }`), &want)
	if code != 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("allowed domains: %d %s, want the reference's example", code, body)
	}
}

// With allowed domains configured, a node's domain name must be one of
// them or a name under one (IP addresses are not concerned).
func TestAllowedDomainsEnforced(t *testing.T) {
	domains, err := api.ParseAllowedDomains(" Rackspace.com, .example.org ,,")
	if err != nil || !reflect.DeepEqual(domains, []string{"rackspace.com", "example.org"}) {
		t.Fatalf("ParseAllowedDomains: %v %v", domains, err)
	}
	for _, bad := range []string{"exa mple.com", "-bad.com", "1.2.3.4", "a..b"} {
		if _, err := api.ParseAllowedDomains("rackspace.com," + bad); err == nil {
			t.Errorf("ParseAllowedDomains accepted %q", bad)
		}
	}
	e := newEnv(t, withManualActivation(), withAllowedDomains(domains...))
	names := e.mustCall(200, "GET", "/loadbalancers/alloweddomains", "")["allowedDomains"].([]any)
	if len(names) != 2 || names[0].(map[string]any)["allowedDomain"].(map[string]any)["name"] != "rackspace.com" {
		t.Errorf("allowed domains %v", names)
	}

	lbWith := func(address string) string {
		return `{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
			"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"},
				{"address":"` + address + `","port":80,"condition":"ENABLED"}]}}`
	}
	metaFault(t, e, 400, "POST", "/loadbalancers", lbWith("www.example.com"), "loadBalancer.nodes[1].address")
	id := e.createLB(lbWith("web1.rackspace.com"))
	e.activate()
	nodes := "/loadbalancers/" + itoa(id) + "/nodes"

	for _, bad := range []string{"evilrackspace.com", "rackspace.com.evil.net", "example.com", "org", "localhost"} {
		metaFault(t, e, 400, "POST", nodes, `{"nodes":[{"address":"10.2.2.2","port":80,"condition":"ENABLED"},
			{"address":"`+bad+`","port":81,"condition":"ENABLED"}]}`, "nodes[1].address")
	}
	for i, good := range []string{"rackspace.com", "WWW.Rackspace.COM", "api.example.org", "a.b.example.org.", "10.2.2.2", "fd00::1"} {
		e.mustCall(202, "POST", nodes, `{"nodes":[{"address":"`+good+`","port":`+itoa(1000+i)+`,"condition":"ENABLED"}]}`)
		e.activate()
	}
	// An address that is not a domain name at all keeps its own message.
	out := metaFault(t, e, 400, "POST", nodes, `{"nodes":[{"address":"not a name","port":80,"condition":"ENABLED"}]}`, "nodes[0].address")
	if msgs := validationMessages(out); len(msgs) != 1 || !strings.Contains(msgs[0], "not a valid IP address or domain name") {
		t.Errorf("invalid address: %v, want one message", msgs)
	}
}
