package translator

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// node is a node named by an IP address, or by a name resolved to ips.
func node(id uint32, addr string, typ, condition string, weight uint32, ips ...string) Node {
	if len(ips) == 0 {
		ips = []string{addr}
	}
	n := Node{ID: id, Address: addr, Port: 8080, Condition: condition, Type: typ, Weight: weight, Online: true}
	for _, ip := range ips {
		n.Addresses = append(n.Addresses, netip.MustParseAddr(ip))
	}
	return n
}

// goldenCases cover every protocol family and algorithm.
var goldenCases = map[string]*LoadBalancer{
	"http_random": {ID: 1, Name: "web", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.1"}, {"fd00:1ba5::1"}},
		Nodes: []Node{
			node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1),
			node(2, "10.0.0.2", "PRIMARY", "DRAINING", 1),
			node(3, "10.0.0.3", "PRIMARY", "DISABLED", 1),
			node(4, "10.0.0.4", "SECONDARY", "ENABLED", 1),
		}},
	"http_weighted_round_robin": {ID: 2, Protocol: "HTTP", Port: 8080, Algorithm: "WEIGHTED_ROUND_ROBIN", TimeoutSeconds: 120,
		VIPs:  []VIP{{"127.1.0.2"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 3), node(2, "10.0.0.2", "PRIMARY", "ENABLED", 7)}},
	"http_least_connections": {ID: 3, Protocol: "HTTP", Port: 80, Algorithm: "LEAST_CONNECTIONS", TimeoutSeconds: 30,
		VIPs:  []VIP{{"127.1.0.3"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 5)}},
	"https_passthrough_redirect": {ID: 4, Protocol: "HTTPS", Port: 443, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30, HTTPSRedirect: true,
		VIPs:  []VIP{{"127.1.0.4"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}},
	"tcp_weighted_least_connections_half_closed": {ID: 5, Protocol: "TCP", Port: 5432, Algorithm: "WEIGHTED_LEAST_CONNECTIONS", TimeoutSeconds: 60, HalfClosed: true,
		VIPs:  []VIP{{"127.1.0.5"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 10), node(2, "10.0.0.2", "SECONDARY", "ENABLED", 20)}},
	"udp_round_robin": {ID: 6, Protocol: "UDP", Port: 5353, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs:  []VIP{{"127.1.0.6"}, {"fd00:1ba5::6"}},
		Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}},
	"dns_udp_secondaries_only": {ID: 7, Protocol: "DNS_UDP", Port: 53, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs:  []VIP{{"127.2.0.7"}},
		Nodes: []Node{node(1, "10.0.0.1", "SECONDARY", "ENABLED", 1)}},
	"http_domain_name_nodes": {ID: 8, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.8"}},
		Nodes: []Node{node(1, "www.example.com", "PRIMARY", "ENABLED", 1, "192.0.2.10", "2001:db8::10"), node(2, "10.0.0.2", "PRIMARY", "ENABLED", 1),
			// Resolves to node 2's address (one endpoint), or to nothing (none).
			node(3, "alias.example.com", "SECONDARY", "ENABLED", 1, "10.0.0.2"), {ID: 4, Address: "gone.example.com", Port: 8080, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Online: true}}},
	"http_features": {ID: 10, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs:        []VIP{{"127.1.0.10"}},
		Nodes:       []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		AccessList:  []NetworkItem{{"0.0.0.0/0", "DENY"}, {"192.168.0.0/16", "ALLOW"}, {"2001:db8::1", "ALLOW"}},
		Throttle:    &Throttle{MaxConnections: 100, MinConnections: 10, MaxConnectionRate: 50, RateInterval: 60},
		Persistence: "HTTP_COOKIE", ConnectionLogging: true, ContentCaching: true,
		ErrorPage: "<html>100% sorry</html>", CheckPassive: true, ClientKeepAliveSeconds: 75, BackendKeepAlive: true,
		AccessLogPath: "/var/log/lbaas/{lb}.log"},
	"tcp_features": {ID: 11, Protocol: "HTTPS", Port: 443, Algorithm: "LEAST_CONNECTIONS", TimeoutSeconds: 30,
		VIPs:        []VIP{{"127.1.0.11"}},
		Nodes:       []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		AccessList:  []NetworkItem{{"203.0.113.0/24", "DENY"}},
		Throttle:    &Throttle{MaxConnections: 0, MaxConnectionRate: 10, RateInterval: 1},
		Persistence: "SOURCE_IP", ConnectionLogging: true},
	// Access lists: no /0 in any chain (two halves of each family instead),
	// whatever the items; the redirect listener refuses the same sources.
	"access_list_deny_all": {ID: 13, Protocol: "TCP", Port: 22, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.13"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		AccessList: []NetworkItem{{"0.0.0.0/0", "DENY"}}},
	"access_list_ipv4_allows_dual_stack": {ID: 14, Protocol: "HTTPS", Port: 443, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30, HTTPSRedirect: true,
		VIPs: []VIP{{"127.1.0.14"}, {"fd00:1ba5::14"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		AccessList: []NetworkItem{{"0.0.0.0/0", "DENY"}, {"198.51.100.0/24", "ALLOW"}, {"203.0.113.7", "ALLOW"}}},
	"access_list_allow_only": {ID: 15, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.15"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		AccessList: []NetworkItem{{"198.51.100.0/24", "ALLOW"}}},
	"udp_logging": {ID: 12, Protocol: "UDP", Port: 514, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.12"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}, ConnectionLogging: true},
	"mysql_offline_node_no_nodes_enabled": {ID: 9, Protocol: "MYSQL", Port: 3306, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.9"}},
		Nodes: []Node{
			{ID: 1, Address: "10.0.0.1", Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Port: 3306, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Online: false},
			node(2, "10.0.0.2", "PRIMARY", "DISABLED", 1),
		}},
}

func TestGolden(t *testing.T) {
	for name, lb := range goldenCases {
		t.Run(name, func(t *testing.T) {
			out, err := Translate(lb)
			if err != nil {
				t.Fatal(err)
			}
			validate(t, out)
			got := render(t, out)
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./translator -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation; review with go test ./translator -update && git diff", path)
			}
		})
	}
}

// Every golden file belongs to a case: a renamed or removed case leaves
// none behind that nothing checks any more.
func TestNoOrphanGoldens(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if _, ok := goldenCases[name]; !ok {
			t.Errorf("%s has no golden case: remove it or add the case", f)
		}
	}
}

// The same input gives byte-identical output.
func TestDeterministic(t *testing.T) {
	for name, lb := range goldenCases {
		a, _ := Translate(lb)
		b, _ := Translate(lb)
		if !bytes.Equal(marshalAll(t, a), marshalAll(t, b)) {
			t.Errorf("%s: two translations differ", name)
		}
	}
}

// validate checks every resource with go-control-plane's generated validation.
func validate(t testing.TB, out *Output) {
	t.Helper()
	if err := out.Validate(); err != nil {
		t.Fatalf("does not validate: %v", err)
	}
}

func all(out *Output) []proto.Message {
	return append(out.Envoy.messages(), out.GRPC.messages()...)
}

func marshalAll(t testing.TB, out *Output) []byte {
	var buf bytes.Buffer
	for _, m := range all(out) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// render is the golden form: indented JSON of every resource by kind and type.
func render(t *testing.T, out *Output) []byte {
	t.Helper()
	section := func(r Resources) map[string][]json.RawMessage {
		s := map[string][]json.RawMessage{}
		add := func(key string, m proto.Message) {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			s[key] = append(s[key], b)
		}
		for _, m := range r.Listeners {
			add("listeners", m)
		}
		for _, m := range r.Routes {
			add("routes", m)
		}
		for _, m := range r.Clusters {
			add("clusters", m)
		}
		for _, m := range r.Endpoints {
			add("endpoints", m)
		}
		for _, m := range r.Extensions {
			add("extensions", m)
		}
		for _, m := range r.Secrets {
			add("secrets", m)
		}
		return s
	}
	raw, err := json.Marshal(map[string]any{"envoy": section(out.Envoy), "grpc": section(out.GRPC)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Every golden file belongs to a case: a renamed or removed case leaves no
// stale file behind that reviewers would take for current output.
func TestNoOrphanGoldenFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := goldenCases[strings.TrimSuffix(filepath.Base(f), ".json")]; !ok {
			t.Errorf("%s has no golden case (remove it, or add the case)", f)
		}
	}
}

// Proxies never resolve a customer's name: every cluster is EDS, and
// every endpoint is an IP address the control plane gave (a name that
// resolves to nothing gives no endpoint; an address two nodes share is one
// endpoint, which grpc-go requires).
func TestEndpointsAreResolvedAddresses(t *testing.T) {
	for name, lb := range goldenCases {
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []Resources{out.Envoy, out.GRPC} {
			for _, c := range r.Clusters {
				if c.GetType() != clusterv3.Cluster_EDS || c.GetLoadAssignment() != nil {
					t.Errorf("%s: cluster %s is %v, not EDS", name, c.GetName(), c.GetType())
				}
			}
			for _, cla := range r.Endpoints {
				seen := map[string]bool{}
				for _, loc := range cla.GetEndpoints() {
					for _, ep := range loc.GetLbEndpoints() {
						sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
						if _, err := netip.ParseAddr(sa.GetAddress()); err != nil {
							t.Errorf("%s: endpoint %q is not an IP address", name, sa.GetAddress())
						}
						key := fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
						if seen[key] {
							t.Errorf("%s: endpoint %s twice", name, key)
						}
						seen[key] = true
					}
				}
			}
		}
	}
	out, err := Translate(goldenCases["http_domain_name_nodes"])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, loc := range out.Envoy.Endpoints[0].GetEndpoints() {
		for _, ep := range loc.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			got = append(got, fmt.Sprintf("p%d %s", loc.GetPriority(), sa.GetAddress()))
		}
	}
	want := []string{"p0 192.0.2.10", "p0 2001:db8::10", "p0 10.0.0.2"}
	if !slices.Equal(got, want) {
		t.Errorf("endpoints of the named nodes: got %v, want %v", got, want)
	}
}

// No filter chain of any golden listener matches a /0 source range: Envoy
// would tie it with the serving chain (which matches every source) and
// pick either (envoyproxy/envoy#34299).
func TestNoChainMatchesEverySource(t *testing.T) {
	for name, lb := range goldenCases {
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range out.Envoy.Listeners {
			for _, fc := range l.GetFilterChains() {
				for _, r := range fc.GetFilterChainMatch().GetDirectSourcePrefixRanges() {
					if r.GetPrefixLen().GetValue() == 0 {
						t.Errorf("%s: listener %s, chain %s matches %s/0", name, l.GetName(), fc.GetName(), r.GetAddressPrefix())
					}
				}
			}
		}
	}
}

// LoadBalancerID reads back exactly the names ResourceName makes.
func TestLoadBalancerID(t *testing.T) {
	for _, id := range []uint32{1, 42, 4294967295} {
		if got, ok := LoadBalancerID(ResourceName(id)); !ok || got != id {
			t.Errorf("LoadBalancerID(%q) = %d, %v", ResourceName(id), got, ok)
		}
	}
	for _, name := range []string{"", "lb_", "lb_0", "lb_01", "lb_-1", "lb_+1", "lb_1x", "lb_4294967296", "lb_1_redirect", "xds_cluster", "LB_1"} {
		if got, ok := LoadBalancerID(name); ok {
			t.Errorf("LoadBalancerID(%q) = %d, want no load balancer", name, got)
		}
	}
}
