package translator

import (
	"bytes"
	"slices"
	"sort"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// The load balancers the edits below start from.
func httpBase() *LoadBalancer {
	return &LoadBalancer{ID: 1, Protocol: "HTTP", Port: 80, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.1"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}}
}

func tcpBase() *LoadBalancer {
	return &LoadBalancer{ID: 2, Protocol: "MYSQL", Port: 3306, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.2"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}}
}

func udpBase() *LoadBalancer {
	return &LoadBalancer{ID: 3, Protocol: "UDP", Port: 53, Algorithm: "RANDOM", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.3"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)}}
}

// edits is the table of what a customer can change and the Envoy resources
// each change lands in ("<type> <name>"), and whether Envoy drains the
// connections open on the listener. Everything but the listener's address,
// its protocol and UDP load balancers is updated in place.
var edits = []struct {
	setting string
	base    func() *LoadBalancer
	edit    func(*LoadBalancer)
	want    []string
	drains  bool
}{
	{"timeout (HTTP)", httpBase, func(lb *LoadBalancer) { lb.TimeoutSeconds = 90 }, []string{"rds lb_1"}, false},
	{"timeout (TCP)", tcpBase, func(lb *LoadBalancer) { lb.TimeoutSeconds = 90 }, []string{"ecds lb_2_tcp"}, false},
	{"session persistence HTTP_COOKIE (HTTP)", httpBase, func(lb *LoadBalancer) { lb.Persistence = "HTTP_COOKIE" },
		[]string{"cds lb_1", "rds lb_1"}, false},
	{"session persistence SOURCE_IP (TCP)", tcpBase, func(lb *LoadBalancer) { lb.Persistence = "SOURCE_IP" },
		[]string{"cds lb_2", "ecds lb_2_tcp"}, false},
	// The throttle is in the serving chain (two more ECDS names per load
	// balancer would cost every Envoy ~1 MB at 10,000: see ecds.go), so
	// its edits rebuild the chain and drain.
	{"connection throttle on: max connections", httpBase, func(lb *LoadBalancer) { lb.Throttle = &Throttle{MaxConnections: 10} },
		[]string{"lds lb_1"}, true},
	{"connection throttle on: rate", tcpBase, func(lb *LoadBalancer) { lb.Throttle = &Throttle{MaxConnectionRate: 5, RateInterval: 60} },
		[]string{"lds lb_2"}, true},
	{"connection throttle changed", func() *LoadBalancer {
		lb := tcpBase()
		lb.Throttle = &Throttle{MaxConnections: 10, MaxConnectionRate: 5, RateInterval: 60}
		return lb
	}, func(lb *LoadBalancer) {
		lb.Throttle = &Throttle{MaxConnections: 20, MaxConnectionRate: 5, RateInterval: 60}
	},
		[]string{"lds lb_2"}, true},
	{"connection logging (HTTP)", httpBase, func(lb *LoadBalancer) { lb.ConnectionLogging = true }, []string{"ecds lb_1_http"}, false},
	{"connection logging (TCP)", tcpBase, func(lb *LoadBalancer) { lb.ConnectionLogging = true }, []string{"ecds lb_2_tcp"}, false},
	{"error page", httpBase, func(lb *LoadBalancer) { lb.ErrorPage = "<html>down</html>" }, []string{"ecds lb_1_http"}, false},
	{"client keep-alive", httpBase, func(lb *LoadBalancer) { lb.ClientKeepAliveSeconds = 75 }, []string{"ecds lb_1_http"}, false},
	{"backend keep-alive", httpBase, func(lb *LoadBalancer) { lb.BackendKeepAlive = true }, []string{"cds lb_1"}, false},
	{"passive health check", httpBase, func(lb *LoadBalancer) { lb.CheckPassive = true }, []string{"cds lb_1"}, false},
	{"algorithm", tcpBase, func(lb *LoadBalancer) { lb.Algorithm = "LEAST_CONNECTIONS" }, []string{"cds lb_2"}, false},
	{"node condition", httpBase, func(lb *LoadBalancer) { lb.Nodes[0].Condition = "DRAINING" }, []string{"eds lb_1"}, false},
	// The refusal chain changes; the serving chain, and its connections, stay.
	{"access list", tcpBase, func(lb *LoadBalancer) { lb.AccessList = []NetworkItem{{"203.0.113.0/24", "DENY"}} },
		[]string{"lds lb_2"}, false},
	{"HTTPS redirect", func() *LoadBalancer {
		lb := tcpBase()
		lb.Protocol, lb.Port = "HTTPS", 443
		return lb
	}, func(lb *LoadBalancer) { lb.HTTPSRedirect = true }, []string{"lds lb_2_redirect"}, false},
	// What the listener is made of: rebuilt, and drained.
	{"port", httpBase, func(lb *LoadBalancer) { lb.Port = 8080 }, []string{"lds lb_1"}, true},
	{"virtual IP added", tcpBase, func(lb *LoadBalancer) { lb.VIPs = append(lb.VIPs, VIP{"fd00:1ba5::2"}) }, []string{"lds lb_2"}, true},
	{"protocol", httpBase, func(lb *LoadBalancer) { lb.Protocol = "TCP" },
		[]string{"cds lb_1", "ecds lb_1_http", "ecds lb_1_tcp", "lds lb_1", "rds lb_1"}, true},
	// udp_proxy is a UDP listener filter, which Envoy cannot take over ECDS.
	{"timeout (UDP)", udpBase, func(lb *LoadBalancer) { lb.TimeoutSeconds = 90 }, []string{"lds lb_3"}, true},
	{"connection logging (UDP)", udpBase, func(lb *LoadBalancer) { lb.ConnectionLogging = true }, []string{"lds lb_3"}, true},
}

// envoyResources are an output's Envoy resources by "<type> <name>", marshalled.
func envoyResources(t *testing.T, out *Output) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	add := func(key string, msg proto.Message) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		m[key] = b
	}
	for _, r := range out.Envoy.Listeners {
		add("lds "+r.GetName(), r)
	}
	for _, r := range out.Envoy.Routes {
		add("rds "+r.GetName(), r)
	}
	for _, r := range out.Envoy.Clusters {
		add("cds "+r.GetName(), r)
	}
	for _, r := range out.Envoy.Endpoints {
		add("eds "+r.GetClusterName(), r)
	}
	for _, r := range out.Envoy.Extensions {
		add("ecds "+r.GetName(), r)
	}
	return m
}

func translateEdit(t *testing.T, base func() *LoadBalancer, edit func(*LoadBalancer)) (before, after *Output) {
	t.Helper()
	var err error
	if before, err = Translate(base()); err != nil {
		t.Fatal(err)
	}
	lb := base()
	edit(lb)
	if after, err = Translate(lb); err != nil {
		t.Fatal(err)
	}
	validate(t, after)
	return before, after
}

// Each editable setting lands in the resources the table says, and Envoy
// drains connections only where the table says.
func TestEditsLandWhereTheTableSays(t *testing.T) {
	for _, e := range edits {
		t.Run(e.setting, func(t *testing.T) {
			before, after := translateEdit(t, e.base, e.edit)
			b, a := envoyResources(t, before), envoyResources(t, after)
			var got []string
			for k, v := range a {
				if !bytes.Equal(b[k], v) {
					got = append(got, k)
				}
			}
			for k := range b {
				if _, ok := a[k]; !ok {
					got = append(got, k)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, e.want) {
				t.Errorf("changes %v, want %v", got, e.want)
			}
			if d := Drains(before.Envoy.Listeners[0], after.Envoy.Listeners[0]); d != e.drains {
				t.Errorf("drains connections: %v, want %v", d, e.drains)
			}
		})
	}
}

// For every setting updated in place, the load balancer's listener is the
// same bytes before and after the edit: Envoy has nothing to rebuild.
func TestInPlaceEditsKeepTheListener(t *testing.T) {
	for _, e := range edits {
		if e.drains || slices.Contains(e.want, "lds "+ResourceName(e.base().ID)) {
			continue // the table's listener changes, checked above
		}
		t.Run(e.setting, func(t *testing.T) {
			before, after := translateEdit(t, e.base, e.edit)
			b, a := envoyResources(t, before), envoyResources(t, after)
			key := "lds " + ResourceName(e.base().ID)
			if a[key] == nil || !bytes.Equal(b[key], a[key]) {
				t.Errorf("the listener changed")
			}
		})
	}
}

// Drains follows Envoy's listener manager for the cases the table does not
// reach: a listener that appears or goes drains nothing here (a new one
// has no connections; the translator removes one only with its load
// balancer), and a chain that stays as it is keeps its connections even
// when the listener's other chains change.
func TestDrains(t *testing.T) {
	lb := httpBase()
	out, err := Translate(lb)
	if err != nil {
		t.Fatal(err)
	}
	l := out.Envoy.Listeners[0]
	if Drains(nil, l) || Drains(l, nil) || Drains(l, l) {
		t.Error("a new, removed or unchanged listener drains")
	}
	denied := httpBase()
	denied.AccessList = []NetworkItem{{"0.0.0.0/0", "DENY"}}
	withDeny, _ := Translate(denied)
	if Drains(l, withDeny.Envoy.Listeners[0]) || Drains(withDeny.Envoy.Listeners[0], l) {
		t.Error("adding or removing the refusal chain drains the serving chain")
	}
	renamed := proto.Clone(l).(*listenerv3.Listener)
	renamed.FilterChains[0].Name = "other"
	if !Drains(l, renamed) {
		t.Error("a serving chain that changed does not drain")
	}
}
