package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/server"
)

// The reference's methods and examples, run against the real server: every
// method file of the Rackspace reference is parsed here, at test time, and
// each of its JSON request examples (or the bare request when it has none)
// is sent to a server with the health prober off (the examples' 10.x nodes
// are never contacted). The answer must have the documented success code
// and the shape of the documented response example: every key it shows,
// with the same JSON type (values differ; our extension fields are extra
// keys and allowed).

// referenceMethods is where the reference keeps one RST file per method.
var referenceMethods = filepath.Join(referenceDir, "api-reference", "methods")

// excludedMethods are the methods of features another issue brings, by a
// path fragment, with the reason. They are listed (not silently skipped),
// and the test fails once one of them answers with success: the exclusion
// must then go.
var excludedMethods = []struct{ fragment, reason string }{}

// knownDifferences are examples the server answers otherwise than the
// reference on purpose, by file and example title, with the reason.
var knownDifferences = map[string]string{
	// Excluded examples (they run once the feature exists).
	"put-update-load-balancer-properties-v1.0-account-loadbalancers-loadbalancerid.rst|Example Update load balancer properties: JSON request":                                               "sets httpsRedirect on an HTTP load balancer, which needs SSL termination (issue 11)",
	"put-enable-content-caching-v1.0-account-loadbalancers-loadbalancerid-contentcaching.rst|Example Enable content caching: JSON request":                                                  "content caching is refused, not offered (README, Content caching)",
	"put-update-ssl-termination-configuration-v1.0-account-loadbalancers-loadbalancerid-ssltermination.rst|Example Update Load Balancing SSL Termination Full Certification Request: JSON":  "its certificate and intermediate expired in 2014 and are signed with SHA-1 (both refused: README, SSL termination) and its cipherProfile \"ProfileA\" is none of ciphers.rst's profiles; TestSSLTermination sends the same request with certificates made at test time",
	"post-add-certificate-mapping-v1.0-account-loadbalancers-loadbalancerid-ssltermination-certificatemappings.rst|Example Add certificate mapping: JSON request":                           "its certificate and intermediate expired in 2014 and are signed with SHA-1 (both refused, as for SSL termination: README; api.TestReferenceMappingExamplesRefusedOnlyAsDocumented shows nothing else is wrong); TestCertificateMappings adds the same mapping with certificates made at test time",
	"put-update-certificate-mapping-v1.0-account-loadbalancers-loadbalancerid-ssltermination-certificatemappings-certificatemappingid.rst|Example Update certificate mapping: JSON request": "its certificate and intermediate expired in 2014 and are signed with SHA-1 (both refused, as for SSL termination: README; api.TestReferenceMappingExamplesRefusedOnlyAsDocumented shows nothing else is wrong); TestCertificateMappings updates the same attributes with certificates made at test time",
	"put-update-ssl-termination-configuration-v1.0-account-loadbalancers-loadbalancerid-ssltermination.rst|Example Update Load Balancing SSL Termination Attribute Request: JSON":           "its cipherProfile \"ProfileB\" is none of ciphers.rst's profiles (default, CLBCipherPolicy2017-08, CLBCipherPolicy2019-05); TestSSLTermination updates the same attributes with a real profile",
}

// answersMore are methods the reference documents without an answer body
// that answer one (a client may ignore it).
var answersMore = map[string]string{
	"put-update-load-balancer-metadata-item-v1.0-account-loadbalancers-loadbalancerid-metadata-metaid.rst": "answers the updated item, as the reference documents for the node metadata twin of this method",
}

type refExample struct {
	title string
	body  any
}

type refMethod struct {
	file, method, path string
	code               int
	noBody             bool // "This operation does not return a response body."
	requests           []refExample
	responses          []refExample
}

var (
	methodLine    = regexp.MustCompile(`^\s+(GET|POST|PUT|DELETE) (/v1\.0/\S+)\s*$`)
	codeRow       = regexp.MustCompile(`^\|(\d{3})\s`)
	titleLine     = regexp.MustCompile(`^\*\*(.*)\*\*\s*$`)
	trailingComma = regexp.MustCompile(`,(\s*[}\]])`)
)

