package gateway_test

import (
	"context"
	"io"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lrsv3 "github.com/envoyproxy/go-control-plane/envoy/service/load_stats/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/openlbaas/lbaas/translator"
)

// A proxy's load reports (LRS on the xDS port, as Envoy sends them) show
// in the load balancer's statistics: connections in the reference's
// fields, requests in the extension fields; what nothing reports is 0.
func TestStatsFromLoadReports(t *testing.T) {
	e := newEnv(t)
	id := e.createLB(simpleLB)
	// Published, so that the fleet's proxies may report on it.
	e.waitStatus(id, "ACTIVE")
	e.mustCall(404, "GET", "/loadbalancers/99999/stats", "")
	zeros := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/stats", "")
	for _, f := range []string{"connectTimeOut", "connectError", "connectFailure", "dataTimedOut", "keepAliveTimedOut", "maxConn", "currentConn",
		"connectTimeOutSsl", "connectErrorSsl", "connectFailureSsl", "dataTimedOutSsl", "keepAliveTimedOutSsl", "maxConnSsl", "currentConnSsl",
		"requests", "requestsSucceeded", "requestErrors", "requestsDropped", "requestsInProgress"} {
		if zeros[f] != float64(0) {
			t.Errorf("nothing reported yet: %s is %v, want 0", f, zeros[f])
		}
	}

	conn, err := grpc.NewClient(e.srv.XDSAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lrs := lrsv3.NewLoadReportingServiceClient(conn)
	// report opens a stream for node and sends one interval on lb.
	report := func(node *corev3.Node, lb *endpointv3.ClusterStats) lrsv3.LoadReportingService_StreamLoadStatsClient {
		st, err := lrs.StreamLoadStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&lrsv3.LoadStatsRequest{Node: node}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&lrsv3.LoadStatsRequest{ClusterStats: []*endpointv3.ClusterStats{lb}}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	load := func(issued uint64) *endpointv3.ClusterStats {
		return &endpointv3.ClusterStats{
			ClusterName:          translator.ResourceName(uint32(id)),
			TotalDroppedRequests: 2,
			UpstreamLocalityStats: []*endpointv3.UpstreamLocalityStats{{
				TotalIssuedRequests: issued, TotalSuccessfulRequests: 9, TotalErrorRequests: 1, TotalRequestsInProgress: 2,
				TotalActiveConnections: 5, TotalFailConnections: 4,
			}},
		}
	}
	// A proxy of another fleet may not report on this load balancer: its
	// report is dropped (the server has read all of it once the stream
	// has ended).
	other := report(&corev3.Node{Id: "edge-9", Cluster: "other"}, load(1000))
	if err := other.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Recv(); err != io.EOF {
		t.Fatalf("end of the other fleet's stream: %v", err)
	}
	report(&corev3.Node{Id: "edge-1", Cluster: "default"}, load(12))
	want := map[string]float64{"currentConn": 5, "maxConn": 5, "connectFailure": 4, "requests": 12, "requestsSucceeded": 9,
		"requestErrors": 1, "requestsDropped": 2, "requestsInProgress": 2, "connectTimeOut": 0, "currentConnSsl": 0}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/stats", "")
		diff := ""
		for f, v := range want {
			if got[f] != v {
				diff += f + " "
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %v differ in %s from %v", got, diff, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
