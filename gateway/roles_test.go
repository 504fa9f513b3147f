package gateway_test

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
)

// route is one REST route of proto/lbaas/v1/http.yaml.
type route struct {
	method string // full gRPC method name: /lbaas.v1.Service/Method
	verb   string // GET, POST, PUT or DELETE
	path   string // with {parameters}
}

var ruleLine = regexp.MustCompile(`^\s*(?:- )?(selector|get|post|put|delete):\s*(\S+)\s*$`)

// routes reads the REST mapping the gateway is generated from.
func routes(t *testing.T) []route {
	t.Helper()
	f, err := os.Open("../proto/lbaas/v1/http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []route
	var selector string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := ruleLine.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "selector":
			i := strings.LastIndex(m[2], ".")
			selector = "/" + m[2][:i] + "/" + m[2][i+1:]
		default:
			out = append(out, route{method: selector, verb: strings.ToUpper(m[1]), path: m[2]})
		}
	}
	if err := sc.Err(); err != nil || len(out) < 50 {
		t.Fatalf("read %d routes from http.yaml: %v", len(out), err)
	}
	return out
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// Every REST route checks the caller's roles (reference:
// role-based-access-control.rst): an observer may only read, a creator may
// not delete, an admin and the account owner may do everything; a
// refused request is 403 with the fault and changes nothing. Every route
// also refuses a request without a token, and a token of another account
// gets 404 whatever its roles. The routes come from http.yaml, so a new one
// is checked here without being listed.
func TestEveryRouteChecksRoles(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	e.waitStatus(id, "ACTIVE")
	tokens := map[auth.Role]string{
		auth.Owner:          e.token,
		auth.Admin:          e.login("adam", e.account, auth.Admin),
		auth.Creator:        e.login("cleo", e.account, auth.Creator),
		auth.Observer:       e.login("olga", e.account, auth.Observer),
		auth.GlobalObserver: e.login("gus", e.account, auth.GlobalObserver),
	}
	mayDelete := map[auth.Role]bool{auth.Owner: true, auth.Admin: true}
	mayWrite := map[auth.Role]bool{auth.Owner: true, auth.Admin: true, auth.Creator: true}
	other := e.login("otto", "999", auth.Observer)

	for _, r := range routes(t) {
		action, ok := api.Actions[r.method]
		if !ok {
			t.Errorf("%s (%s %s) has no RBAC action", r.method, r.verb, r.path)
			continue
		}
		if action.Verb() != r.verb {
			t.Errorf("%s is served as %s %s but counted as a %s", r.method, r.verb, r.path, action.Verb())
		}
		path := pathParam.ReplaceAllStringFunc(strings.Replace(r.path, "{account}", e.account, 1),
			func(p string) string {
				if p == "{load_balancer_id}" {
					return itoa(id)
				}
				return "1"
			})
		body := ""
		if r.verb == "POST" || r.verb == "PUT" {
			body = "{}"
		}
		if code, _ := e.raw(r.verb, path, "", body); code != 401 {
			t.Errorf("%s %s without a token: %d, want 401", r.verb, path, code)
		}
		if code, _ := e.raw(r.verb, strings.Replace(path, "/"+e.account+"/", "/999/", 1), tokens[auth.Owner], body); code != 404 {
			t.Errorf("%s %s of another account: %d, want 404", r.verb, path, code)
		}
		if code, _ := e.raw(r.verb, path, other, body); code != 404 {
			t.Errorf("%s %s with another account's token: %d, want 404", r.verb, path, code)
		}
		for role, token := range tokens {
			allowed := r.verb == "GET" || (r.verb == "DELETE" && mayDelete[role]) || (r.verb != "DELETE" && mayWrite[role])
			code, resp := e.raw(r.verb, path, token, body)
			if allowed && code == 403 {
				t.Errorf("%s %s as %s: 403 %s, want it allowed", r.verb, path, role, resp)
			}
			if allowed {
				continue
			}
			var fault map[string]any
			_ = json.Unmarshal(resp, &fault)
			if code != 403 || fault["code"] != 403.0 || fault["message"] != "Forbidden" ||
				!strings.Contains(fault["details"].(string), string(role)) {
				t.Errorf("%s %s as %s: %d %s, want the 403 fault naming the role", r.verb, path, role, code, resp)
			}
		}
	}
	// The refused deletes changed nothing; the owner's and admin's
	// requests ran (the load balancer is now deleted or on its way).
	code, _ := e.raw("GET", "/v1.0/"+e.account+"/loadbalancers/"+itoa(id), tokens[auth.Observer], "")
	if code != 200 && code != 404 {
		t.Errorf("GET the load balancer after the walk: %d", code)
	}
}