// parseReference reads one method file.
func parseReference(t *testing.T, file string) refMethod {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := refMethod{file: filepath.Base(file)}
	lines := strings.Split(strings.ReplaceAll(string(data), "\t", "    "), "\n")
	section, title := "", ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		// A title may span two lines (the SSL termination examples').
		if strings.HasPrefix(line, "**") && !titleLine.MatchString(line) && i+1 < len(lines) &&
			strings.HasSuffix(strings.TrimSpace(lines[i+1]), "**") {
			i++
			line = strings.TrimSpace(line) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case m.method == "" && methodLine.MatchString(line):
			g := methodLine.FindStringSubmatch(line)
			m.method, m.path = g[1], g[2]
			continue
		case m.code == 0 && codeRow.MatchString(line):
			m.code, _ = strconv.Atoi(codeRow.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, "---") && i > 0:
			section = strings.TrimSpace(lines[i-1])
			title = ""
		case titleLine.MatchString(line):
			title = titleLine.FindStringSubmatch(line)[1]
		case strings.Contains(line, "does not return a response body"):
			m.noBody = true
		}
		if strings.TrimSpace(line) != ".. code::" || m.method == "" {
			continue
		}
		// The block: the indented lines after the directive.
		var block []string
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || strings.HasPrefix(lines[i+1], " ")) {
			i++
			block = append(block, lines[i])
		}
		text := strings.TrimSpace(strings.Join(block, "\n"))
		if strings.Contains(title, "XML") || strings.Contains(title, "ATOM") || !strings.HasPrefix(text, "{") && !strings.HasPrefix(text, "[") {
			continue
		}
		var body any
		if err := json.Unmarshal([]byte(text), &body); err != nil {
			// Some examples have a trailing comma; nothing else is forgiven.
			if err := json.Unmarshal([]byte(trailingComma.ReplaceAllString(text, "$1")), &body); err != nil {
				t.Fatalf("%s: the JSON example %q does not parse: %v", m.file, title, err)
			}
		}
		ex := refExample{title: title, body: body}
		if section == "Request" {
			m.requests = append(m.requests, ex)
		} else if section == "Response" {
			m.responses = append(m.responses, ex)
		}
		title = ""
	}
	if m.method == "" || m.code == 0 {
		t.Fatalf("%s: no method line or response codes", m.file)
	}
	return m
}

// fixture is one load balancer with every feature set, in an account of
// its own server, ready (ACTIVE) for the method under test.
type fixture struct {
	e        *env
	lb       int
	nodes    []int
	vips     []int // IPv4 then IPv6
	items    []int // access list
	meta     int   // load balancer metadata item
	nodeMeta int   // metadata item of nodes[0]
	mapping  int   // certificate mapping
}

