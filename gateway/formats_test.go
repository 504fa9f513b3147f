package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/server"
)

// referenceDir holds the API contract (the reference's RST).
const referenceDir = "../reference/rackspace-clb-v1"

// refPage is one method page of the reference: its HTTP method and
// path, and its examples by heading ("XML request", "JSON response", ...).
type refPage struct {
	file, method, path string
	examples           map[string][]string
}

var (
	refHeading = regexp.MustCompile(`^\*\*Example.*?(JSON|XML|ATOM)[^*]*\*\*$`)
	refCall    = regexp.MustCompile(`^\s+(GET|POST|PUT|DELETE)\s+(/v1\.0/\S+)`)
)

// referencePages parses the method pages of the reference.
func referencePages(t *testing.T) []refPage {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(referenceDir, "api-reference/methods/*.rst"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference method pages under %s: %v", referenceDir, err)
	}
	var out []refPage
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := refPage{file: filepath.Base(f), examples: map[string][]string{}}
		lines := strings.Split(string(raw), "\n")
		heading := ""
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			if m.method == "" {
				if c := refCall.FindStringSubmatch(lines[i]); c != nil {
					m.method, m.path = c[1], c[2]
				}
			}
			if refHeading.MatchString(line) {
				heading = exampleKind(line)
				continue
			}
			if line != ".. code::" || heading == "" {
				continue
			}
			var block []string
			for i++; i < len(lines); i++ {
				l := lines[i]
				if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, " ") {
					break
				}
				block = append(block, l)
			}
			i--
			m.examples[heading] = append(m.examples[heading], strings.TrimSpace(strings.Join(block, "\n")))
			heading = ""
		}
		out = append(out, m)
	}
	return out
}

// exampleKind is "XML request", "JSON response", "ATOM response", ...
func exampleKind(heading string) string {
	h := strings.ToUpper(heading)
	format := "JSON"
	switch {
	case strings.Contains(h, "ATOM"):
		format = "ATOM"
	case strings.Contains(h, "XML"):
		format = "XML"
	}
	if strings.Contains(h, "REQUEST") {
		return format + " request"
	}
	return format + " response"
}

// request sends a request with the given headers to the server.
func (e *env) request(method, path string, body []byte, headers ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", e.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// No transparent decompression: the test sees what the server sends.
	return e.do(&http.Client{Transport: &http.Transport{DisableCompression: true}}, req)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompression(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	path := "/v1.0/1234/loadbalancers/" + itoa(id)

	// Asked for gzip: gzip, even for a short answer.
	code, h, body := e.request("GET", path, nil, "Accept-Encoding", "gzip")
	if code != 200 || h.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET with Accept-Encoding: gzip: %d, Content-Encoding %q", code, h.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(plain, []byte(`"loadBalancer"`)) {
		t.Fatalf("gunzipped answer %q: %v", plain, err)
	}
	// Not asked: not compressed.
	if _, h, body := e.request("GET", path, nil); h.Get("Content-Encoding") != "" || !bytes.Contains(body, []byte(`"loadBalancer"`)) {
		t.Fatalf("GET without Accept-Encoding: Content-Encoding %q, body %q", h.Get("Content-Encoding"), body)
	}

	// A gzip request body is accepted.
	code, _, body = e.request("POST", "/v1.0/1234/loadbalancers", gzipped(t, []byte(simpleLB)),
		"Content-Type", "application/json", "Content-Encoding", "gzip")
	if code != 202 {
		t.Fatalf("gzip create: %d %s", code, body)
	}
	// A corrupt one is a 400, another coding a 415.
	if code, _, body := e.request("POST", "/v1.0/1234/loadbalancers", []byte("not gzip"),
		"Content-Type", "application/json", "Content-Encoding", "gzip"); code != 400 {
		t.Errorf("corrupt gzip body: %d %s, want 400", code, body)
	}
	if code, _, body := e.request("POST", "/v1.0/1234/loadbalancers", []byte(simpleLB),
		"Content-Type", "application/json", "Content-Encoding", "br"); code != 415 {
		t.Errorf("br body: %d %s, want 415", code, body)
	}

	// A bomb: 64 MiB of spaces before the JSON, 64 KiB compressed. It is
	// refused once past the body bound, and creates nothing.
	bomb := gzipped(t, append(bytes.Repeat([]byte(" "), 64<<20), simpleLB...))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	before := e.revision()
	code, _, body = e.request("POST", "/v1.0/1234/loadbalancers", bomb,
		"Content-Type", "application/json", "Content-Encoding", "gzip")
	if code != 400 || !bytes.Contains(body, []byte("too large")) {
		t.Fatalf("gzip bomb: %d %s, want 400 naming the size", code, body)
	}
	if e.revision() != before {
		t.Error("the refused bomb changed the store")
	}
}

