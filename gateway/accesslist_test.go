package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/internal/pgtest"
)

// accessListOf is GET .../accesslist, decoded.
func accessListOf(t *testing.T, e *env, lb string) []map[string]any {
	t.Helper()
	out := e.mustCall(200, "GET", lb+"/accesslist", "")
	raw, ok := out["accessList"].([]any)
	if !ok || len(out) != 1 {
		t.Fatalf("GET accesslist: %v, want {\"accessList\": [...]}", out)
	}
	items := make([]map[string]any, len(raw))
	for i, r := range raw {
		items[i] = r.(map[string]any)
	}
	return items
}

func networkItemID(item map[string]any) string { return itoa(int(item["id"].(float64))) }

func featureLBStatus(t *testing.T, e *env, lb string) string {
	t.Helper()
	return e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)["status"].(string)
}

// featureFault checks that a request is refused with code, naming field in
// its validation messages (400) or message (others), and changes nothing.
func featureFault(t *testing.T, e *env, code int, method, path, body, field string) map[string]any {
	t.Helper()
	before := e.revision()
	out := e.mustCall(code, method, path, body)
	text := out["message"].(string) + " " + strings.Join(validationMessages(out), " | ")
	if out["code"] != float64(code) || !strings.Contains(text, field) {
		t.Errorf("%s %s %s: fault %v does not name %q", method, path, body, out, field)
	}
	if e.revision() != before {
		t.Errorf("%s %s %s: a refused request changed the store", method, path, body)
	}
	return out
}

// The reference's examples: an empty list, the POST example appended,
// then shown as {"accessList":[{"address","id","type"}]}.
func TestAccessListReferenceExamples(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	code, body := e.raw("GET", "/v1.0/1234"+lb+"/accesslist", e.token, "")
	if code != 200 || strings.TrimSpace(string(body)) != `{"accessList":[]}` {
		t.Fatalf("empty access list: %d %s, want 200 {\"accessList\":[]}", code, body)
	}

	code, hdr, body := e.rawHeaders("POST", "/v1.0/1234"+lb+"/accesslist", e.token, `{
		"accessList": [
			{"address": "206.160.163.21", "type": "DENY"},
			{"address": "206.160.165.11", "type": "DENY"}
		]
	}`)
	if code != 202 || len(body) != 0 || hdr.Get("Content-Type") != "" {
		t.Fatalf("POST accesslist: %d %q content-type %q, want 202 with no body", code, body, hdr.Get("Content-Type"))
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after POST accesslist the load balancer is %s, want PENDING_UPDATE", st)
	}
	items := accessListOf(t, e, lb)
	if len(items) != 2 {
		t.Fatalf("access list %v", items)
	}
	for i, want := range []string{"206.160.163.21", "206.160.165.11"} {
		it := items[i]
		if len(it) != 3 || it["address"] != want || it["type"] != "DENY" || it["id"] == nil {
			t.Errorf("item %d: %v, want {address: %s, id, type: DENY}", i, it, want)
		}
	}
	// The details show the same list.
	details := e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)
	if got, _ := json.Marshal(details["accessList"]); !strings.Contains(string(got), "206.160.165.11") {
		t.Errorf("details accessList %s", got)
	}

	// A second POST appends to the list.
	e.activate()
	e.mustCall(202, "POST", lb+"/accesslist", `{"accessList":[{"address":"206.160.165.0/24","type":"ALLOW"},{"address":"0.0.0.0/0","type":"DENY"}]}`)
	items = accessListOf(t, e, lb)
	if len(items) != 4 || items[2]["address"] != "206.160.165.0/24" || items[2]["type"] != "ALLOW" || items[3]["address"] != "0.0.0.0/0" {
		t.Errorf("after appending: %v", items)
	}

	e.mustCall(404, "GET", "/loadbalancers/99999/accesslist", "")
	e.mustCall(404, "POST", "/loadbalancers/99999/accesslist", `{"accessList":[{"address":"10.0.0.1","type":"DENY"}]}`)
}

