package server_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	datav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/logutil"
	"github.com/openlbaas/lbaas/internal/server"
)

// The proxies' connection logs (the default destination) arrive on the
// xDS port and are logged by lbaasd with their load balancer.
func TestConnectionLogsArriveOnTheXDSPort(t *testing.T) {
	var out logutil.Buffer
	srv, err := server.Start(context.Background(), server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0",
		DatabaseURL: filepath.Join(t.TempDir(), "db"), Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour,
		DisableHealthChecks: true, Logger: slog.New(slog.NewTextHandler(&out, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.XDSAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Send(&accesslogv3.StreamAccessLogsMessage{
		Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{LogName: "lb_5", Node: &corev3.Node{Id: "edge-1", Cluster: "default"}},
		LogEntries: &accesslogv3.StreamAccessLogsMessage_TcpLogs{TcpLogs: &accesslogv3.StreamAccessLogsMessage_TCPAccessLogEntries{
			LogEntry: []*datav3.TCPAccessLogEntry{{ConnectionProperties: &datav3.ConnectionProperties{ReceivedBytes: 7, SentBytes: 9}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	want := `msg="connection log" lb=lb_5 fleet=default proxy=edge-1`
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "received=7 sent=9") {
		t.Errorf("lbaasd's log lacks %q and the counts:\n%s", want, out.String())
	}
}

// A destination Envoy could never open is refused at start, naming it.
func TestStartRefusesAnAccessLogPathTheProxiesCannotOpen(t *testing.T) {
	for _, bad := range []string{"logs/{lb}.log", "/var/log/{lb}/access.log"} {
		_, err := server.Start(context.Background(), server.Config{
			HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", AccessLogPath: bad,
			DatabaseURL: filepath.Join(t.TempDir(), "db"), Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil || !strings.Contains(err.Error(), "--access-log-path") || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