func newFixture(t *testing.T, e *env) *fixture {
	t.Helper()
	f := &fixture{e: e}
	f.lb = e.createLB(`{"loadBalancer":{"name":"reference","port":8080,"protocol":"HTTP",
		"virtualIps":[{"type":"PUBLIC"},{"type":"PUBLIC","ipVersion":"IPV6"}],
		"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"},
			{"address":"10.1.1.2","port":80,"condition":"ENABLED"},
			{"address":"10.1.1.3","port":80,"condition":"ENABLED"}],
		"healthMonitor":{"type":"HTTP","delay":10,"timeout":5,"attemptsBeforeDeactivation":2,"path":"/","statusRegex":"^[234][0-9][0-9]$","bodyRegex":"","hostHeader":"example.com"},
		"sessionPersistence":{"persistenceType":"HTTP_COOKIE"},
		"connectionThrottle":{"maxConnections":100,"minConnections":10,"maxConnectionRate":50,"rateInterval":60},
		"connectionLogging":{"enabled":true},
		"accessList":[{"address":"10.0.0.0/8","type":"ALLOW"},{"address":"0.0.0.0/0","type":"DENY"}],
		"metadata":[{"key":"fixture","value":"blue"}]}}`)
	e.activate()
	base := "/loadbalancers/" + itoa(f.lb)
	lb := e.mustCall(200, "GET", base, "")["loadBalancer"].(map[string]any)
	for _, n := range lb["nodes"].([]any) {
		f.nodes = append(f.nodes, int(n.(map[string]any)["id"].(float64)))
	}
	for _, v := range lb["virtualIps"].([]any) {
		f.vips = append(f.vips, int(v.(map[string]any)["id"].(float64)))
	}
	for _, a := range lb["accessList"].([]any) {
		f.items = append(f.items, int(a.(map[string]any)["id"].(float64)))
	}
	f.meta = int(lb["metadata"].([]any)[0].(map[string]any)["id"].(float64))
	out := e.mustCall(200, "POST", base+"/nodes/"+itoa(f.nodes[0])+"/metadata", `{"metadata":[{"key":"fixture","value":"r1"}]}`)
	f.nodeMeta = int(out["metadata"].([]any)[0].(map[string]any)["id"].(float64))
	e.mustCall(200, "PUT", base+"/errorpage", `{"errorpage":{"content":"<html>down</html>"}}`)
	e.activate()
	// SSL termination, with a certificate made for the test (the
	// reference's own expired years ago).
	p := sslPKI(t)
	e.mustCall(200, "PUT", base+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM,
		"intermediateCertificate": p.interPEM, "securePort": 443}))
	e.activate()
	out = e.mustCall(202, "POST", base+"/ssltermination/certificatemappings", mappingBody(map[string]any{"hostName": "rackspace.com",
		"certificate": p.otherPEM, "privateKey": p.otherKeyPEM, "intermediateCertificate": p.interPEM}))
	f.mapping = int(out["certificateMapping"].(map[string]any)["id"].(float64))
	// A measured status change, as the prober records it: a node service event.
	if _, err := e.srv.Store.SetNodeStatus(context.Background(), uint32(f.lb), uint32(f.nodes[0]), "OFFLINE", "connection refused"); err != nil {
		t.Fatal(err)
	}
	e.activate()
	return f
}

// path fills the reference's path parameters with the fixture's objects.
func (f *fixture) path(p string) string {
	p = strings.TrimPrefix(p, "/v1.0/{account}")
	meta := f.meta
	if strings.Contains(p, "{nodeId}/metadata") {
		meta = f.nodeMeta
	}
	return strings.NewReplacer(
		"{loadBalancerId}", itoa(f.lb), "{loadbalancerid}", itoa(f.lb), "{nodeId}", itoa(f.nodes[0]), "{metaId}", itoa(meta),
		"{virtualIpId}", itoa(f.vips[1]), "{networkItemId}", itoa(f.items[0]), "{certificateMappingId}", itoa(f.mapping),
	).Replace(p)
}

// bulkQuery is the id query of the bulk deletes, naming fixture objects
// (or, for a fault example, an object that is not there).
func (f *fixture) bulkQuery(path string, fault bool) string {
	var ids []int
	switch {
	case fault:
		ids = []int{999999}
	case strings.HasSuffix(path, "/nodes"):
		ids = f.nodes[1:]
	case strings.HasSuffix(path, "/virtualips"):
		ids = f.vips[1:]
	case strings.HasSuffix(path, "/accesslist"):
		ids = f.items
	case strings.HasSuffix(path, "/metadata") && strings.Contains(path, "/nodes/"):
		ids = []int{f.nodeMeta}
	case strings.HasSuffix(path, "/metadata"):
		ids = []int{f.meta}
	case strings.HasSuffix(path, "/loadbalancers"):
		ids = []int{f.lb}
	}
	var q []string
	for _, id := range ids {
		q = append(q, "id="+itoa(id))
	}
	return "?" + strings.Join(q, "&")
}

