package gateway_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
)

// featureJSON is GET on a feature endpoint, as raw JSON compared to want.
func featureJSON(t *testing.T, e *env, path, want string) {
	t.Helper()
	code, body := e.raw("GET", "/v1.0/1234"+path, e.token, "")
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

// featureChange sends a change and checks the status code exactly, that
// the answer has no body, and that the load balancer went PENDING_UPDATE;
// it then marks the change applied.
func featureChange(t *testing.T, e *env, code int, method, lb, sub, body string) {
	t.Helper()
	got, hdr, resp := e.rawHeaders(method, "/v1.0/1234"+lb+sub, e.token, body)
	if got != code || len(resp) != 0 || hdr.Get("Content-Type") != "" {
		t.Fatalf("%s %s %s: %d %q content-type %q, want %d with no body", method, sub, body, got, resp, hdr.Get("Content-Type"), code)
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("%s %s: the load balancer is %s, want PENDING_UPDATE", method, sub, st)
	}
	e.activate()
}

func featureDetails(t *testing.T, e *env, lb string) map[string]any {
	t.Helper()
	return e.mustCall(200, "GET", lb, "")["loadBalancer"].(map[string]any)
}

const (
	featureTCPLB   = `{"loadBalancer":{"name":"tcp","port":5000,"protocol":"TCP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`
	featureHTTPSLB = `{"loadBalancer":{"name":"tls","port":443,"protocol":"HTTPS","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`
	featureUDPLB   = `{"loadBalancer":{"name":"udp","port":5353,"protocol":"UDP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}]}}`
)

func TestConnectionThrottle(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{}}`)

	// Creating needs every attribute (reference note).
	out := featureFault(t, e, 400, "PUT", lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":10}}`, "connectionThrottle.minConnections")
	msgs := strings.Join(validationMessages(out), " | ")
	if !strings.Contains(msgs, "connectionThrottle.maxConnectionRate") || !strings.Contains(msgs, "connectionThrottle.rateInterval") || strings.Contains(msgs, "connectionThrottle.maxConnections") {
		t.Errorf("create with one attribute: %v", msgs)
	}
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{}}`)

	// The reference's request example (200, no body), then its response shape.
	featureChange(t, e, 200, "PUT", lb, "/connectionthrottle", `{
		"connectionThrottle":{
			"maxConnections": 10,
			"minConnections": 100,
			"maxConnectionRate": 50,
			"rateInterval": 60
		}
	}`)
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":10,"minConnections":100,"maxConnectionRate":50,"rateInterval":60}}`)

	// Updating takes as few as one attribute; the others keep their values.
	featureChange(t, e, 200, "PUT", lb, "/connectionthrottle", `{"connectionThrottle":{"maxConnections":100,"minConnections":10}}`)
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":100,"minConnections":10,"maxConnectionRate":50,"rateInterval":60}}`)
	featureChange(t, e, 200, "PUT", lb, "/connectionthrottle", `{"connectionThrottle":{"maxConnections":0}}`)
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":0,"minConnections":10,"maxConnectionRate":50,"rateInterval":60}}`)
	if ct := featureDetails(t, e, lb)["connectionThrottle"].(map[string]any); ct["maxConnectionRate"] != 50.0 || ct["minConnections"] != 10.0 {
		t.Errorf("details connectionThrottle %v", ct)
	}

	for _, c := range []struct{ body, field string }{
		{``, "connectionThrottle"},
		{`{}`, "connectionThrottle"},
		{`{"connectionThrottle":{}}`, "connectionThrottle"},
		{`{"connectionThrottle":{"maxConnections":100001}}`, "connectionThrottle.maxConnections"},
		{`{"connectionThrottle":{"minConnections":1001}}`, "connectionThrottle.minConnections"},
		{`{"connectionThrottle":{"maxConnectionRate":100001}}`, "connectionThrottle.maxConnectionRate"},
		{`{"connectionThrottle":{"rateInterval":3601}}`, "connectionThrottle.rateInterval"},
		{`{"connectionThrottle":{"maxConnections":-1}}`, "maxConnections"},
		{`{"connectionThrottle":{"maxConnections":"ten"}}`, "maxConnections"},
	} {
		featureFault(t, e, 400, "PUT", lb+"/connectionthrottle", c.body, c.field)
	}
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":0,"minConnections":10,"maxConnectionRate":50,"rateInterval":60}}`)

	// DELETE (200, no body) removes it; deleting none is no error.
	featureChange(t, e, 200, "DELETE", lb, "/connectionthrottle", "")
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{}}`)
	if ct, ok := featureDetails(t, e, lb)["connectionThrottle"]; ok {
		t.Errorf("details still show a throttle: %v", ct)
	}
	featureChange(t, e, 200, "DELETE", lb, "/connectionthrottle", "")
	// Once deleted, a new throttle needs every attribute again.
	featureFault(t, e, 400, "PUT", lb+"/connectionthrottle", `{"connectionThrottle":{"maxConnections":10}}`, "connectionThrottle.rateInterval")
	e.mustCall(404, "GET", "/loadbalancers/99999/connectionthrottle", "")
	e.mustCall(404, "PUT", "/loadbalancers/99999/connectionthrottle", `{"connectionThrottle":{"maxConnections":10}}`)
}

func TestSessionPersistence(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	featureJSON(t, e, lb+"/sessionpersistence", `{"sessionPersistence":{}}`)

	// Disabling what is not enabled is 422 unprocessableEntity (reference note).
	out := featureFault(t, e, 422, "DELETE", lb+"/sessionpersistence", "", "not enabled")
	if strings.Contains(out["message"].(string), "immutable") {
		t.Errorf("DELETE when disabled is unprocessable, not immutable: %v", out)
	}

	// The reference's examples: PUT (202, no body), then GET.
	featureChange(t, e, 202, "PUT", lb, "/sessionpersistence", `{
	   "sessionPersistence":{
	      "persistenceType":"HTTP_COOKIE"
	   }
	}`)
	featureJSON(t, e, lb+"/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`)
	if sp := featureDetails(t, e, lb)["sessionPersistence"].(map[string]any); sp["persistenceType"] != "HTTP_COOKIE" {
		t.Errorf("details sessionPersistence %v", sp)
	}
	featureChange(t, e, 202, "PUT", lb, "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SOURCE_IP"}}`)
	featureJSON(t, e, lb+"/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SOURCE_IP"}}`)

	for _, c := range []struct{ body, field string }{
		{``, "sessionPersistence"},
		{`{"sessionPersistence":{}}`, "sessionPersistence.persistenceType"},
		{`{"sessionPersistence":{"persistenceType":"COOKIE"}}`, "sessionPersistence.persistenceType"},
		{`{"sessionPersistence":{"persistenceType":"SSL_ID"}}`, "sessionPersistence.persistenceType"}, // HTTPS only
	} {
		featureFault(t, e, 400, "PUT", lb+"/sessionpersistence", c.body, c.field)
	}

	featureChange(t, e, 202, "DELETE", lb, "/sessionpersistence", "")
	featureJSON(t, e, lb+"/sessionpersistence", `{"sessionPersistence":{}}`)
	featureFault(t, e, 422, "DELETE", lb+"/sessionpersistence", "", "not enabled")

	// HTTPS (pass-through): SOURCE_IP and SSL_ID, not HTTP_COOKIE.
	tls := "/loadbalancers/" + itoa(e.createLB(featureHTTPSLB))
	e.activate()
	featureFault(t, e, 400, "PUT", tls+"/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, "sessionPersistence.persistenceType")
	featureChange(t, e, 202, "PUT", tls, "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SSL_ID"}}`)
	featureChange(t, e, 202, "PUT", tls, "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SOURCE_IP"}}`)
	featureJSON(t, e, tls+"/sessionpersistence", `{"sessionPersistence":{"persistenceType":"SOURCE_IP"}}`)

	// Other protocols: none.
	tcp := "/loadbalancers/" + itoa(e.createLB(featureTCPLB))
	e.activate()
	for _, mode := range []string{"HTTP_COOKIE", "SOURCE_IP", "SSL_ID"} {
		featureFault(t, e, 400, "PUT", tcp+"/sessionpersistence", `{"sessionPersistence":{"persistenceType":"`+mode+`"}}`, "sessionPersistence.persistenceType")
	}
	e.mustCall(404, "DELETE", "/loadbalancers/99999/sessionpersistence", "")
}

