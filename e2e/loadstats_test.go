package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// stats is GET /loadbalancers/{id}/stats.
type stats struct {
	ConnectTimeOut, ConnectError, ConnectFailure, DataTimedOut, KeepAliveTimedOut, MaxConn, CurrentConn                      int
	Requests, RequestsSucceeded, RequestErrors, RequestsDropped, RequestsInProgress                                          int
	ConnectTimeOutSsl, ConnectErrorSsl, ConnectFailureSsl, DataTimedOutSsl, KeepAliveTimedOutSsl, MaxConnSsl, CurrentConnSsl int
}

// calls makes n RPCs and counts those that failed.
func calls(t *testing.T, c testgrpc.TestServiceClient, n int) (failed int) {
	t.Helper()
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
			failed++
		}
		cancel()
	}
	return failed
}

// Real grpc-go xDS clients report their load (LRS) to lbaasd, which shows
// it per load balancer: after N calls through a load balancer, some of
// them failing, its stats show exactly those counts; two clients on two
// load balancers never mix.
func TestProxylessLoadReports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil, "--load-report-interval", "200ms", "--usage-flush-interval", "200ms")
	a := newAPI(t, bin, dir, d)
	one, two := startBackend(t, "one"), startBackend(t, "two")

	lb := func(name string, port int, be *backend) int {
		id := a.create(fmt.Sprintf(`{"loadBalancer":{"name":%q,"protocol":"HTTP","port":%d,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, name, port, nodeJSON("127.0.0.1", be.port, ""))).ID
		a.waitStatus(id, "ACTIVE")
		return id
	}
	lb1, lb2 := lb("one", 80, one), lb("two", 81, two)

	var before stats
	a.do("GET", a.lbPath(lb1, "/stats"), "", 200, &before)
	if before != (stats{}) {
		t.Fatalf("a load balancer nothing reported yet: %+v, want zeros", before)
	}

	c1 := newProxyless(t, bin, d, "client-1").dial(lb1)
	c2 := newProxyless(t, bin, d, "client-2").dial(lb2)
	one.failNext.Store(3)
	if failed := calls(t, c1, 20); failed != 3 {
		t.Fatalf("%d of 20 calls through lb %d failed, want 3", failed, lb1)
	}
	if failed := calls(t, c2, 7); failed != 0 {
		t.Fatalf("%d of 7 calls through lb %d failed", failed, lb2)
	}

	waitStats(t, a, map[int]stats{
		lb1: {Requests: 20, RequestsSucceeded: 17, RequestErrors: 3},
		lb2: {Requests: 7, RequestsSucceeded: 7},
	})
	// The usage history (written by the replica each flush interval) has
	// exactly those calls too: the current usage and the console's history.
	waitUsage(t, a, map[int][2]int{lb1: {20, 3}, lb2: {7, 0}})
}

// waitUsage waits (10 s at most) until each load balancer's current usage
// and history count exactly want's requests and errors.
func waitUsage(t *testing.T, a *api, want map[int][2]int) {
	t.Helper()
	for id, w := range want {
		var got, hist [2]int
		deadline := time.Now().Add(10 * time.Second)
		for {
			var cur struct {
				LoadBalancerUsageRecords []struct{ Requests, RequestErrors int }
			}
			a.do("GET", a.lbPath(id, "/usage/current"), "", 200, &cur)
			got = [2]int{}
			for _, r := range cur.LoadBalancerUsageRecords {
				got[0], got[1] = got[0]+r.Requests, got[1]+r.RequestErrors
			}
			var h struct {
				History struct {
					Points []struct{ Requests, RequestErrors int }
				}
			}
			a.do("GET", a.lbPath(id, "/stats/history?window=hour"), "", 200, &h)
			hist = [2]int{}
			for _, p := range h.History.Points {
				hist[0], hist[1] = hist[0]+p.Requests, hist[1]+p.RequestErrors
			}
			if got == w && hist == w || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != w || hist != w {
			t.Errorf("lb %d: current usage %v and history %v requests and errors, want %v", id, got, hist, w)
		}
	}
}

// waitStats waits (10 s at most) until each load balancer's stats are
// exactly want.
func waitStats(t *testing.T, a *api, want map[int]stats) {
	t.Helper()
	for id, w := range want {
		var got stats
		deadline := time.Now().Add(10 * time.Second)
		for {
			a.do("GET", a.lbPath(id, "/stats"), "", 200, &got)
			if got == w || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != w {
			t.Errorf("lb %d: stats %+v, want %+v", id, got, w)
		}
	}
}

// grpc-js reports its load too.
func TestGRPCJSLoadReports(t *testing.T) {
	t.Parallel()
	modules := grpcjsModules(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil, "--load-report-interval", "200ms")
	a := newAPI(t, bin, dir, d)
	be := startBackend(t, "js")
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"js","protocol":"HTTP","port":80,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, nodeJSON("127.0.0.1", be.port, ""))).ID
	a.waitStatus(lb, "ACTIVE")
	c := startGRPCJS(t, modules, bin, d, "grpcjs-reporter", lb)
	if h, err := c.hits(15); err != nil || h["js"] != 15 {
		t.Fatalf("15 calls through grpc-js: %v, %v", h, err)
	}
	waitStats(t, a, map[int]stats{lb: {Requests: 15, RequestsSucceeded: 15}})
}