// A refused change changes nothing.
func TestRefusedChangeChangesNothing(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	e.waitStatus(id, "ACTIVE")
	rev := e.revision()
	lb := "/v1.0/" + e.account + "/loadbalancers/" + itoa(id)
	observer := e.login("olga", e.account, auth.Observer)
	creator := e.login("cleo", e.account, auth.Creator)
	for _, c := range []struct{ token, method, path, body string }{
		{observer, "PUT", lb, `{"loadBalancer":{"name":"renamed"}}`},
		{observer, "POST", lb + "/nodes", `{"nodes":[{"address":"127.0.0.9","port":80,"condition":"ENABLED"}]}`},
		{observer, "POST", "/v1.0/" + e.account + "/loadbalancers", simpleLB},
		{creator, "DELETE", lb, ""},
		{creator, "DELETE", "/v1.0/" + e.account + "/loadbalancers?id=" + itoa(id), ""},
	} {
		if code, resp := e.raw(c.method, c.path, c.token, c.body); code != 403 {
			t.Errorf("%s %s: %d %s, want 403", c.method, c.path, code, resp)
		}
	}
	if got := e.revision(); got != rev {
		t.Errorf("revision %d after refused changes, want %d (nothing committed)", got, rev)
	}
	if lb := e.waitStatus(id, "ACTIVE"); lb["name"] != "web" {
		t.Errorf("name %v after a refused rename", lb["name"])
	}
	// The creator may create and update.
	code, resp := e.raw("PUT", lb, creator, `{"loadBalancer":{"name":"renamed"}}`)
	if code != 202 {
		t.Errorf("PUT as lbaas:creator: %d %s, want 202", code, resp)
	}
}

// The token response lists the user's roles, Rackspace's way.
func TestTokenCarriesRoles(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		user  string
		roles []auth.Role
		want  []string
	}{
		{"owner", nil, []string{"identity:user-admin"}}, // the first user of account 42 owns it
		{"second", nil, []string{"lbaas:admin"}},
		{"watcher", []auth.Role{auth.Observer, auth.GlobalObserver}, []string{"lbaas:observer", "observer"}},
	} {
		key, err := e.srv.Auth.CreateUser(t.Context(), c.user, "42", "", c.roles...)
		if err != nil {
			t.Fatal(err)
		}
		code, body := e.raw("POST", "/v2.0/tokens", "", `{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"`+c.user+`","apiKey":"`+key+`"}}}`)
		var out struct {
			Access struct {
				User struct {
					Roles []struct{ ID, Name, Description, TenantID string }
				}
			}
		}
		if err := json.Unmarshal(body, &out); code != 200 || err != nil {
			t.Fatalf("token of %s: %d %s", c.user, code, body)
		}
		var names []string
		for _, r := range out.Access.User.Roles {
			names = append(names, r.Name)
			if r.ID != r.Name || r.Description == "" || (strings.HasPrefix(r.Name, "lbaas:") != (r.TenantID == "42")) {
				t.Errorf("%s: role %+v", c.user, r)
			}
		}
		if strings.Join(names, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: roles %v, want %v", c.user, names, c.want)
		}
	}
}
