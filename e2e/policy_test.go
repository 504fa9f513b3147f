package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// What each kind of proxyless gRPC client makes of every load-balancing
// setting and of passive health, with the real clients: grpc-go and Node's
// grpc-js (see translator/grpc.go for the policy lists and the outlier
// detection they get).

// sampler makes n calls through one client and counts the replies per
// backend; it stops at the first failed call.
type sampler func(n int) (map[string]int, error)

// clientKind dials load balancers with one gRPC implementation.
type clientKind struct {
	name string
	dial func(t *testing.T, lbID int) sampler
}

// clientKinds are grpc-go (in this process) and grpc-js (a Node process per
// load balancer); grpc-js is left out, loudly, where node or npm is missing.
func clientKinds(t *testing.T, bin string, d *daemon) []clientKind {
	t.Helper()
	goClient := newProxyless(t, bin, d, "policy-grpc-go")
	kinds := []clientKind{{"grpc-go", func(t *testing.T, lbID int) sampler {
		c := goClient.dial(lbID)
		return func(n int) (map[string]int, error) { return hits(c, n) }
	}}}
	var modules string
	t.Run("grpc-js installed", func(t *testing.T) { modules = grpcjsModules(t) })
	if modules != "" {
		kinds = append(kinds, clientKind{"grpc-js", func(t *testing.T, lbID int) sampler {
			return startGRPCJS(t, modules, bin, d, fmt.Sprintf("policy-grpc-js-%d", lbID), lbID).hits
		}})
	}
	return kinds
}

// within samples traffic until ok accepts a sample, for d at most.
func within(t *testing.T, d time.Duration, s sampler, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last map[string]int
	var err error
	for time.Now().Before(deadline) {
		if last, err = s(20); err == nil && ok(last) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: last sample %v, error %v", what, last, err)
}

// Every algorithm, and session persistence, is served by both clients:
// each takes the first policy of the cluster's list it knows (for grpc-js,
// round robin where grpc-go has least request or weighted round robin), so
// neither refuses a load balancer, and the status stays ACTIVE.
func TestProxylessEveryPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	kinds := clientKinds(t, bin, d)
	var nodes []string
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, nodeJSON("127.0.0.1", startBackend(t, name).port, `,"weight":2`))
	}
	port := 80
	for _, setting := range []struct{ algorithm, persistence string }{
		{"RANDOM", ""}, {"ROUND_ROBIN", ""}, {"WEIGHTED_ROUND_ROBIN", ""},
		{"LEAST_CONNECTIONS", ""}, {"WEIGHTED_LEAST_CONNECTIONS", ""}, {"ROUND_ROBIN", "HTTP_COOKIE"},
	} {
		for _, kind := range kinds {
			t.Run(kind.name+"/"+setting.algorithm+"/"+setting.persistence, func(t *testing.T) {
				port++
				lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"policy","protocol":"HTTP","port":%d,"algorithm":%q,
					"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, port, setting.algorithm, strings.Join(nodes, ",")))
				a.waitStatus(lb.ID, "ACTIVE")
				if setting.persistence != "" {
					a.do("PUT", a.lbPath(lb.ID, "/sessionpersistence"), `{"sessionPersistence":{"persistenceType":"`+setting.persistence+`"}}`, 202, nil)
					a.waitStatus(lb.ID, "ACTIVE")
				}
				s := kind.dial(t, lb.ID)
				spread := func(h map[string]int) bool { return len(h) == 3 }
				what := "calls reach every node"
				if setting.persistence != "" {
					// The channel is the session: every call goes to one node.
					spread = func(h map[string]int) bool { return len(h) == 1 && h["n1"]+h["n2"]+h["n3"] == 20 }
					what = "every call of the channel goes to one node"
				}
				within(t, 10*time.Second, s, what, spread)
				// Used, and acknowledged: a refusal would show as ERROR.
				a.do("PUT", a.lbPath(lb.ID, ""), `{"loadBalancer":{"timeout":50}}`, 202, nil)
				if st := a.waitStatus(lb.ID, "ACTIVE"); st.StatusDescription != "" {
					t.Errorf("statusDescription %q", st.StatusDescription)
				}
				within(t, 10*time.Second, s, what+" after a change", spread)
			})
		}
	}
}

// Passive health (gRFC A50 outlier detection) in both clients. By default
// a node failing every call is ejected, and a node failing one call among
// successes is not (clients judge every 10 s, hence the long waits); with
// checkPassive (Linode) a single failed call ejects the node.
func TestProxylessOutlierDetection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	kinds := clientKinds(t, bin, d)
	var ports atomic.Uint32
	ports.Store(80)
	// setup makes a load balancer over two fresh nodes, a and b, and
	// waits until the client spreads calls over both. The cases run in
	// parallel (each waits out the clients' 10 s intervals on its own load
	// balancer).
	setup := func(t *testing.T, kind clientKind, checkPassive bool) (sampler, *backend) {
		port := ports.Add(1)
		x, y := startBackend(t, "a"), startBackend(t, "b")
		lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"passive","protocol":"HTTP","port":%d,"algorithm":"ROUND_ROBIN","checkPassive":%v,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`, port, checkPassive,
			nodeJSON("127.0.0.1", x.port, ""), nodeJSON("127.0.0.1", y.port, "")))
		a.waitStatus(lb.ID, "ACTIVE")
		s := kind.dial(t, lb.ID)
		within(t, 10*time.Second, s, "both nodes serve", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
		return s, y
	}
	for _, kind := range kinds {
		t.Run(kind.name+"/default", func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, kind, false)
			// One failure among many successes: b stays (an interval has passed).
			b.failNext.Store(1)
			until := time.Now().Add(11 * time.Second)
			for time.Now().Before(until) {
				_, _ = s(20)
				time.Sleep(50 * time.Millisecond)
			}
			within(t, time.Second, s, "b still serves after one failure", func(h map[string]int) bool { return h["b"] > 0 })
			// A node failing every call is ejected.
			b.failAll.Store(true)
			within(t, 25*time.Second, s, "b is ejected", func(h map[string]int) bool { return h["a"] == 20 })
		})
		t.Run(kind.name+"/checkPassive", func(t *testing.T) {
			t.Parallel()
			s, b := setup(t, kind, true)
			// gRPC judges a percentage of each second's calls: a single
			// failure ejects a node getting fewer than 100 calls a second.
			p := paced(s, 20*time.Millisecond)
			b.failNext.Store(1)
			within(t, 10*time.Second, p, "b is ejected after a single failure", func(h map[string]int) bool { return h["a"] == 20 })
			// It serves again, but stays out for the ejection time (60 s).
			if h, err := s(40); err != nil || h["a"] != 40 {
				t.Fatalf("after the ejection: %v, %v", h, err)
			}
		})
	}
}

// paced makes a sample's calls one at a time, waiting every between them.
func paced(s sampler, every time.Duration) sampler {
	return func(n int) (map[string]int, error) {
		out := map[string]int{}
		for range n {
			h, err := s(1)
			for k, v := range h {
				out[k] += v
			}
			if err != nil {
				return out, err
			}
			time.Sleep(every)
		}
		return out, nil
	}
}