func TestAccessListValidation(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	// Addresses are stored canonical: networks masked, IPv6 lower case.
	e.mustCall(202, "POST", lb+"/accesslist", `{"accessList":[
		{"address":"10.1.2.3/8","type":"ALLOW"},
		{"address":"2001:DB8:0:0::1","type":"DENY"},
		{"address":"192.168.7.7","type":"DENY"}]}`)
	e.activate()
	items := accessListOf(t, e, lb)
	if len(items) != 3 || items[0]["address"] != "10.0.0.0/8" || items[1]["address"] != "2001:db8::1" {
		t.Errorf("canonical addresses: %v", items)
	}

	for _, c := range []struct{ name, body, field string }{
		{"no body", ``, "accessList"},
		{"no items", `{"accessList":[]}`, "accessList"},
		{"bad address", `{"accessList":[{"address":"10.0.0.300","type":"DENY"}]}`, "accessList[0].address"},
		{"bad CIDR", `{"accessList":[{"address":"10.0.0.0/33","type":"DENY"}]}`, "accessList[0].address"},
		{"host name", `{"accessList":[{"address":"www.example.com","type":"DENY"}]}`, "accessList[0].address"},
		{"no address", `{"accessList":[{"type":"DENY"}]}`, "accessList[0].address"},
		{"bad type", `{"accessList":[{"address":"10.9.9.9","type":"REJECT"}]}`, "accessList[0].type"},
		{"no type", `{"accessList":[{"address":"10.9.9.9"}]}`, "accessList[0].type"},
		{"id given", `{"accessList":[{"id":7,"address":"10.9.9.9","type":"DENY"}]}`, "accessList[0].id"},
		{"second item bad", `{"accessList":[{"address":"10.9.9.9","type":"DENY"},{"address":"x","type":"DENY"}]}`, "accessList[1].address"},
		{"repeated in request", `{"accessList":[{"address":"10.9.9.9","type":"DENY"},{"address":"10.9.9.9","type":"ALLOW"}]}`, "accessList[1].address"},
		{"repeated, other spelling", `{"accessList":[{"address":"10.9.9.0/24","type":"DENY"},{"address":"10.9.9.7/24","type":"ALLOW"}]}`, "accessList[1].address"},
		{"already in the list", `{"accessList":[{"address":"10.9.9.9","type":"DENY"},{"address":"192.168.7.7","type":"ALLOW"}]}`, "accessList[1].address"},
		{"already in the list as a /32", `{"accessList":[{"address":"192.168.7.7/32","type":"DENY"}]}`, "accessList[0].address"},
		{"already in the list, unmasked", `{"accessList":[{"address":"10.200.0.1/8","type":"DENY"}]}`, "accessList[0].address"},
		{"unknown field", `{"accessList":[{"address":"10.9.9.9","type":"DENY","weight":1}]}`, "weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			featureFault(t, e, 400, "POST", lb+"/accesslist", c.body, c.field)
		})
	}
	if items := accessListOf(t, e, lb); len(items) != 3 {
		t.Errorf("refused appends changed the list: %v", items)
	}
	if st := featureLBStatus(t, e, lb); st != "ACTIVE" {
		t.Errorf("refused appends changed the status to %s", st)
	}
}

