package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/openlbaas/lbaas/gateway"
	"github.com/openlbaas/lbaas/internal/server"
)

// httpRule is a "get: /v1.0/..." line of the gRPC-to-REST mapping.
var httpRule = regexp.MustCompile(`(?m)^\s+(get|post|put|delete|patch): (\S+)`)

// snakeParam is a path parameter as the mapping names it ({load_balancer_id}).
var snakeParam = regexp.MustCompile(`\{[a-z_]+\}`)

// servedRoutes are the routes of proto/lbaas/v1/http.yaml (what the
// gateway registers), as "METHOD /path/{camelCaseParam}", plus the routes
// the server adds beside the gateway.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../proto/lbaas/v1/http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := []string{"POST /v2.0/tokens", "GET " + gateway.OpenAPIPath}
	for _, m := range httpRule.FindAllStringSubmatch(string(raw), -1) {
		path := snakeParam.ReplaceAllStringFunc(m[2], func(p string) string {
			parts := strings.Split(strings.Trim(p, "{}"), "_")
			for i := 1; i < len(parts); i++ {
				parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
			}
			return "{" + strings.Join(parts, "") + "}"
		})
		routes = append(routes, strings.ToUpper(m[1])+" "+path)
	}
	if len(routes) < 50 {
		t.Fatalf("read %d routes from http.yaml", len(routes))
	}
	sort.Strings(routes)
	return routes
}

func loadOpenAPI(t *testing.T, e *env) *openapi3.T {
	t.Helper()
	code, h, body := e.request("GET", gateway.OpenAPIPath, nil)
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %q", gateway.OpenAPIPath, code, h.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load the served description: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served description is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// The description says what the gateway takes (bodies.go): a request body
// with or without its root wrapper.
func TestOpenAPIDescribesUnwrappedBodies(t *testing.T) {
	doc := loadOpenAPI(t, newEnv(t))
	for _, c := range []struct{ path, method, inner string }{
		{"/v1.0/{account}/loadbalancers", "POST", "#/components/schemas/LoadBalancerRequest"},
		{"/v1.0/{account}/loadbalancers/{loadBalancerId}/healthmonitor", "PUT", ""},
	} {
		item := doc.Paths.Find(c.path)
		if item == nil {
			t.Errorf("%s is not described", c.path)
			continue
		}
		op := item.GetOperation(c.method)
		mt := op.RequestBody.Value.Content.Get("application/json")
		forms := mt.Schema.Value.AnyOf
		if len(forms) < 2 || !strings.HasPrefix(forms[0].Ref, "#/components/schemas/") {
			t.Errorf("%s %s: the JSON body is not described as wrapped or not: %+v", c.method, c.path, mt.Schema.Value)
			continue
		}
		if c.inner != "" && forms[1].Ref != c.inner {
			t.Errorf("%s %s: the unwrapped form is %q, want %q", c.method, c.path, forms[1].Ref, c.inner)
		}
	}
}

// TestOpenAPIDescribesEveryRoute: the served OpenAPI 3 description is
// valid, has every route of the gateway and no other, and every route it
// describes is served (the router answers it, whatever the service says).
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	doc := loadOpenAPI(t, e)
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	sort.Strings(described)
	served := servedRoutes(t)
	if strings.Join(described, "\n") != strings.Join(served, "\n") {
		t.Errorf("described routes:\n%s\n\nserved routes:\n%s", strings.Join(described, "\n"), strings.Join(served, "\n"))
	}

	ids := strings.NewReplacer("{account}", e.account, "{loadBalancerId}", "999999", "{nodeId}", "999999",
		"{virtualIpId}", "999999", "{networkItemId}", "999999", "{metaId}", "999999")
	for _, route := range described {
		method, path, _ := strings.Cut(route, " ")
		var body []byte
		if method == "POST" || method == "PUT" {
			body = []byte("{}")
		}
		code, _, out := e.request(method, ids.Replace(path), body, "Content-Type", "application/json")
		if code == http.StatusMethodNotAllowed || code == http.StatusNotFound && bytes.Contains(out, []byte("Resource not found")) {
			t.Errorf("%s is described but not served: %d %s", route, code, out)
		}
	}
}

