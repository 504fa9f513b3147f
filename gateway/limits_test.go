package gateway_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

func withRateLimits() envOption { return func(c *server.Config) { c.RateLimits = true } }

// withRateOverride writes an account's rate limit into a new database
// before the server starts on it.
func withRateOverride(t *testing.T, r store.AccountRateLimit) envOption {
	t.Helper()
	db := filepath.Join(t.TempDir(), "lbaas.db")
	st, err := store.Open(context.Background(), store.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetAccountRateLimit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return withDatabase(db)
}

// GET /limits answers as the reference's example: the rate limits of
// /v1.0/* per method and unit, with what is left, and the absolute limits,
// the very ones the services enforce.
func TestLimitsShape(t *testing.T) {
	lim := api.DefaultLimits
	lim.Nodes = 3
	e := newEnv(t, withRateLimits(), withLimits(lim))
	_, abs := e.call("GET", "/loadbalancers/absolutelimits", "")
	code, out := e.call("GET", "/limits", "")
	if code != 200 {
		t.Fatalf("GET /limits: %d %v", code, out)
	}
	limits := out["limits"].(map[string]any)
	if !reflect.DeepEqual(limits["absolute"], abs["absolute"]) {
		t.Errorf("absolute limits %v, want those of /loadbalancers/absolutelimits %v", limits["absolute"], abs["absolute"])
	}
	rates := limits["rate"].([]any)
	if len(rates) != 1 {
		t.Fatalf("rate: %v", rates)
	}
	rate := rates[0].(map[string]any)
	if rate["uri"] != "/v1.0/*" || rate["regex"] == "" {
		t.Errorf("rate uri %v, regex %v", rate["uri"], rate["regex"])
	}
	want := map[string]float64{"GET SECOND": 10, "GET MINUTE": 600, "PUT SECOND": 10, "PUT MINUTE": 600,
		"DELETE SECOND": 5, "DELETE MINUTE": 300, "POST SECOND": 5, "POST MINUTE": 300}
	for _, l := range rate["limit"].([]any) {
		l := l.(map[string]any)
		key := l["verb"].(string) + " " + l["unit"].(string)
		if l["value"] != want[key] {
			t.Errorf("%s: value %v, want %v", key, l["value"], want[key])
		}
		delete(want, key)
		// This GET and the one before it were counted (a GET bucket may
		// have refilled a little in between).
		left, remaining := l["value"].(float64), l["remaining"].(float64)
		if l["verb"] == "GET" && (remaining < left-2 || remaining >= left) || l["verb"] != "GET" && remaining != left {
			t.Errorf("%s: remaining %v of %v", key, remaining, left)
		}
		if _, err := time.Parse(time.RFC3339, l["next-available"].(string)); err != nil {
			t.Errorf("%s: next-available %v", key, l["next-available"])
		}
		if len(l) != 5 {
			t.Errorf("%s: fields %v, want verb, value, remaining, unit, next-available", key, l)
		}
	}
	if len(want) != 0 {
		t.Errorf("limits missing: %v", want)
	}

	// The absolute limits shown are enforced: 3 nodes here.
	body := `{"loadBalancer":{"name":"n","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[` +
		`{"address":"10.0.0.1","port":80,"condition":"ENABLED"},{"address":"10.0.0.2","port":80,"condition":"ENABLED"},` +
		`{"address":"10.0.0.3","port":80,"condition":"ENABLED"},{"address":"10.0.0.4","port":80,"condition":"ENABLED"}]}}`
	if code, out := e.call("POST", "/loadbalancers", body); code != 413 {
		t.Errorf("4 nodes with NODE_LIMIT 3 shown: %d %v", code, out)
	}
}

// With rate limiting off (the operator's switch) nothing is refused and
// GET /limits shows no rate limits.
func TestRateLimitsOff(t *testing.T) {
	e := newEnv(t)
	for i := range 12 {
		if code, out := e.call("DELETE", "/loadbalancers/999999", ""); code != 404 {
			t.Fatalf("DELETE %d with rate limits off: %d %v", i, code, out)
		}
	}
	_, out := e.call("GET", "/limits", "")
	if rate := out["limits"].(map[string]any)["rate"]; !reflect.DeepEqual(rate, []any{}) {
		t.Errorf("rate limits shown while off: %v", rate)
	}
}

// Past a limit the API answers 413 with the overLimit fault and
// Retry-After; the limit is the account's own (set in the store), counted
// for the token's account, and other methods keep theirs.
func TestRateLimitRefusal(t *testing.T) {
	e := newEnv(t, withRateLimits(), withRateOverride(t, store.AccountRateLimit{Account: "1234", Verb: "DELETE", Unit: "MINUTE", Value: 3}))
	for i := range 3 {
		if code, out := e.call("DELETE", "/loadbalancers/999999", ""); code != 404 {
			t.Fatalf("DELETE %d: %d %v", i, code, out)
		}
	}
	// A token of account 1234 on another account's path counts for 1234.
	code, headers, body := e.rawHeaders("DELETE", "/v1.0/999/loadbalancers/1", e.token, "")
	if code != 413 {
		t.Fatalf("4th DELETE: %d %s, want 413", code, body)
	}
	retry, err := strconv.Atoi(headers.Get("Retry-After"))
	if err != nil || retry < 15 || retry > 20 { // 3 a minute: one every 20 s
		t.Errorf("Retry-After %q, want about 20 seconds", headers.Get("Retry-After"))
	}
	var fault map[string]any
	if err := json.Unmarshal(body, &fault); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, fault["retryAfter"].(string))
	if fault["code"] != 413.0 || fault["message"] != "OverLimit Retry..." ||
		fault["details"] != "Account 1234 may send 3 DELETE requests per MINUTE." || err != nil || time.Until(at) < 10*time.Second {
		t.Errorf("413 body %s", body)
	}
	if code, out := e.call("GET", "/loadbalancers", ""); code != 200 {
		t.Errorf("GET after the DELETEs ran out: %d %v", code, out)
	}
	_, out := e.call("GET", "/limits", "")
	for _, l := range out["limits"].(map[string]any)["rate"].([]any)[0].(map[string]any)["limit"].([]any) {
		l := l.(map[string]any)
		if l["verb"] == "DELETE" && l["unit"] == "MINUTE" && (l["value"] != 3.0 || l["remaining"] != 0.0) {
			t.Errorf("GET /limits shows %v for DELETE per minute, want value 3, remaining 0", l)
		}
	}
}