// xmlTree is an XML document as element paths: for each path of local
// names (loadBalancer/nodes/node) the attribute names seen there.
type xmlTree struct {
	root, namespace string
	paths           map[string]map[string]bool
}

func parseTree(t *testing.T, doc string) xmlTree {
	t.Helper()
	tree := xmlTree{paths: map[string]map[string]bool{}}
	dec := xml.NewDecoder(strings.NewReader(doc))
	var stack []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return tree
		}
		if err != nil {
			t.Fatalf("parse %q: %v", doc, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
			p := strings.Join(stack, "/")
			if len(stack) == 1 {
				tree.root, tree.namespace = el.Name.Local, el.Name.Space
			}
			if tree.paths[p] == nil {
				tree.paths[p] = map[string]bool{}
			}
			for _, a := range el.Attr {
				if a.Name.Space == "" && a.Name.Local != "xmlns" {
					tree.paths[p][a.Name.Local] = true
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// knownGaps are differences from the reference's XML examples that are
// not the XML's: fields the JSON lacks too (issue 10, item 2), and an
// error page the example shows as markup where it is text.
var knownGaps = map[string]bool{
	"nodeServiceEvents/nodeServiceEvent@callbackHost": true,
	"<clusterSourceAddresses/ipv6Servicenets>":        true, "<clusterSourceAddresses/ipv6Servicenets/ipv6Servicenet>": true,
	"<regionalSourceAddresses/ipv6Servicenets>": true, "<regionalSourceAddresses/ipv6Servicenets/ipv6Servicenet>": true,
	"<errorpage/content/html>": true,
}

// missingFrom lists the elements and attributes of want that got lacks,
// but for those it is told to ignore.
func (want xmlTree) missingFrom(got xmlTree, ignore map[string]bool) []string {
	var missing []string
	if want.root != got.root {
		missing = append(missing, fmt.Sprintf("root <%s> (got <%s>)", want.root, got.root))
	}
	if want.namespace != "" && want.namespace != got.namespace {
		missing = append(missing, fmt.Sprintf("namespace %s (got %q)", want.namespace, got.namespace))
	}
	for p, attrs := range want.paths {
		have, ok := got.paths[p]
		if !ok {
			if !ignore["<"+p+">"] {
				missing = append(missing, "<"+p+">")
			}
			continue
		}
		for a := range attrs {
			if !have[a] && !ignore[p+"@"+a] {
				missing = append(missing, p+"@"+a)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// referenceErrata fixes the reference XML examples that are not
// well-formed: the source addresses close ipv6Servicenets with <.../>.
var referenceErrata = strings.NewReplacer("<ipv6Servicenets/>", "</ipv6Servicenets>")

// notServed are the reference's methods of the open certificate mapping
// and usage issues.
var notServed = regexp.MustCompile(`certificatemappings|usage|billable`)

// featureLB is a load balancer with every sub-object the reference shows
// in XML, so that every element of its examples has a counterpart.
const featureLB = `{"loadBalancer":{"name":"all","port":80,"protocol":"HTTP",
	"virtualIps":[{"type":"PUBLIC"}],
	"nodes":[{"address":"127.0.0.1","port":80,"condition":"ENABLED","weight":3},
	         {"address":"127.0.0.2","port":80,"condition":"ENABLED","type":"SECONDARY"}],
	"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,
	  "path":"/","statusRegex":"^[234][0-9][0-9]$","bodyRegex":"^[234][0-9][0-9]$","hostHeader":"myrack.com"},
	"sessionPersistence":{"persistenceType":"HTTP_COOKIE"},
	"connectionThrottle":{"minConnections":10,"maxConnections":100,"maxConnectionRate":50,"rateInterval":60},
	"accessList":[{"address":"206.160.165.40","type":"ALLOW"}],
	"metadata":[{"key":"color","value":"red"}]}}`

// TestXMLResponsesMatchReference reads every method of the reference that
// shows an XML response to a GET, asks the server for the same resource
// in XML (Accept header, and .xml suffix), and checks that every element
// and attribute of the example is there, under the same root and
// namespace.
func TestXMLResponsesMatchReference(t *testing.T) {
	e := newEnv(t, withAllowedDomains("rackspace.com"), func(c *server.Config) {
		c.DisableHealthChecks = true
		c.Source = server.SourceAddresses{IPv4Public: "127.0.0.1", IPv4Servicenet: "127.0.0.2", IPv6Public: "::1"}
	})
	id := e.createLB(featureLB)
	lb := e.waitStatus(id, "ACTIVE")
	nodeID := itoa(int(lb["nodes"].([]any)[0].(map[string]any)["id"].(float64)))
	e.mustCall(200, "POST", "/loadbalancers/"+itoa(id)+"/nodes/"+nodeID+"/metadata", `{"metadata":[{"key":"color","value":"red"}]}`)
	e.mustCall(200, "PUT", "/loadbalancers/"+itoa(id)+"/errorpage", `{"errorpage":{"content":"<html>oops</html>"}}`)
	e.waitStatus(id, "ACTIVE")
	// Node service events come from health checks; record one as the
	// prober would (it is off: nothing is probed from a test).
	if ok, err := e.srv.Store.SetNodeStatus(context.Background(), uint32(id), uint32(atoi(t, nodeID)), "OFFLINE", "connection refused"); !ok || err != nil {
		t.Fatalf("record a node event: %v %v", ok, err)
	}
	e.waitStatus(id, "ACTIVE")
	p := sslPKI(t)
	e.mustCall(200, "PUT", "/loadbalancers/"+itoa(id)+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM,
		"privatekey": p.leafKeyPEM, "intermediateCertificate": p.interPEM, "securePort": 443}))
	// This server's xDS port is plaintext: the termination is held back
	// (ERROR, README "SSL termination"); its XML is what is checked here.
	e.waitStatus(id, "ERROR")
	subst := strings.NewReplacer("{account}", e.account, "{loadBalancerId}", itoa(id), "{loadbalancerid}", itoa(id), "{nodeId}", nodeID, "{metaId}", "1")

	checked := 0
	for _, m := range referencePages(t) {
		examples := m.examples["XML response"]
		if m.method != "GET" || len(examples) == 0 || notServed.MatchString(m.path) {
			continue
		}
		want := parseTree(t, referenceErrata.Replace(examples[0]))
		path := subst.Replace(m.path)
		for _, how := range []struct {
			path    string
			headers []string
		}{{path, []string{"Accept", "application/xml"}}, {path + ".xml", nil}} {
			code, h, body := e.request("GET", how.path, nil, how.headers...)
			if code != 200 || h.Get("Content-Type") != "application/xml" {
				t.Errorf("%s: GET %s %v: %d %q %s", m.file, how.path, how.headers, code, h.Get("Content-Type"), body)
				continue
			}
			if missing := want.missingFrom(parseTree(t, string(body)), knownGaps); len(missing) > 0 {
				t.Errorf("%s: GET %s lacks %v of the reference's XML:\n%s", m.file, how.path, missing, body)
			}
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("checked %d reference XML responses, want every served one (at least 15)", checked)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestXMLRequestsLikeJSON sends every XML request example of the
// reference to a load balancer, and its JSON request example to another:
// both get the same status code, a success, and every value of the XML
// example shows in the resource it changed.
func TestXMLRequestsLikeJSON(t *testing.T) {
	limits := api.DefaultLimits
	limits.LoadBalancers = 100
	e := newEnv(t, withLimits(limits), withAllowedDomains("myrackspace.com"), func(c *server.Config) { c.DisableHealthChecks = true })
	// Metadata the examples do not collide with, on the load balancer and
	// its first node, so that the examples' {metaId} exists.
	plainLB := strings.Replace(featureLB, `"color","value":"red"`, `"label","value":"web"`, 1)
	plainLB = strings.Replace(plainLB, `"weight":3}`, `"weight":3,"metadata":[{"key":"label","value":"n"}]}`, 1)
	checked := 0
	for _, m := range referencePages(t) {
		xmlReq, jsonReq := m.examples["XML request"], m.examples["JSON request"]
		if len(xmlReq) == 0 || len(jsonReq) == 0 || notServed.MatchString(m.path) || strings.Contains(m.path, "certificatemappings") {
			continue
		}
		if strings.HasSuffix(m.path, "/ssltermination") {
			// The reference's XML examples elide their PEM blocks and name
			// placeholder cipher profiles (ProfileA): TestSSLTerminationXML
			// sends their shape with real certificates.
			continue
		}
		var codes [2]int
		var answers [2][]byte
		for i, body := range []struct{ ct, body string }{{"application/xml", xmlReq[0]}, {"application/json", jsonReq[0]}} {
			id := e.createLB(plainLB)
			e.waitStatus(id, "ACTIVE")
			node := firstNode(e, id)
			metaOf := fmt.Sprintf("/loadbalancers/%d", id)
			if strings.Contains(m.path, "{nodeId}/metadata") {
				metaOf += fmt.Sprintf("/nodes/%d", node)
			}
			meta := e.mustCall(200, "GET", metaOf+"/metadata", "")["metadata"].([]any)[0].(map[string]any)["id"].(float64)
			path := strings.NewReplacer("{account}", e.account, "{loadBalancerId}", itoa(id), "{nodeId}", itoa(node),
				"{metaId}", itoa(int(meta))).Replace(m.path)
			codes[i], _, answers[i] = e.request(m.method, path, []byte(body.body), "Content-Type", body.ct)
			if i > 0 || codes[i] >= 300 {
				continue
			}
			// What the XML asked for is there.
			after := answers[i]
			if !(m.method == "POST" && strings.HasSuffix(m.path, "/loadbalancers")) {
				e.waitStatus(id, "ACTIVE")
				_, _, after = e.request("GET", resourceOf(path), nil)
			}
			for _, v := range xmlValues(t, body.body) {
				if !bytes.Contains(after, []byte(`"`+v+`"`)) && !bytes.Contains(after, []byte(`:`+v)) {
					t.Errorf("%s: %q of the XML request is not in %s", m.file, v, after)
				}
			}
		}
		if codes[0] >= 300 && codes[0] == codes[1] && bytes.Equal(answers[0], answers[1]) {
			// The same fault for both: the JSON path's business (issue 10, item 2).
			t.Logf("%s: the reference's XML and JSON requests both get %d %s", m.file, codes[0], answers[0])
		} else if codes[0] != codes[1] || codes[0] >= 300 {
			t.Errorf("%s: %s %s\n  XML:  %d %s\n  JSON: %d %s", m.file, m.method, m.path, codes[0], answers[0], codes[1], answers[1])
		}
		checked++
	}
	if checked < 12 {
		t.Errorf("checked %d XML request examples, want every served one (at least 12)", checked)
	}
}

// xmlValues are the attribute values and texts of an XML document.
func xmlValues(t *testing.T, doc string) []string {
	t.Helper()
	var out []string
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("parse %q: %v", doc, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			for _, a := range el.Attr {
				if a.Name.Local != "xmlns" && a.Name.Space != "xmlns" {
					out = append(out, a.Value)
				}
			}
		case xml.CharData:
			if text := strings.TrimSpace(string(el)); text != "" {
				out = append(out, strings.ReplaceAll(text, "\n", `\n`))
			}
		}
	}
}

func firstNode(e *env, id int) int {
	lb := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id), "")["loadBalancer"].(map[string]any)
	return int(lb["nodes"].([]any)[0].(map[string]any)["id"].(float64))
}

// resourceOf is what a change of path shows up in: the resource itself,
// or for a change of one item its collection.
func resourceOf(path string) string {
	if regexp.MustCompile(`/(metadata|nodes)/[0-9]+$`).MatchString(path) {
		return path[:strings.LastIndex(path, "/")]
	}
	return path
}

func TestNegotiation(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	// The PUT below must meet validation, not the 422 of a load balancer
	// still in BUILD.
	e.waitStatus(id, "ACTIVE")
	path := "/v1.0/1234/loadbalancers/" + itoa(id)
	for _, c := range []struct {
		path, accept, wantType string
		wantCode               int
	}{
		{path, "", "application/json", 200},
		{path, "application/json", "application/json", 200},
		{path, "application/xml", "application/xml", 200},
		{path, "text/html, application/xml;q=0.9", "application/xml", 200},
		{path, "*/*", "application/json", 200},
		{path + ".json", "application/xml", "application/json", 200}, // the suffix wins
		{path + ".xml", "application/json", "application/xml", 200},
		{path, "text/html", "application/json", 406},
		{path, "application/atom+xml", "application/json", 406}, // no feed of a load balancer here
		{path + ".atom", "", "application/json", 406},
		{"/v1.0/1234/loadbalancers/999999.xml", "", "application/xml", 404},
		{path + "/nothing", "application/xml", "application/xml", 404},
	} {
		var headers []string
		if c.accept != "" {
			headers = []string{"Accept", c.accept}
		}
		code, h, body := e.request("GET", c.path, nil, headers...)
		if !strings.Contains(","+strings.ReplaceAll(strings.Join(h.Values("Vary"), ","), " ", "")+",", ",Accept,") {
			t.Errorf("GET %s: Vary %q lacks Accept", c.path, h.Values("Vary"))
		}
		if code != c.wantCode || h.Get("Content-Type") != c.wantType {
			t.Errorf("GET %s Accept %q: %d %q, want %d %q (%s)", c.path, c.accept, code, h.Get("Content-Type"), c.wantCode, c.wantType, body)
		}
		if c.wantType == "application/xml" && !bytes.HasPrefix(body, []byte("<?xml")) ||
			c.wantType == "application/json" && len(body) > 0 && body[0] != '{' {
			t.Errorf("GET %s Accept %q: body %q is not %s", c.path, c.accept, body, c.wantType)
		}
	}

	// Faults in XML are the reference's: the root names the fault.
	_, _, body := e.request("GET", "/v1.0/1234/loadbalancers/999999", nil, "Accept", "application/xml")
	if want := `<itemNotFound xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" code="404"><message>`; !bytes.Contains(body, []byte(want)) {
		t.Errorf("XML 404 %s, want %s", body, want)
	}
	code, _, body := e.request("PUT", path, []byte(`<loadBalancer xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" port="70000"/>`),
		"Content-Type", "application/xml", "Accept", "application/xml")
	if code != 400 || !bytes.Contains(body, []byte(`<badRequest xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" code="400">`)) ||
		!bytes.Contains(body, []byte(`<validationErrors><message>loadBalancer.port`)) {
		t.Errorf("XML validation fault: %d %s", code, body)
	}
	for _, bad := range []string{
		`<loadBalancer name="x" bogus="1"/>`,                                      // unknown attribute
		`<loadBalancer><nodes><server address="1.2.3.4"/></nodes></loadBalancer>`, // wrong item
		`<loadBalancer name="x">`,                                                 // unterminated
		`<!DOCTYPE x [<!ENTITY a "b">]><loadBalancer name="&a;"/>`,                // entities
		`<loadBalancer halfClosed="maybe"/>`,
	} {
		before := e.revision()
		code, _, body := e.request("PUT", path, []byte(bad), "Content-Type", "application/xml")
		if code != 400 || !bytes.HasPrefix(body, []byte("{")) {
			t.Errorf("XML body %s: %d %s, want a JSON 400", bad, code, body)
		}
		if e.revision() != before {
			t.Errorf("XML body %s changed the store", bad)
		}
	}

	// Request media types: JSON and XML; anything else is a 415 that changes nothing.
	before := e.revision()
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json-patch+json"} {
		if code, _, body := e.request("PUT", path, []byte(`{"loadBalancer":{"name":"x"}}`), "Content-Type", ct); code != 415 {
			t.Errorf("Content-Type %s: %d %s, want 415", ct, code, body)
		}
	}
	if e.revision() != before {
		t.Error("a 415 changed the store")
	}
}

// TestNodeEventsAtom serves the node service events as the reference's
// Atom feed, with its next link.
func TestNodeEventsAtom(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.DisableHealthChecks = true })
	id := e.createLB(`{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],
		"nodes":[{"address":"127.0.0.1","port":80,"condition":"ENABLED"}],
		"healthMonitor":{"type":"CONNECT","delay":10,"timeout":10,"attemptsBeforeDeactivation":3}}}`)
	node := firstNode(e, id)
	for _, status := range []string{"OFFLINE", "ONLINE"} {
		e.waitStatus(id, "ACTIVE")
		if ok, err := e.srv.Store.SetNodeStatus(context.Background(), uint32(id), uint32(node), status, "probe says "+status); !ok || err != nil {
			t.Fatalf("record a node event: %v %v", ok, err)
		}
	}
	events := fmt.Sprintf("/v1.0/1234/loadbalancers/%d/nodes/events", id)
	for _, how := range [][]string{{events + ".atom?limit=1"}, {events + "?limit=1", "Accept", "application/atom+xml"}} {
		code, h, body := e.request("GET", how[0], nil, how[1:]...)
		if code != 200 || h.Get("Content-Type") != "application/atom+xml" {
			t.Fatalf("GET %v: %d %q %s", how, code, h.Get("Content-Type"), body)
		}
		var feed struct {
			XMLName xml.Name
			Links   []struct {
				Rel  string `xml:"rel,attr"`
				Href string `xml:"href,attr"`
			} `xml:"link"`
			ID      string `xml:"id"`
			Entries []struct {
				Title    string `xml:"title"`
				Summary  string `xml:"summary"`
				Category struct {
					Term string `xml:"term,attr"`
				} `xml:"category"`
				Content string `xml:"content"`
			} `xml:"entry"`
		}
		if err := xml.Unmarshal(body, &feed); err != nil {
			t.Fatalf("feed %s: %v", body, err)
		}
		if feed.XMLName.Space != "http://www.w3.org/2005/Atom" || feed.XMLName.Local != "feed" ||
			feed.ID != fmt.Sprintf("1234-loadbalancers-%d-nodeservice", id) || len(feed.Entries) != 1 ||
			feed.Entries[0].Title != "Node Status Updated" || feed.Entries[0].Category.Term != "UPDATE" ||
			!strings.Contains(feed.Entries[0].Content, "probe says OFFLINE") {
			t.Errorf("feed %s", body)
		}
		if len(feed.Links) != 1 || feed.Links[0].Rel != "next" ||
			!strings.HasPrefix(feed.Links[0].Href, e.base+events+".atom?limit=1&marker=") {
			t.Errorf("feed links %+v, want the next page of the feed", feed.Links)
		}
		// The next link works and ends the feed.
		next := strings.TrimPrefix(feed.Links[0].Href, e.base)
		if code, _, body := e.request("GET", next, nil); code != 200 || bytes.Contains(body, []byte(`rel="next"`)) ||
			!bytes.Contains(body, []byte("probe says ONLINE")) {
			t.Errorf("next page: %d %s", code, body)
		}
	}
	// Faults of a feed are XML; without a token, 401 without a body.
	if code, h, body := e.request("GET", "/v1.0/1234/loadbalancers/999999/nodes/events.atom", nil); code != 404 ||
		h.Get("Content-Type") != "application/xml" || !bytes.Contains(body, []byte("<itemNotFound")) {
		t.Errorf("feed of a missing load balancer: %d %q %s", code, h.Get("Content-Type"), body)
	}
	e.token = ""
	if code, _, body := e.request("GET", events+".atom", nil); code != 401 || len(body) != 0 {
		t.Errorf("feed without a token: %d %s", code, body)
	}
}
