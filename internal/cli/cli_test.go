package cli

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseNode(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80":                             "127.0.0.1 80 <nil> <nil>",
		"[::1]:8080,condition=draining,weight=5":   "::1 8080 DRAINING 5",
		"web.example.org:443,type=secondary":       "web.example.org 443 <nil> <nil>",
		"127.0.0.1:80,weight=2,condition=DISABLED": "127.0.0.1 80 DISABLED 2",
	} {
		n, err := parseNode(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		got := strings.Join([]string{n["address"].(string), str(n["port"]), str(n["condition"]), str(n["weight"])}, " ")
		if got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"127.0.0.1", "::1:80", "127.0.0.1:http", "127.0.0.1:80,weight=x", "127.0.0.1:80,colour=red"} {
		if _, err := parseNode(bad); err == nil || !isUsage(err) {
			t.Errorf("%s: want a usage error, got %v", bad, err)
		}
	}
}

func str(v any) string {
	if v == nil {
		return "<nil>"
	}
	return strings.TrimSpace(strings.ReplaceAll(cell(v), "\n", ""))
}

// A token is used until a tenth of its lifetime (at most 30 s) before it
// expires.
func TestTokenValidity(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := &cachedToken{ID: "x", Obtained: now.Add(-time.Hour), Expires: now.Add(23 * time.Hour)}
	for at, want := range map[time.Duration]bool{0: true, 23*time.Hour - 31*time.Second: true, 23*time.Hour - 29*time.Second: false} {
		if got := day.valid(now.Add(at)); got != want {
			t.Errorf("24 h token at +%v: valid %v, want %v", at, got, want)
		}
	}
	short := &cachedToken{ID: "x", Obtained: now, Expires: now.Add(10 * time.Second)}
	if !short.valid(now.Add(8*time.Second)) || short.valid(now.Add(9500*time.Millisecond)) {
		t.Error("a 10 s token keeps a 1 s margin")
	}
	if (&cachedToken{Obtained: now, Expires: now.Add(time.Hour)}).valid(now) {
		t.Error("a token without id is valid")
	}
}

// Flags win over the environment, which wins over the profile.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	conf := "profile: a\nprofiles:\n  a:\n    auth-url: http://file/v2.0\n    username: from-file\n    api-key: k\n    region: FILE\n  b:\n    username: b-user\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LBAAS_CONFIG", path)
	t.Setenv("LBAAS_PROFILE", "")
	t.Setenv("LBAAS_USERNAME", "from-env")
	for _, k := range []string{"LBAAS_AUTH_URL", "LBAAS_API_KEY", "LBAAS_REGION", "LBAAS_OUTPUT", "LBAAS_ENDPOINT", "LBAAS_TENANT", "LBAAS_PASSWORD"} {
		t.Setenv(k, "")
	}
	g := globalFlags{region: "FLAG"}
	cfg, err := g.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthURL != "http://file/v2.0" || cfg.Username != "from-env" || cfg.Region != "FLAG" || cfg.APIKey != "k" || cfg.Output != "table" {
		t.Errorf("resolved %+v", cfg)
	}
	g = globalFlags{profile: "b"}
	if cfg, err = g.resolve(nil); err != nil || cfg.AuthURL != DefaultAuthURL || cfg.APIKey != "" {
		t.Errorf("profile b: %+v %v", cfg, err)
	}
	for _, bad := range []globalFlags{{profile: "c"}, {output: "xml"}, {config: filepath.Join(dir, "missing.yaml")}} {
		if _, err := bad.resolve(nil); err == nil || !isUsage(err) {
			t.Errorf("%+v: want a usage error, got %v", bad, err)
		}
	}
}

// Both fault shapes (the API's and identity's) read the same.
func TestFaultFrom(t *testing.T) {
	res := &http.Response{StatusCode: 400}
	e := faultFrom(res, []byte(`{"code":400,"message":"Validation Failure","details":"The object is not valid","validationErrors":{"messages":["loadBalancer.port: bad"]}}`))
	if e.Message != "Validation Failure" || len(e.Messages) != 1 || exitCode(e) != ExitFault {
		t.Errorf("api fault %+v", e)
	}
	e = faultFrom(&http.Response{StatusCode: 401}, []byte(`{"unauthorized":{"code":401,"message":"Unable to authenticate user with credentials provided."}}`))
	if !strings.HasPrefix(e.Message, "Unable to authenticate") {
		t.Errorf("identity fault %+v", e)
	}
	e = faultFrom(&http.Response{StatusCode: 503}, nil)
	if e.Message != "Service Unavailable" || exitCode(e) != ExitService {
		t.Errorf("empty 503 %+v", e)
	}
}

// JSON output is the resource under the answer's key, in the API's order.
func TestRenderJSONKeepsOrder(t *testing.T) {
	var b bytes.Buffer
	if err := render(&b, "json", []byte(`{"loadBalancer":{"name":"web","id":1}}`), view{key: "loadBalancer"}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "{\n  \"name\": \"web\",\n  \"id\": 1\n}\n" {
		t.Errorf("got %q", b.String())
	}
}
