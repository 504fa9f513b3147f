package gateway_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/pgtest"
)

// The README's walk-through: token, create a load balancer with two nodes,
// read it back. It runs on SQLite and on Postgres.
func TestWalkThrough(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { walkThrough(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { walkThrough(t, newEnv(t, withDatabase(pgtest.NewDatabase(t)))) })
}

func walkThrough(t *testing.T, e *env) {
	out := e.mustCall(202, "POST", "/loadbalancers", `{"loadBalancer": {
		"name": "a-new-loadbalancer", "port": 80, "protocol": "HTTP",
		"virtualIps": [{"type": "PUBLIC"}],
		"nodes": [
			{"address": "10.1.1.1", "port": 80, "condition": "ENABLED"},
			{"address": "10.1.1.2", "port": 80, "condition": "ENABLED"}]}}`)
	lb := out["loadBalancer"].(map[string]any)
	if lb["status"] != "BUILD" || lb["name"] != "a-new-loadbalancer" || lb["algorithm"] != "RANDOM" ||
		lb["timeout"] != 30.0 || lb["halfClosed"] != false || lb["port"] != 80.0 {
		t.Errorf("create answered %v", lb)
	}
	vips := lb["virtualIps"].([]any)
	if len(vips) != 2 {
		t.Fatalf("a PUBLIC virtual IP without version gives IPv4 and IPv6, got %v", vips)
	}
	v4, v6 := vips[0].(map[string]any), vips[1].(map[string]any)
	if v4["ipVersion"] != "IPV4" || v4["type"] != "PUBLIC" || !strings.HasPrefix(v4["address"].(string), "127.1.0.") {
		t.Errorf("IPv4 VIP %v", v4)
	}
	if v6["ipVersion"] != "IPV6" || v6["address"] != "fd00:1ba5:0000:0000:0000:0000:0000:0001" {
		t.Errorf("IPv6 VIP %v (want the full form)", v6)
	}
	for _, key := range []string{"created", "updated"} {
		if ts, _ := lb[key].(map[string]any)["time"].(string); len(ts) != len("2011-04-13T14:18:07Z") || !strings.HasSuffix(ts, "Z") {
			t.Errorf("%s = %v, want {\"time\": \"YYYY-MM-DDThh:mm:ssZ\"}", key, lb[key])
		}
	}
	id := int(lb["id"].(float64))

	got := e.waitStatus(id, "ACTIVE")
	nodes := got["nodes"].([]any)
	if len(nodes) != 2 || got["nodeCount"] != 2.0 {
		t.Fatalf("nodes %v", got["nodes"])
	}
	n := nodes[0].(map[string]any)
	want := map[string]any{"id": n["id"], "address": "10.1.1.1", "port": 80.0, "condition": "ENABLED",
		"status": "ONLINE", "weight": 1.0, "type": "PRIMARY", "metadata": []any{}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("node %v, want %v", n, want)
	}
	if got["cluster"].(map[string]any)["name"] != "default" || got["connectionLogging"].(map[string]any)["enabled"] != false {
		t.Errorf("details %v", got)
	}

	list := e.mustCall(200, "GET", "/loadbalancers", "")["loadBalancers"].([]any)
	if len(list) != 1 {
		t.Fatalf("list %v", list)
	}
	short := list[0].(map[string]any)
	if short["nodeCount"] != 2.0 || short["nodes"] != nil || short["virtualIps"] == nil {
		t.Errorf("list shows the short form with nodeCount and virtualIps: %v", short)
	}
}

func TestStatusCodesAndEmptyBodies(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	e.waitStatus(id, "ACTIVE")

	code, hdr, body := e.rawHeaders("PUT", "/v1.0/1234/loadbalancers/"+itoa(id), e.token, `{"loadBalancer":{"name":"renamed","timeout":60}}`)
	if code != 202 || len(body) != 0 || hdr.Get("Content-Type") != "" {
		t.Errorf("update: %d %q content-type %q, want 202 with no body", code, body, hdr.Get("Content-Type"))
	}
	lb := e.waitStatus(id, "ACTIVE")
	if lb["name"] != "renamed" || lb["timeout"] != 60.0 {
		t.Errorf("update not applied: %v", lb)
	}

	code, body = e.raw("DELETE", "/v1.0/1234/loadbalancers/"+itoa(id), e.token, "")
	if code != 202 || len(body) != 0 {
		t.Errorf("delete: %d %q", code, body)
	}
}

func TestUpdateMovesToPendingUpdateAndIsImmutableUntilApplied(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	path := "/loadbalancers/" + itoa(id)

	// BUILD: every mutation is refused with 422 immutableEntity.
	out := e.mustCall(422, "PUT", path, `{"loadBalancer":{"name":"x"}}`)
	if out["code"] != 422.0 || !strings.Contains(out["message"].(string), "BUILD") {
		t.Errorf("fault %v", out)
	}
	e.mustCall(422, "DELETE", path, "")
	e.mustCall(422, "POST", path+"/nodes", `{"nodes":[{"address":"10.0.0.9","port":80,"condition":"ENABLED"}]}`)

	e.activate()
	e.mustCall(202, "PUT", path, `{"loadBalancer":{"algorithm":"ROUND_ROBIN"}}`)
	lb := e.mustCall(200, "GET", path, "")["loadBalancer"].(map[string]any)
	if lb["status"] != "PENDING_UPDATE" || lb["algorithm"] != "ROUND_ROBIN" {
		t.Errorf("after update: %v", lb)
	}
	e.mustCall(422, "PUT", path, `{"loadBalancer":{"name":"y"}}`)

	e.activate()
	e.mustCall(202, "DELETE", path, "")
	if lb := e.mustCall(200, "GET", path, "")["loadBalancer"].(map[string]any); lb["status"] != "PENDING_DELETE" {
		t.Errorf("after delete: %v", lb)
	}
	e.activate()
	e.mustCall(404, "GET", path, "")
	if list := e.mustCall(200, "GET", "/loadbalancers", "")["loadBalancers"].([]any); len(list) != 0 {
		t.Errorf("a deleted load balancer is not listed by default: %v", list)
	}
	deleted := e.mustCall(200, "GET", "/loadbalancers?status=DELETED", "")["loadBalancers"].([]any)
	if len(deleted) != 1 || deleted[0].(map[string]any)["status"] != "DELETED" {
		t.Errorf("?status=DELETED lists it: %v", deleted)
	}
}

// Every bad request answers 400 badRequest with a message naming the field,
// and changes nothing.
func TestCreateFaults(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("n", 129)
	cases := []struct {
		name, body, field string
	}{
		{"malformed JSON", `{"loadBalancer": {"name": "x"`, "unexpected"},
		{"trailing data", simpleLB + `{}`, ""},
		{"empty body", ``, "loadBalancer"},
		{"wrong type", `{"loadBalancer":{"name":"x","port":"eighty","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}]}}`, "port"},
		{"name not a string", `{"loadBalancer":{"name":5,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}]}}`, "name"},
		{"unknown field", `{"loadBalancer":{"name":"x","protocol":"HTTP","colour":"red","virtualIps":[{"type":"PUBLIC"}]}}`, "colour"},
		{"read-only field", `{"loadBalancer":{"name":"x","protocol":"HTTP","status":"ACTIVE","virtualIps":[{"type":"PUBLIC"}]}}`, "status"},
		{"unknown protocol", `{"loadBalancer":{"name":"x","protocol":"HTTPX","virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.protocol"},
		{"unknown algorithm", `{"loadBalancer":{"name":"x","protocol":"HTTP","algorithm":"FASTEST","virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.algorithm"},
		{"missing name", `{"loadBalancer":{"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.name"},
		{"name too long", `{"loadBalancer":{"name":"` + long + `","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.name"},
		{"port out of range", `{"loadBalancer":{"name":"x","protocol":"HTTP","port":70000,"virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.port"},
		{"negative port", `{"loadBalancer":{"name":"x","protocol":"HTTP","port":-1,"virtualIps":[{"type":"PUBLIC"}]}}`, "port"},
		{"TCP needs a port", `{"loadBalancer":{"name":"x","protocol":"TCP","virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.port"},
		{"timeout too long", `{"loadBalancer":{"name":"x","protocol":"HTTP","timeout":121,"virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.timeout"},
		{"no virtual IP", `{"loadBalancer":{"name":"x","protocol":"HTTP"}}`, "loadBalancer.virtualIps"},
		{"unknown VIP type", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PRIVATE"}]}}`, "loadBalancer.virtualIps[0].type"},
		{"IPv6 on ServiceNet", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"SERVICENET","ipVersion":"IPV6"}]}}`, "loadBalancer.virtualIps[0].ipVersion"},
		{"unknown shared VIP", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"id":999}]}}`, "loadBalancer.virtualIps[0].id"},
		{"bad node IP", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.300","port":80,"condition":"ENABLED"}]}}`, "loadBalancer.nodes[0].address"},
		{"node port zero", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.1","port":0,"condition":"ENABLED"}]}}`, "loadBalancer.nodes[0].port"},
		{"unknown node condition", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.1","port":80,"condition":"ON"}]}}`, "loadBalancer.nodes[0].condition"},
		{"weight too big", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED","weight":101}]}}`, "loadBalancer.nodes[0].weight"},
		{"duplicate nodes", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"},{"address":"10.1.1.1","port":80,"condition":"ENABLED"}]}}`, "loadBalancer.nodes[1]"},
		{"halfClosed on HTTP", `{"loadBalancer":{"name":"x","protocol":"HTTP","halfClosed":true,"virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.halfClosed"},
		{"httpsRedirect on HTTP", `{"loadBalancer":{"name":"x","protocol":"HTTP","httpsRedirect":true,"virtualIps":[{"type":"PUBLIC"}]}}`, "loadBalancer.httpsRedirect"},
		{"bad access list CIDR", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"accessList":[{"address":"1.2.3.4/33","type":"DENY"}]}}`, "loadBalancer.accessList[0].address"},
		{"bad health monitor", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"healthMonitor":{"type":"HTTP","delay":0,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"("}}}`, "loadBalancer.healthMonitor.delay"},
		{"cookie persistence on TCP", `{"loadBalancer":{"name":"x","protocol":"TCP","port":99,"virtualIps":[{"type":"PUBLIC"}],"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}}`, "loadBalancer.sessionPersistence.persistenceType"},
		{"NUL in a name", `{"loadBalancer":{"name":"a\u0000b","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}]}}`, "NUL"},
		{"NUL in a nested string", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"metadata":[{"key":"k","value":"\u0000"}]}}`, "NUL"},
		{"oversized body", `{"loadBalancer":{"name":"` + strings.Repeat("x", 2<<20) + `"}}`, "too large"},
	}
	before := e.revision()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := e.call("POST", "/loadbalancers", c.body)
			if code != 400 || out["code"] != 400.0 || out["message"] != "Validation Failure" || out["details"] != "The object is not valid" {
				t.Fatalf("got %d %v, want the 400 badRequest fault", code, out)
			}
			msgs := validationMessages(out)
			if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, "\n"), c.field) {
				t.Errorf("validation messages %q do not name %q", msgs, c.field)
			}
		})
	}
	if after := e.revision(); after != before {
		t.Errorf("bad requests changed the store: revision %d -> %d", before, after)
	}
	if list := e.mustCall(200, "GET", "/loadbalancers", "")["loadBalancers"].([]any); len(list) != 0 {
		t.Errorf("bad requests created %v", list)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	other := e.login("mallory", "5678")

	for _, c := range []struct {
		name, path, token string
		want              int
	}{
		{"no token", "/v1.0/1234/loadbalancers", "", 401},
		{"unknown token", "/v1.0/1234/loadbalancers", "not-a-token", 401},
		{"another tenant's account", "/v1.0/1234/loadbalancers/" + itoa(id), other, 404},
		{"another tenant's account list", "/v1.0/1234/loadbalancers", other, 404},
		{"own account, other's id", "/v1.0/5678/loadbalancers/" + itoa(id), other, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.raw("GET", c.path, c.token, "")
			if code != c.want {
				t.Fatalf("got %d %s, want %d", code, body, c.want)
			}
			if code == 401 && len(body) != 0 {
				t.Errorf("401 has no body per the reference, got %q", body)
			}
		})
	}
	// The other tenant cannot change it either, and learns nothing.
	code, _ := e.raw("DELETE", "/v1.0/5678/loadbalancers/"+itoa(id), other, "")
	if code != 404 {
		t.Errorf("delete of another tenant's load balancer: %d", code)
	}
	e.mustCall(200, "GET", "/loadbalancers/"+itoa(id), "")
}

func TestIdentity(t *testing.T) {
	e := newEnv(t)
	key, err := e.srv.Auth.CreateUser(t.Context(), "bob", "777", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	code, body := e.raw("POST", "/v2.0/tokens", "", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"bob","apiKey":"`+key+`"}}}`)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var resp struct {
		Access struct {
			Token struct {
				ID      string `json:"id"`
				Expires string `json:"expires"`
				Tenant  struct{ ID, Name string }
				By      []string `json:"RAX-AUTH:authenticatedBy"`
			} `json:"token"`
			ServiceCatalog []struct {
				Name, Type string
				Endpoints  []struct{ PublicURL, Region, TenantID string }
			} `json:"serviceCatalog"`
		} `json:"access"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	tok := resp.Access.Token
	if tok.ID == "" || tok.Tenant.ID != "777" || tok.Tenant.Name != "777" || len(tok.By) != 1 || tok.By[0] != "APIKEY" {
		t.Errorf("token %+v", tok)
	}
	cat := resp.Access.ServiceCatalog
	if len(cat) != 1 || cat[0].Name != "cloudLoadBalancers" || cat[0].Type != "rax:load-balancer" ||
		cat[0].Endpoints[0].PublicURL != e.base+"/v1.0/777" || cat[0].Endpoints[0].Region != "TEST" {
		t.Errorf("catalog %+v", cat)
	}
	// The token works on its tenant's endpoint, as the catalog says.
	if code, b := e.raw("GET", "/v1.0/777/loadbalancers", tok.ID, ""); code != 200 {
		t.Errorf("using the token: %d %s", code, b)
	}

	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"password", `{"auth":{"passwordCredentials":{"username":"bob","password":"s3cret"}}}`, 200},
		{"wrong password", `{"auth":{"passwordCredentials":{"username":"bob","password":"nope"}}}`, 401},
		{"wrong key", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"bob","apiKey":"00"}}}`, 401},
		{"unknown user", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"eve","apiKey":"00"}}}`, 401},
		{"wrong tenant", `{"auth":{"tenantName":"1","RAX-KSKEY:apiKeyCredentials":{"username":"bob","apiKey":"` + key + `"}}}`, 401},
		{"malformed", `{"auth":`, 400},
		{"no credentials", `{"auth":{}}`, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, b := e.raw("POST", "/v2.0/tokens", "", c.body); code != c.want {
				t.Errorf("got %d %s, want %d", code, b, c.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	limits := api.DefaultLimits
	limits.LoadBalancers, limits.Nodes = 2, 3
	e := newEnv(t, withLimits(limits))

	abs := e.mustCall(200, "GET", "/loadbalancers/absolutelimits", "")["absolute"].([]any)
	values := map[string]float64{}
	for _, l := range abs {
		m := l.(map[string]any)
		values[m["name"].(string)] = m["value"].(float64)
	}
	want := map[string]float64{"IPV6_LIMIT": 25, "LOADBALANCER_LIMIT": 2, "BATCH_DELETE_LIMIT": 10, "ACCESS_LIST_LIMIT": 100,
		"NODE_LIMIT": 3, "NODE_META_LIMIT": 25, "CERTIFICATE_MAPPING_LIMIT": 20, "LOADBALANCER_META_LIMIT": 25}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("absolute limits %v, want %v", values, want)
	}

	id := e.createLB(simpleLB)
	e.createLB(simpleLB)
	out := e.mustCall(413, "POST", "/loadbalancers", simpleLB)
	if out["code"] != 413.0 || !strings.Contains(out["message"].(string), "LOADBALANCER_LIMIT") {
		t.Errorf("over the load balancer limit: %v", out)
	}

	e.waitStatus(id, "ACTIVE")
	before := e.revision()
	three := `{"nodes":[{"address":"10.0.0.2","port":80,"condition":"ENABLED"},{"address":"10.0.0.3","port":80,"condition":"ENABLED"},{"address":"10.0.0.4","port":80,"condition":"ENABLED"}]}`
	out = e.mustCall(413, "POST", "/loadbalancers/"+itoa(id)+"/nodes", three)
	if !strings.Contains(out["message"].(string), "NODE_LIMIT") {
		t.Errorf("over the node limit: %v", out)
	}
	if e.revision() != before {
		t.Error("a refused request changed the store")
	}
}

func TestOutOfVirtualIPs(t *testing.T) {
	e := newEnv(t, withPools("PUBLIC=127.1.0.0/30"))
	v4 := `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`
	e.createLB(v4)
	e.createLB(v4)
	out := e.mustCall(500, "POST", "/loadbalancers", v4)
	if !strings.Contains(out["message"].(string), "Out of virtual IPs") {
		t.Errorf("fault %v", out)
	}
	// A pool this deployment lacks is the customer's mistake, not an outage.
	out = e.mustCall(400, "POST", "/loadbalancers", `{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"SERVICENET"}]}}`)
	if !strings.Contains(strings.Join(validationMessages(out), ""), "virtualIps[0]") {
		t.Errorf("fault %v", out)
	}
}

func TestDatabaseOutageIsServiceUnavailable(t *testing.T) {
	e := newEnv(t)
	e.mustCall(200, "GET", "/loadbalancers", "") // caches the token
	if err := e.srv.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/loadbalancers", ""},
		{"POST", "/loadbalancers", simpleLB},
		{"GET", "/loadbalancers/1", ""},
	} {
		out := e.mustCall(503, c.method, c.path, c.body)
		if out["code"] != 503.0 || out["message"] != "The Load balancing service is currently not available" {
			t.Errorf("%s %s: %v", c.method, c.path, out)
		}
	}
	if code, _ := e.raw("GET", "/readyz", "", ""); code != 503 {
		t.Errorf("/readyz with the database down: %d", code)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	e := newEnv(t)
	var ids []int
	for i := 0; i < 5; i++ {
		name := "lb" + itoa(i)
		node := "10.0.0." + itoa(i+1)
		ids = append(ids, e.createLB(`{"loadBalancer":{"name":"`+name+`","protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
			"nodes":[{"address":"`+node+`","port":80,"condition":"ENABLED"}]}}`))
	}
	page := func(query string) []int {
		list := e.mustCall(200, "GET", "/loadbalancers"+query, "")["loadBalancers"].([]any)
		out := []int{}
		for _, lb := range list {
			out = append(out, int(lb.(map[string]any)["id"].(float64)))
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []int
	}{
		{"", ids},
		{"?limit=2", ids[:2]},
		{"?limit=1000", ids},
		{"?marker=" + itoa(ids[2]) + "&limit=2", ids[2:4]},
		{"?offset=1&limit=1", ids[1:2]},
		{"?marker=99999", []int{}},
		{"?name=lb3", ids[3:4]},
		{"?nodeaddress=10.0.0.2", ids[1:2]},
		{"?nodeaddress=10.0.0.2&name=lb3", ids[1:2]},
		{"?changes-since=2000-01-01T00:00:00-0500", ids},
		{"?changes-since=2999-01-01T00:00:00Z", []int{}},
	} {
		if got := page(c.query); !reflect.DeepEqual(got, c.want) {
			t.Errorf("GET /loadbalancers%s = %v, want %v", c.query, got, c.want)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=abc", "?offset=-1", "?status=SLEEPING", "?changes-since=yesterday", "?marker=x"} {
		if code, out := e.call("GET", "/loadbalancers"+q, ""); code != 400 {
			t.Errorf("GET /loadbalancers%s = %d %v, want 400", q, code, out)
		}
	}
}

func TestCatalog(t *testing.T) {
	e := newEnv(t)
	protocols := e.mustCall(200, "GET", "/loadbalancers/protocols", "")["protocols"].([]any)
	ports := map[string]float64{}
	for _, p := range protocols {
		m := p.(map[string]any)
		ports[m["name"].(string)] = m["port"].(float64)
	}
	for name, port := range map[string]float64{"HTTP": 80, "HTTPS": 443, "TCP": 0, "DNS_UDP": 53, "MYSQL": 3306, "SFTP": 22, "UDP_STREAM": 0} {
		if got, ok := ports[name]; !ok || got != port {
			t.Errorf("protocol %s port %v (listed %v), want %v", name, got, ok, port)
		}
	}
	algorithms := e.mustCall(200, "GET", "/loadbalancers/algorithms", "")["algorithms"].([]any)
	if len(algorithms) != 5 || algorithms[0].(map[string]any)["name"] != "LEAST_CONNECTIONS" {
		t.Errorf("algorithms %v", algorithms)
	}
	// The .json suffix is the reference's way of asking for JSON.
	e.mustCall(200, "GET", "/loadbalancers/algorithms.json", "")
}

func TestBulkDeleteLoadBalancers(t *testing.T) {
	e := newEnv(t)
	a, b := e.createLB(simpleLB), e.createLB(simpleLB)
	e.waitStatus(a, "ACTIVE")
	e.waitStatus(b, "ACTIVE")
	before := e.revision()

	out := e.mustCall(400, "DELETE", "/loadbalancers?id="+itoa(a)+"&id=999", "")
	if !strings.Contains(strings.Join(validationMessages(out), ""), "999") {
		t.Errorf("fault names the missing id: %v", out)
	}
	e.mustCall(400, "DELETE", "/loadbalancers", "")
	e.mustCall(400, "DELETE", "/loadbalancers?id=1&id=2&id=3&id=4&id=5&id=6&id=7&id=8&id=9&id=10&id=11", "")
	if e.revision() != before {
		t.Fatal("a refused bulk delete changed the store (all or nothing)")
	}
	e.mustCall(202, "DELETE", "/loadbalancers?id="+itoa(a)+"&id="+itoa(b), "")
	e.mustCall(404, "GET", "/loadbalancers/"+itoa(e.waitDeleted(a)), "")
}

func (e *env) waitDeleted(id int) int {
	e.t.Helper()
	for i := 0; i < 1000; i++ {
		if code, _ := e.call("GET", "/loadbalancers/"+itoa(id), ""); code == 404 {
			return id
		}
	}
	e.t.Fatalf("load balancer %d was not deleted", id)
	return id
}

func TestUnknownPathsAndMethods(t *testing.T) {
	e := newEnv(t)
	out := e.mustCall(404, "GET", "/loadbalancers/1/nothing", "")
	if out["code"] != 404.0 {
		t.Errorf("%v", out)
	}
	if code, _ := e.call("PATCH", "/loadbalancers/1", `{}`); code != 405 && code != 404 {
		t.Errorf("PATCH: %d", code)
	}
	e.mustCall(404, "GET", "/loadbalancers/99999999999", "") // beyond any id
	out = e.mustCall(400, "GET", "/loadbalancers/abc", "")
	if !strings.Contains(strings.Join(validationMessages(out), ""), "loadBalancerId") {
		t.Errorf("fault names loadBalancerId: %v", out)
	}
}

func TestSourceAddresses(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	code, body := e.raw("GET", "/v1.0/1234/regionalsourceaddresses", e.token, "")
	if code != 200 || !strings.Contains(string(body), `"RegionalSourceAddresses"`) || !strings.Contains(string(body), `"ipv4Publicnets":["127.0.0.1"]`) {
		t.Errorf("regional source addresses: %d %s", code, body)
	}
	out := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/clustersourceaddresses", "")
	lists := out["clusterSourceAddresses"].(map[string]any)
	if v4 := lists["ipv4Publicnets"].([]any); len(v4) != 1 || v4[0] != "127.0.0.1" {
		t.Errorf("cluster source addresses %v", out)
	}
	e.mustCall(404, "GET", "/loadbalancers/99999/clustersourceaddresses", "")
}

// The account-level paths of usage and billing are not load balancer ids:
// they answer the account's usage, never a 400 about the id.
func TestAccountPathsAreNotIDs(t *testing.T) {
	e := newEnv(t)
	for p, key := range map[string]string{"/loadbalancers/billable": "loadBalancers", "/loadbalancers/usage": "accountUsage",
		"/loadbalancers/usage.json": "accountUsage"} {
		code, out := e.call("GET", p+"?startTime=2026-01-01&endTime=2026-01-02", "")
		if code != 200 || out[key] == nil {
			t.Errorf("GET %s: %d %v, want the account's %s", p, code, out, key)
		}
	}
}
