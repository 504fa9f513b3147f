package translator

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

// Golden cases of this feature live with its test (the table in
// translate_test.go is shared by every feature).
func init() {
	// Content caching is stored, and emits no cache filter (see httpFilters):
	// persistence, timeout and error page stay the route's and the HCM's.
	goldenCases["http_content_caching_persistence"] = &LoadBalancer{ID: 18, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 45,
		VIPs: []VIP{{"127.1.0.18"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		ContentCaching: true, Persistence: "HTTP_COOKIE", ErrorPage: "<html>down</html>"}
}

// Content caching never becomes an Envoy cache: no HTTP filter and no type
// of any golden output names one (envoy.filters.http.cache, cache_v2, or a
// cache storage extension), whatever the load balancer asks for. See
// httpFilters for why.
func TestNoContentCacheIsEmitted(t *testing.T) {
	asked := 0
	for name, lb := range goldenCases {
		if lb.ContentCaching {
			asked++
		}
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range all(out) {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, word := range []string{"envoy.filters.http.cache", "extensions.filters.http.cache", "extensions.http.cache"} {
				if strings.Contains(string(b), word) {
					t.Errorf("%s: %T carries %q", name, m, word)
				}
			}
		}
	}
	if asked < 2 {
		t.Fatalf("%d golden cases ask for content caching; want at least 2 (http_features, http_content_caching_persistence)", asked)
	}
}