func TestConnectionLogging(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	featureJSON(t, e, lb+"/connectionlogging", `{"connectionLogging":{"enabled":false}}`)

	// The reference's examples: PUT (200, no body), then GET.
	featureChange(t, e, 200, "PUT", lb, "/connectionlogging", `{
	   "connectionLogging":{
	      "enabled":true
	   }
	}`)
	featureJSON(t, e, lb+"/connectionlogging", `{"connectionLogging":{"enabled":true}}`)
	if cl := featureDetails(t, e, lb)["connectionLogging"].(map[string]any); cl["enabled"] != true {
		t.Errorf("details connectionLogging %v", cl)
	}
	for _, c := range []struct{ body, field string }{
		{``, "connectionLogging"},
		{`{"connectionLogging":{}}`, "connectionLogging.enabled"},
		{`{"connectionLogging":{"enabled":"yes"}}`, "enabled"},
	} {
		featureFault(t, e, 400, "PUT", lb+"/connectionlogging", c.body, c.field)
	}
	featureChange(t, e, 200, "PUT", lb, "/connectionlogging", `{"connectionLogging":{"enabled":false}}`)
	featureJSON(t, e, lb+"/connectionlogging", `{"connectionLogging":{"enabled":false}}`)

	// Not for the UDP protocols (reference note); TCP is fine.
	udp := "/loadbalancers/" + itoa(e.createLB(featureUDPLB))
	e.activate()
	featureFault(t, e, 400, "PUT", udp+"/connectionlogging", `{"connectionLogging":{"enabled":true}}`, "connectionLogging.enabled")
	featureChange(t, e, 200, "PUT", udp, "/connectionlogging", `{"connectionLogging":{"enabled":false}}`)
	tcp := "/loadbalancers/" + itoa(e.createLB(featureTCPLB))
	e.activate()
	featureChange(t, e, 200, "PUT", tcp, "/connectionlogging", `{"connectionLogging":{"enabled":true}}`)
	featureJSON(t, e, tcp+"/connectionlogging", `{"connectionLogging":{"enabled":true}}`)
	e.mustCall(404, "GET", "/loadbalancers/99999/connectionlogging", "")
}