// body is a request example with its ids replaced by the fixture's: the
// shared virtual IPs of a create, the nodes of a bulk update.
func (f *fixture) body(ex any) string {
	vips, nodes := f.vips, f.nodes
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, inner := range v {
				v[k] = walk(k, inner)
			}
			if _, ok := v["id"]; ok {
				switch key {
				case "virtualIps":
					v["id"], vips = vips[0], vips[1:]
				case "nodes":
					v["id"], nodes = nodes[0], nodes[1:]
				}
			}
		case []any:
			for i, inner := range v {
				v[i] = walk(key, inner)
			}
		}
		return v
	}
	b, err := json.Marshal(walk("", deepCopy(ex)))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func deepCopy(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// shapeDiff lists where got does not have doc's shape: a key doc shows
// that got lacks, or a value of another JSON type. In a list, every item
// of got must have the keys all of doc's items have.
func shapeDiff(at string, doc, got any) []string {
	switch d := doc.(type) {
	case nil:
		return nil
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, the reference shows an object", at, jsonType(got))}
		}
		var diffs []string
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", at, k))
				continue
			}
			diffs = append(diffs, shapeDiff(at+"."+k, d[k], gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, the reference shows a list", at, jsonType(got))}
		}
		if len(d) == 0 {
			return nil
		}
		if len(g) == 0 {
			return []string{fmt.Sprintf("%s: empty, the reference shows items (the fixture should have some)", at)}
		}
		common := commonShape(d)
		var diffs []string
		for i, item := range g {
			diffs = append(diffs, shapeDiff(fmt.Sprintf("%s[%d]", at, i), common, item)...)
		}
		return diffs
	case string:
		// The reference writes some booleans and numbers as strings in its
		// examples ("halfClosed": "false", "id": "1") where its attribute
		// tables document a Boolean or an Integer (and its other examples
		// write them so): the documented type is the answer.
		if _, ok := got.(bool); ok && (d == "true" || d == "false") {
			return nil
		}
		if _, ok := got.(float64); ok {
			if _, err := strconv.ParseFloat(d, 64); err == nil {
				return nil
			}
		}
		if _, ok := got.(string); !ok {
			return []string{fmt.Sprintf("%s: got %s %v, the reference shows a string %q", at, jsonType(got), got, d)}
		}
		return nil
	default:
		if jsonType(doc) != jsonType(got) {
			return []string{fmt.Sprintf("%s: got %s %v, the reference shows %s %v", at, jsonType(got), got, jsonType(doc), doc)}
		}
		return nil
	}
}