// TestOpenAPIMatchesAnswers: the description's status codes, bodies and
// parameter names are what the server does.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	e := newEnv(t)
	doc := loadOpenAPI(t, e)
	op := func(method, path string) *openapi3.Operation {
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Fatalf("%s %s is not described", method, path)
		}
		return item.GetOperation(method)
	}
	success := func(o *openapi3.Operation) (int, *openapi3.Response) {
		for _, code := range []int{200, 202} {
			if r := o.Responses.Status(code); r != nil {
				return code, r.Value
			}
		}
		t.Fatalf("%s has no success response", o.OperationID)
		return 0, nil
	}

	lbs := "/v1.0/{account}/loadbalancers"
	lb := lbs + "/{loadBalancerId}"
	code, _, body := e.request("POST", "/v1.0/1234/loadbalancers", []byte(simpleLB), "Content-Type", "application/json")
	if want, resp := success(op("POST", lbs)); code != want || resp.Content.Get("application/json") == nil || resp.Content.Get("application/xml") == nil {
		t.Errorf("create: served %d, described %d %v", code, want, resp.Content)
	}
	var created struct {
		LoadBalancer struct{ ID int } `json:"loadBalancer"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	id := itoa(created.LoadBalancer.ID)
	e.waitStatus(created.LoadBalancer.ID, "ACTIVE")
	code, _, _ = e.request("GET", "/v1.0/1234/loadbalancers/"+id, nil)
	if want, _ := success(op("GET", lb)); code != want {
		t.Errorf("show: served %d, described %d", code, want)
	}
	// Its XML is described: the root element, and attributes as attributes.
	_, _, body = e.request("GET", "/v1.0/1234/loadbalancers/"+id+".xml", nil)
	var root struct {
		XMLName xml.Name
		Attrs   []xml.Attr `xml:",any,attr"`
	}
	if err := xml.Unmarshal(body, &root); err != nil {
		t.Fatalf("XML load balancer %s: %v", body, err)
	}
	_, resp := success(op("GET", lb))
	described := resp.Content.Get("application/xml").Schema.Value
	if described.XML == nil || described.XML.Name != root.XMLName.Local || len(described.AllOf) != 1 {
		t.Fatalf("XML of show described as %+v, served root <%s>", described, root.XMLName.Local)
	}
	for _, a := range root.Attrs {
		prop := described.AllOf[0].Value.Properties[a.Name.Local]
		if a.Name.Space == "" && a.Name.Local != "xmlns" && (prop == nil || prop.Value.XML == nil || !prop.Value.XML.Attribute) {
			t.Errorf("attribute %s of <%s> not described as an attribute", a.Name.Local, root.XMLName.Local)
		}
	}

	code, h, body := e.request("DELETE", "/v1.0/1234/loadbalancers/"+id, nil)
	if want, resp := success(op("DELETE", lb)); code != want || len(body) != 0 || h.Get("Content-Type") != "" || len(resp.Content) != 0 {
		t.Errorf("delete: served %d %q %q, described %d with content %v", code, h.Get("Content-Type"), body, want, resp.Content)
	}
	// Faults are described, 401 without a body.
	get := op("GET", lb)
	for _, code := range []int{400, 401, 404, 406, 413, 500, 503} {
		r := get.Responses.Status(code)
		if r == nil {
			t.Errorf("show: fault %d not described", code)
		} else if (code == 401) != (len(r.Value.Content) == 0) {
			t.Errorf("show: fault %d described with content %v", code, r.Value.Content)
		}
	}
	if op("POST", lbs).Responses.Status(415) == nil || op("PUT", lb).Responses.Status(422) == nil {
		t.Error("415 or 422 of the changes not described")
	}
	// The reference's parameter names.
	var names []string
	for _, p := range op("GET", lbs).Parameters {
		names = append(names, p.Value.Name)
	}
	if !strings.Contains(" "+strings.Join(names, " ")+" ", " changes-since ") {
		t.Errorf("list parameters %v, want changes-since", names)
	}
	// The Atom feed, and the identity endpoint with the token it issues.
	if _, resp := success(op("GET", lb+"/nodes/events")); resp.Content.Get("application/atom+xml") == nil {
		t.Error("the node events feed's Atom is not described")
	}
	if _, resp := success(op("POST", "/v2.0/tokens")); resp.Content.Get("application/json") == nil {
		t.Error("the identity endpoint's answer is not described")
	}
}

// TestEveryGETAnswersXML asks every GET route of the gateway for XML and
// JSON about a load balancer with every feature: each answers 200 in the
// format asked for (a route whose answer the XML mapping cannot write
// would be a 500).
func TestEveryGETAnswersXML(t *testing.T) {
	e := newEnv(t, withAllowedDomains("rackspace.com"), func(c *server.Config) { c.DisableHealthChecks = true })
	id := e.createLB(strings.Replace(featureLB, `"weight":3}`, `"weight":3,"metadata":[{"key":"label","value":"n"}]}`, 1))
	lb := e.waitStatus(id, "ACTIVE")
	first := func(v any) string { return itoa(int(v.([]any)[0].(map[string]any)["id"].(float64))) }
	node := first(lb["nodes"])
	lbPath := "/loadbalancers/" + itoa(id)
	lbMeta := first(e.mustCall(200, "GET", lbPath+"/metadata", "")["metadata"])
	nodeMeta := first(e.mustCall(200, "GET", lbPath+"/nodes/"+node+"/metadata", "")["metadata"])
	p := sslPKI(t)
	e.mustCall(200, "PUT", lbPath+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443}))
	// Held back on this plaintext xDS port (ERROR); changes are still accepted.
	e.waitStatus(id, "ERROR")
	mapping := e.mustCall(202, "POST", lbPath+"/ssltermination/certificatemappings", mappingBody(map[string]any{"hostName": "api.example.com",
		"certificate": p.otherPEM, "privateKey": p.otherKeyPEM, "intermediateCertificate": p.interPEM}))["certificateMapping"]
	ids := strings.NewReplacer("{account}", e.account, "{loadBalancerId}", itoa(id), "{nodeId}", node,
		"{virtualIpId}", first(lb["virtualIps"]), "{networkItemId}", first(lb["accessList"]),
		"{certificateMappingId}", itoa(int(mapping.(map[string]any)["id"].(float64))))
	checked := 0
	for _, route := range servedRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		if method != "GET" || !strings.HasPrefix(path, "/v1.0/") {
			continue
		}
		checked++
		meta := lbMeta
		if strings.Contains(path, "{nodeId}/metadata") {
			meta = nodeMeta
		}
		url := strings.ReplaceAll(ids.Replace(path), "{metaId}", meta)
		if strings.HasSuffix(url, "/billable") {
			url += "?startTime=2026-01-01&endTime=2026-01-02" // required
		}
		for _, format := range []string{"application/xml", "application/json"} {
			code, h, body := e.request("GET", url, nil, "Accept", format)
			if code != 200 || h.Get("Content-Type") != format {
				t.Errorf("GET %s as %s: %d %q %s", url, format, code, h.Get("Content-Type"), body)
				continue
			}
			if format == "application/xml" {
				var root struct{ XMLName xml.Name }
				if err := xml.Unmarshal(body, &root); err != nil || root.XMLName.Space != "http://docs.openstack.org/loadbalancers/api/v1.0" {
					t.Errorf("GET %s as XML: %v %s", url, err, body)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("asked %d GET routes, want every one (at least 20)", checked)
	}
}