func TestErrorPage(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)

	page := func(path string) string {
		t.Helper()
		out := e.mustCall(200, "GET", path+"/errorpage", "")
		ep, ok := out["errorpage"].(map[string]any)
		if !ok || len(out) != 1 || len(ep) != 1 {
			t.Fatalf("GET errorpage: %v, want {\"errorpage\":{\"content\":...}}", out)
		}
		return ep["content"].(string)
	}
	if got := page(lb); got != api.DefaultErrorPage || !strings.Contains(got, "<html") || !strings.Contains(got, "</html>") {
		t.Errorf("default page %q", got)
	}

	// The reference's request example (200, no body); GET shows it back.
	featureChange(t, e, 200, "PUT", lb, "/errorpage", `{"errorpage":
	{"content":"\n<html>\n    DEFAULT ERROR PAGE\n</html>\n"}
	}`)
	if got := page(lb); got != "\n<html>\n    DEFAULT ERROR PAGE\n</html>\n" {
		t.Errorf("custom page %q", got)
	}
	// A new page replaces the old one.
	featureChange(t, e, 200, "PUT", lb, "/errorpage", `{"errorpage":{"content":"<html> DEFAULT ERROR PAGE</html>"}}`)
	featureJSON(t, e, lb+"/errorpage", `{"errorpage":{"content":"<html> DEFAULT ERROR PAGE</html>"}}`)

	// Up to 65536 characters (not bytes).
	longest := strings.Repeat("é", api.MaxErrorPageLength)
	featureChange(t, e, 200, "PUT", lb, "/errorpage", `{"errorpage":{"content":"`+longest+`"}}`)
	if got := page(lb); got != longest {
		t.Errorf("longest page: %d characters back", len([]rune(got)))
	}
	for _, c := range []struct{ body, field string }{
		{`{"errorpage":{"content":"` + longest + `x"}}`, "errorpage.content"},
		{`{"errorpage":{"content":""}}`, "errorpage.content"},
		{`{"errorpage":{"content":"  \n "}}`, "errorpage.content"},
		{`{"errorpage":{}}`, "errorpage.content"},
		{`{}`, "errorpage"},
		{`{"errorpage":{"content":7}}`, "content"},
	} {
		featureFault(t, e, 400, "PUT", lb+"/errorpage", c.body, c.field)
	}
	if got := page(lb); got != longest {
		t.Error("a refused page replaced the page")
	}

	// DELETE (200, no body) restores the default; deleting again is fine.
	featureChange(t, e, 200, "DELETE", lb, "/errorpage", "")
	if got := page(lb); got != api.DefaultErrorPage {
		t.Errorf("after delete %q", got)
	}
	featureChange(t, e, 200, "DELETE", lb, "/errorpage", "")

	// HTTP load balancers only.
	for _, body := range []string{featureTCPLB, featureHTTPSLB} {
		other := "/loadbalancers/" + itoa(e.createLB(body))
		e.activate()
		featureFault(t, e, 400, "PUT", other+"/errorpage", `{"errorpage":{"content":"<html>sorry</html>"}}`, "errorpage")
		if got := page(other); got != api.DefaultErrorPage {
			t.Errorf("non-HTTP page %q", got)
		}
	}
	e.mustCall(404, "GET", "/loadbalancers/99999/errorpage", "")
}