// commonShape is what all items of a documented list have in common: for
// objects, the keys present in every item.
func commonShape(items []any) any {
	first, ok := items[0].(map[string]any)
	if !ok {
		return items[0]
	}
	out := map[string]any{}
	for k, v := range first {
		everywhere := true
		for _, item := range items[1:] {
			if m, ok := item.(map[string]any); !ok || m[k] == nil {
				everywhere = false
			}
		}
		if everywhere {
			out[k] = v
		}
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func isFault(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	code, ok := m["code"].(float64)
	return ok && code >= 400 && m["message"] != nil
}

func TestReferenceExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(referenceMethods, "*.rst"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference methods in %s: %v", referenceMethods, err)
	}
	limits := api.DefaultLimits
	limits.LoadBalancers = 1000
	e := newEnv(t, withManualActivation(), withLimits(limits), withoutProber(), withAllowedDomains("rackspace.com", "myrackspace.com", "org"),
		// The examples' node names resolve to 10.x addresses (a real DNS
		// server on loopback; the prober is off, nothing connects to them).
		func(c *server.Config) {
			c.NodeResolver = dnstest.Start(t, map[string][]string{"www.myrackspace.com": {"10.2.2.5"}}).Resolver()
		}, withSources(server.SourceAddresses{
			IPv4Public: "127.0.0.1", IPv4Servicenet: "127.0.0.2", IPv6Public: "::1/128", IPv6Servicenet: "::1/128",
		}))
	ran, excluded := 0, 0
	for _, file := range files {
		m := parseReference(t, file)
		name := strings.TrimSuffix(m.file, ".rst")
		if reason := exclusion(m.path); reason != "" {
			excluded++
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, e)
				code, _ := e.call(m.method, f.path(m.path), "")
				if code >= 200 && code < 300 {
					t.Fatalf("%s %s is excluded (%s) but answers %d: run it, remove the exclusion", m.method, m.path, reason, code)
				}
				fmt.Fprintf(os.Stderr, "EXCLUDED %s %s (%s): %s\n", m.method, m.path, m.file, reason)
			})
			continue
		}
		requests := m.requests
		if len(requests) == 0 {
			requests = []refExample{{title: "no body"}}
		}
		for i, req := range requests {
			// The documented answer to this request: its example of the same
			// rank, else any of them.
			var want []refExample
			for _, r := range m.responses {
				if !isFault(r.body) {
					want = append(want, r)
				}
			}
			if len(want) == len(requests) && len(requests) > 1 {
				want = want[i : i+1]
			}
			if reason := knownDifferences[m.file+"|"+req.title]; reason != "" {
				excluded++
				t.Run(name+"/"+req.title, func(t *testing.T) {
					f := newFixture(t, e)
					if code, out := e.call(m.method, f.path(m.path), f.body(req.body)); code >= 200 && code < 300 {
						t.Fatalf("the example %q is excluded (%s) but succeeds (%d %v): remove the exclusion", req.title, reason, code, out)
					}
					fmt.Fprintf(os.Stderr, "EXCLUDED example %q of %s: %s\n", req.title, m.file, reason)
				})
				continue
			}
			ran++
			t.Run(name+"/"+req.title, func(t *testing.T) {
				runExample(t, e, m, req, want, false)
			})
		}
		for _, r := range m.responses {
			if isFault(r.body) {
				ran++
				t.Run(name+"/"+r.title, func(t *testing.T) {
					runExample(t, e, m, refExample{title: "no body"}, []refExample{r}, true)
				})
			}
		}
	}
	fmt.Fprintf(os.Stderr, "reference examples: %d run, %d methods and examples excluded\n", ran, excluded)
	if ran < 55 || ran+excluded < 70 {
		t.Fatalf("only %d examples ran, %d excluded: is the reference parsed?", ran, excluded)
	}
}

func exclusion(path string) string {
	for _, x := range excludedMethods {
		if strings.Contains(path, x.fragment) {
			return x.reason
		}
	}
	return ""
}

func runExample(t *testing.T, e *env, m refMethod, req refExample, want []refExample, fault bool) {
	f := newFixture(t, e)
	path := f.path(m.path)
	if m.method == "DELETE" && bytes.Contains(mustRead(t, filepath.Join(referenceMethods, m.file)), []byte("query parameters")) {
		path += f.bulkQuery(path, fault)
	}
	body := ""
	if req.body != nil {
		body = f.body(req.body)
	}
	if strings.HasSuffix(path, "/billable") {
		// Its window is required: the day so far and the next.
		day := time.Now().UTC().Truncate(24 * time.Hour)
		path += "?startTime=" + day.Format("2006-01-02") + "&endTime=" + day.Add(48*time.Hour).Format("2006-01-02")
	}
	code, raw := e.raw(m.method, "/v1.0/"+e.account+path, e.token, body)
	wantCode := m.code
	if fault {
		wantCode = int(want[0].body.(map[string]any)["code"].(float64))
	}
	if code != wantCode {
		t.Fatalf("%s %s %s: got %d %s, the reference answers %d", m.method, path, body, code, raw, wantCode)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if len(want) > 0 {
			t.Fatalf("%s %s: no body, the reference shows %q", m.method, path, want[0].title)
		}
		return
	}
	if m.noBody && !fault && answersMore[m.file] == "" {
		t.Fatalf("%s %s: answered %s, the reference answers no body", m.method, path, raw)
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s %s: the answer is not JSON: %q", m.method, path, raw)
	}
	if len(want) == 0 {
		return
	}
	var diffs []string
	for _, w := range want {
		d := shapeDiff("", w.body, got)
		if len(d) == 0 {
			return
		}
		diffs = append(diffs, fmt.Sprintf("against %q:\n\t%s", w.title, strings.Join(d, "\n\t")))
	}
	t.Errorf("%s %s: the answer %s differs from the reference %s", m.method, path, raw, strings.Join(diffs, "\n"))
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