func TestAccessListLimit(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	items := func(from, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"address":"10.0.%d.%d","type":"DENY"}`, (from+i)/256, (from+i)%256)
		}
		return `{"accessList":[` + strings.Join(parts, ",") + `]}`
	}
	// More than ACCESS_LIST_LIMIT (100) in one request.
	featureFault(t, e, 413, "POST", lb+"/accesslist", items(0, 101), "ACCESS_LIST_LIMIT")
	// Up to the limit in two requests, then one more is over it.
	e.mustCall(202, "POST", lb+"/accesslist", items(0, 60))
	e.activate()
	e.mustCall(202, "POST", lb+"/accesslist", items(60, 40))
	e.activate()
	if got := accessListOf(t, e, lb); len(got) != 100 {
		t.Fatalf("%d items, want 100", len(got))
	}
	out := featureFault(t, e, 413, "POST", lb+"/accesslist", items(100, 1), "ACCESS_LIST_LIMIT")
	if out["code"] != 413.0 {
		t.Errorf("over limit fault %v", out)
	}
	// Room is made by deleting.
	e.mustCall(202, "DELETE", lb+"/accesslist/"+networkItemID(accessListOf(t, e, lb)[0]), "")
	e.activate()
	e.mustCall(202, "POST", lb+"/accesslist", items(100, 1))
}

func TestAccessListDeletes(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { accessListDeletes(t, newEnv(t, withManualActivation())) })
	t.Run("postgres", func(t *testing.T) {
		accessListDeletes(t, newEnv(t, withManualActivation(), withDatabase(pgtest.NewDatabase(t))))
	})
}

func accessListDeletes(t *testing.T, e *env) {
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	var parts []string
	for i := 1; i <= 12; i++ {
		parts = append(parts, fmt.Sprintf(`{"address":"10.0.0.%d","type":"DENY"}`, i))
	}
	e.mustCall(202, "POST", lb+"/accesslist", `{"accessList":[`+strings.Join(parts, ",")+`]}`)
	e.activate()
	items := accessListOf(t, e, lb)
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = networkItemID(it)
	}

	// Bulk delete: all or nothing, naming the ids that are not there.
	out := featureFault(t, e, 400, "DELETE", lb+"/accesslist?id="+ids[0]+"&id=99998&id=99999", "", "id")
	if msg := strings.Join(validationMessages(out), " "); !strings.Contains(msg, "99998,99999") {
		t.Errorf("bulk delete fault does not name the unknown ids: %v", out)
	}
	// At most BATCH_DELETE_LIMIT (10) ids.
	featureFault(t, e, 400, "DELETE", lb+"/accesslist?id="+strings.Join(ids[:11], "&id="), "", "BATCH_DELETE_LIMIT")
	if got := accessListOf(t, e, lb); len(got) != 12 {
		t.Fatalf("refused deletes removed items: %d left", len(got))
	}

	code, body := e.raw("DELETE", "/v1.0/1234"+lb+"/accesslist?id="+ids[0]+"&id="+ids[1], e.token, "")
	if code != 202 || len(body) != 0 {
		t.Fatalf("bulk delete: %d %q, want 202 with no body", code, body)
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after a bulk delete the load balancer is %s", st)
	}
	e.activate()
	if got := accessListOf(t, e, lb); len(got) != 10 || networkItemID(got[0]) != ids[2] {
		t.Errorf("after bulk delete: %v", got)
	}

	// Single delete; an unknown (or already deleted) item is 404.
	code, body = e.raw("DELETE", "/v1.0/1234"+lb+"/accesslist/"+ids[2], e.token, "")
	if code != 202 || len(body) != 0 {
		t.Fatalf("delete network item: %d %q, want 202 with no body", code, body)
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after deleting an item the load balancer is %s", st)
	}
	e.activate()
	featureFault(t, e, 404, "DELETE", lb+"/accesslist/"+ids[2], "", "not found")
	featureFault(t, e, 404, "DELETE", lb+"/accesslist/99999", "", "not found")
	if got := accessListOf(t, e, lb); len(got) != 9 {
		t.Errorf("after single delete: %d items", len(got))
	}

	// An item of another load balancer is not this one's.
	other := e.createLB(simpleLB)
	e.activate()
	e.mustCall(202, "POST", "/loadbalancers/"+itoa(other)+"/accesslist", `{"accessList":[{"address":"172.16.0.1","type":"ALLOW"}]}`)
	e.activate()
	foreign := networkItemID(accessListOf(t, e, "/loadbalancers/"+itoa(other))[0])
	featureFault(t, e, 404, "DELETE", lb+"/accesslist/"+foreign, "", "not found")
	featureFault(t, e, 400, "DELETE", lb+"/accesslist?id="+foreign, "", foreign)

	// No id: the whole list goes.
	code, body = e.raw("DELETE", "/v1.0/1234"+lb+"/accesslist", e.token, "")
	if code != 202 || len(body) != 0 {
		t.Fatalf("delete access list: %d %q", code, body)
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after deleting the list the load balancer is %s", st)
	}
	e.activate()
	if got := accessListOf(t, e, lb); len(got) != 0 {
		t.Errorf("after deleting the list: %v", got)
	}
	if got := accessListOf(t, e, "/loadbalancers/"+itoa(other)); len(got) != 1 {
		t.Errorf("deleting one list touched another: %v", got)
	}
	// Deleting an empty list is accepted too (the reference names no fault for it).
	e.mustCall(202, "DELETE", lb+"/accesslist", "")
	e.activate()
	e.mustCall(404, "DELETE", "/loadbalancers/99999/accesslist", "")
}

// A busy load balancer (BUILD, PENDING_UPDATE) refuses access list changes
// with 422 and changes nothing; it can still be read.
func TestAccessListImmutableWhileBusy(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	lb := "/loadbalancers/" + itoa(id)

	add := `{"accessList":[{"address":"10.0.0.1","type":"DENY"}]}`
	for _, c := range []struct{ method, path, body string }{
		{"POST", lb + "/accesslist", add},
		{"DELETE", lb + "/accesslist", ""},
		{"DELETE", lb + "/accesslist?id=1", ""},
		{"DELETE", lb + "/accesslist/1", ""},
	} {
		featureFault(t, e, 422, c.method, c.path, c.body, "BUILD")
	}
	if got := accessListOf(t, e, lb); len(got) != 0 {
		t.Errorf("list %v", got)
	}
	e.activate()
	e.mustCall(202, "POST", lb+"/accesslist", add)
	featureFault(t, e, 422, "POST", lb+"/accesslist", `{"accessList":[{"address":"10.0.0.2","type":"DENY"}]}`, "PENDING_UPDATE")
	item := networkItemID(accessListOf(t, e, lb)[0])
	featureFault(t, e, 422, "DELETE", lb+"/accesslist/"+item, "", "PENDING_UPDATE")
	featureFault(t, e, 422, "DELETE", lb+"/accesslist", "", "PENDING_UPDATE")
	e.activate()
	e.mustCall(202, "DELETE", lb+"/accesslist/"+item, "")
}