// Content caching is refused (api.ContentCachingRefused): the reference's
// PUT with "enabled": true is a 400 naming the field and changes nothing;
// turning it off is accepted, on any protocol, as are creates that say off.
func TestContentCaching(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	featureJSON(t, e, lb+"/contentcaching", `{"contentCaching":{"enabled":false}}`)

	out := featureFault(t, e, 400, "PUT", lb+"/contentcaching", `{
	   "contentCaching":{
	      "enabled":true
	   }
	}`, "contentCaching.enabled")
	if msgs := strings.Join(validationMessages(out), " | "); !strings.Contains(msgs, "not offered") {
		t.Errorf("refusal %q does not say content caching is not offered", msgs)
	}
	featureJSON(t, e, lb+"/contentcaching", `{"contentCaching":{"enabled":false}}`)
	if cc := featureDetails(t, e, lb)["contentCaching"].(map[string]any); cc["enabled"] != false {
		t.Errorf("details contentCaching %v", cc)
	}
	for _, c := range []struct{ body, field string }{
		{``, "contentCaching"},
		{`{"contentCaching":{}}`, "contentCaching.enabled"},
		{`{"contentCaching":{"enabled":1}}`, "enabled"},
	} {
		featureFault(t, e, 400, "PUT", lb+"/contentcaching", c.body, c.field)
	}
	featureChange(t, e, 202, "PUT", lb, "/contentcaching", `{"contentCaching":{"enabled":false}}`)
	featureJSON(t, e, lb+"/contentcaching", `{"contentCaching":{"enabled":false}}`)

	// Every protocol: on is refused, off is harmless.
	for _, body := range []string{featureTCPLB, featureHTTPSLB} {
		other := "/loadbalancers/" + itoa(e.createLB(body))
		e.activate()
		featureFault(t, e, 400, "PUT", other+"/contentcaching", `{"contentCaching":{"enabled":true}}`, "contentCaching.enabled")
		featureJSON(t, e, other+"/contentcaching", `{"contentCaching":{"enabled":false}}`)
		featureChange(t, e, 202, "PUT", other, "/contentcaching", `{"contentCaching":{"enabled":false}}`)
	}
	// A create asking for it is refused as a whole, naming the field.
	withCaching := strings.Replace(simpleLB, `"protocol"`, `"contentCaching":{"enabled":true},"protocol"`, 1)
	if withCaching == simpleLB {
		t.Fatal("simpleLB has no protocol field to insert contentCaching before")
	}
	featureFault(t, e, 400, "POST", "/loadbalancers", withCaching, "loadBalancer.contentCaching")
	e.mustCall(404, "PUT", "/loadbalancers/99999/contentcaching", `{"contentCaching":{"enabled":false}}`)
}

