package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	datav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/openlbaas/lbaas/internal/grpctest"
	"github.com/openlbaas/lbaas/internal/logutil"
)

// records are the JSON records logged so far.
func records(t *testing.T, sink *logutil.Buffer) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(sink.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func sock(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// A proxy's stream, as Envoy sends it (identifier first, then batches),
// over a real gRPC connection: one record per entry, with its load
// balancer and proxy.
func TestStreamLogsEveryEntry(t *testing.T) {
	var sink logutil.Buffer
	reg := prometheus.NewRegistry()
	svc := New(slog.New(slog.NewJSONHandler(&sink, nil)), reg)
	conn := grpctest.Loopback(t, svc.Register)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	send := func(msgs ...*accesslogv3.StreamAccessLogsMessage) {
		t.Helper()
		stream, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stream.CloseAndRecv(); err != nil {
			t.Fatal(err)
		}
	}
	id := func(lb string) *accesslogv3.StreamAccessLogsMessage_Identifier {
		return &accesslogv3.StreamAccessLogsMessage_Identifier{LogName: lb, Node: &corev3.Node{Id: "edge-1", Cluster: "default"}}
	}
	common := &datav3.AccessLogCommon{
		DownstreamRemoteAddress: sock("127.0.0.1", 40000), UpstreamRemoteAddress: sock("::1", 8080),
		Duration: durationpb.New(1500 * time.Millisecond),
	}
	send(&accesslogv3.StreamAccessLogsMessage{Identifier: id("lb_7"), LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{
		HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: []*datav3.HTTPAccessLogEntry{{
			CommonProperties: common,
			Request:          &datav3.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_GET, Path: "/a", Authority: "example.com"},
			Response:         &datav3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(200), ResponseBodyBytes: 12},
		}, {
			CommonProperties: &datav3.AccessLogCommon{DownstreamRemoteAddress: sock("127.0.0.2", 1), ResponseFlags: &datav3.ResponseFlags{NoHealthyUpstream: true}},
			Request:          &datav3.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_HEAD, Path: "/b"},
			Response:         &datav3.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(503)},
		}}},
	}}, &accesslogv3.StreamAccessLogsMessage{LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{
		// Later messages carry no identifier: they belong to the same stream.
		HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: []*datav3.HTTPAccessLogEntry{{
			Request: &datav3.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_POST, Path: "/c"},
		}}},
	}})
	send(&accesslogv3.StreamAccessLogsMessage{Identifier: id("lb_9"), LogEntries: &accesslogv3.StreamAccessLogsMessage_TcpLogs{
		TcpLogs: &accesslogv3.StreamAccessLogsMessage_TCPAccessLogEntries{LogEntry: []*datav3.TCPAccessLogEntry{{
			CommonProperties:     common,
			ConnectionProperties: &datav3.ConnectionProperties{ReceivedBytes: 100, SentBytes: 2000},
		}}},
	}})

	recs := records(t, &sink)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %v", len(recs), recs)
	}
	want := []map[string]any{
		{"msg": Message, "lb": "lb_7", "fleet": "default", "proxy": "edge-1", "client": "127.0.0.1:40000", "node": "[::1]:8080",
			"method": "GET", "path": "/a", "host": "example.com", "status": 200.0, "bytes_sent": 12.0, "duration": float64(1500 * time.Millisecond)},
		{"lb": "lb_7", "client": "127.0.0.2:1", "node": "", "method": "HEAD", "status": 503.0, "flags": []any{"no_healthy_upstream"}},
		{"lb": "lb_7", "proxy": "edge-1", "method": "POST", "path": "/c"},
		{"lb": "lb_9", "fleet": "default", "client": "127.0.0.1:40000", "received": 100.0, "sent": 2000.0},
	}
	for i, w := range want {
		for k, v := range w {
			got, _ := json.Marshal(recs[i][k])
			exp, _ := json.Marshal(v)
			if !bytes.Equal(got, exp) {
				t.Errorf("record %d: %s = %s, want %s (%v)", i, k, got, exp, recs[i])
			}
		}
	}
	counted := map[string]float64{}
	families, _ := reg.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			counted[f.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if counted["lbaas_access_log_entries_total/http"] != 3 || counted["lbaas_access_log_entries_total/tcp"] != 1 {
		t.Errorf("entries counted %v, want 3 http and 1 tcp", counted)
	}
}