// Every feature change is refused with 422 while the load balancer is
// BUILD or PENDING_UPDATE, and changes nothing; reads still work.
func TestFeaturesImmutableWhileBusy(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	lb := "/loadbalancers/" + itoa(id)

	changes := []struct{ method, sub, body string }{
		{"PUT", "/connectionthrottle", `{"connectionThrottle":{"maxConnections":10,"minConnections":1,"maxConnectionRate":5,"rateInterval":60}}`},
		{"DELETE", "/connectionthrottle", ""},
		{"PUT", "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`},
		{"DELETE", "/sessionpersistence", ""},
		{"PUT", "/connectionlogging", `{"connectionLogging":{"enabled":true}}`},
		{"PUT", "/errorpage", `{"errorpage":{"content":"<html>x</html>"}}`},
		{"DELETE", "/errorpage", ""},
		{"PUT", "/contentcaching", `{"contentCaching":{"enabled":true}}`},
	}
	for _, status := range []string{"BUILD", "PENDING_UPDATE"} {
		if status == "PENDING_UPDATE" {
			e.activate()
			e.mustCall(202, "PUT", lb, `{"loadBalancer":{"name":"busy"}}`)
		}
		for _, c := range changes {
			out := featureFault(t, e, 422, c.method, lb+c.sub, c.body, status)
			if !strings.Contains(out["message"].(string), "immutable") {
				t.Errorf("%s %s while %s: %v", c.method, c.sub, status, out)
			}
		}
		for _, sub := range []string{"/connectionthrottle", "/sessionpersistence", "/connectionlogging", "/errorpage", "/contentcaching", "/accesslist"} {
			e.mustCall(200, "GET", lb+sub, "")
		}
	}
	featureJSON(t, e, lb+"/connectionthrottle", `{"connectionThrottle":{}}`)
	featureJSON(t, e, lb+"/sessionpersistence", `{"sessionPersistence":{}}`)
	featureJSON(t, e, lb+"/connectionlogging", `{"connectionLogging":{"enabled":false}}`)
	featureJSON(t, e, lb+"/contentcaching", `{"contentCaching":{"enabled":false}}`)
}

// With the real data plane running (no manual activation), every feature
// set through its endpoint is published and the load balancer comes back
// ACTIVE each time.
func TestFeaturesArePublished(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	lb := "/loadbalancers/" + itoa(id)
	e.waitStatus(id, "ACTIVE")
	for _, c := range []struct {
		method, sub, body string
		code              int
	}{
		{"POST", "/accesslist", `{"accessList":[{"address":"10.0.0.0/8","type":"ALLOW"},{"address":"0.0.0.0/0","type":"DENY"}]}`, 202},
		{"PUT", "/connectionthrottle", `{"connectionThrottle":{"maxConnections":100,"minConnections":10,"maxConnectionRate":50,"rateInterval":60}}`, 200},
		{"PUT", "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, 202},
		{"PUT", "/connectionlogging", `{"connectionLogging":{"enabled":true}}`, 200},
		{"PUT", "/errorpage", `{"errorpage":{"content":"<html>100% sorry</html>"}}`, 200},
		{"PUT", "/contentcaching", `{"contentCaching":{"enabled":false}}`, 202},
		{"DELETE", "/accesslist", "", 202},
		{"DELETE", "/connectionthrottle", "", 200},
		{"DELETE", "/sessionpersistence", "", 202},
		{"DELETE", "/errorpage", "", 200},
	} {
		e.mustCall(c.code, c.method, lb+c.sub, c.body)
		e.waitStatus(id, "ACTIVE")
	}
}

// The feature endpoints need a token, and another tenant can neither read
// nor change a load balancer's features (404, as for the load balancer).
func TestFeaturesAuthorization(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	other := e.login("mallory", "5678")
	for _, c := range []struct{ method, sub, body string }{
		{"GET", "/accesslist", ""},
		{"POST", "/accesslist", `{"accessList":[{"address":"10.0.0.1","type":"DENY"}]}`},
		{"DELETE", "/accesslist", ""},
		{"DELETE", "/accesslist/1", ""},
		{"GET", "/connectionthrottle", ""},
		{"PUT", "/connectionthrottle", `{"connectionThrottle":{"maxConnections":1,"minConnections":1,"maxConnectionRate":1,"rateInterval":1}}`},
		{"DELETE", "/connectionthrottle", ""},
		{"GET", "/sessionpersistence", ""},
		{"PUT", "/sessionpersistence", `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`},
		{"DELETE", "/sessionpersistence", ""},
		{"GET", "/connectionlogging", ""},
		{"PUT", "/connectionlogging", `{"connectionLogging":{"enabled":true}}`},
		{"GET", "/errorpage", ""},
		{"PUT", "/errorpage", `{"errorpage":{"content":"<html>x</html>"}}`},
		{"DELETE", "/errorpage", ""},
		{"GET", "/contentcaching", ""},
		{"PUT", "/contentcaching", `{"contentCaching":{"enabled":true}}`},
	} {
		before := e.revision()
		if code, body := e.raw(c.method, "/v1.0/1234/loadbalancers/"+itoa(id)+c.sub, "", c.body); code != 401 || len(body) != 0 {
			t.Errorf("%s %s without a token: %d %q, want 401 with no body", c.method, c.sub, code, body)
		}
		for _, account := range []string{"1234", "5678"} {
			if code, body := e.raw(c.method, "/v1.0/"+account+"/loadbalancers/"+itoa(id)+c.sub, other, c.body); code != 404 {
				t.Errorf("%s %s by another tenant (account %s): %d %s, want 404", c.method, c.sub, account, code, body)
			}
		}
		if e.revision() != before {
			t.Errorf("%s %s: an unauthorized request changed the store", c.method, c.sub)
		}
	}
	if st := featureLBStatus(t, e, "/loadbalancers/"+itoa(id)); st != "ACTIVE" {
		t.Errorf("status %s", st)
	}
}
