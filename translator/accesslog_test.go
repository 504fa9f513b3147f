package translator

import (
	"testing"
)

// Golden cases of this feature live with its test (the table in
// translate_test.go is shared by every feature). tcp_features and
// udp_logging log to the default, the control plane over gRPC;
// http_features to a file per load balancer.
func init() {
	goldenCases["http_logging_grpc"] = &LoadBalancer{ID: 19, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.19"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		ConnectionLogging: true, AccessLogPath: AccessLogGRPC}
	goldenCases["tcp_logging_stdout"] = &LoadBalancer{ID: 20, Protocol: "TCP", Port: 2000, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{"127.1.0.20"}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		ConnectionLogging: true, AccessLogPath: AccessLogStdout}
}

func TestAccessLogLoggers(t *testing.T) {
	for _, tc := range []struct {
		protocol, dest, want string
	}{
		{"HTTP", "", httpGRPCLog},
		{"HTTP", AccessLogGRPC, httpGRPCLog},
		{"TCP", AccessLogGRPC, tcpGRPCLog},
		{"UDP", "", tcpGRPCLog},
		{"HTTP", AccessLogStdout, stdoutAccessLog},
		{"MYSQL", "/var/log/lbaas/{lb}.log", fileAccessLog},
	} {
		logs := accessLogs(&LoadBalancer{ID: 7, Protocol: tc.protocol, ConnectionLogging: true, AccessLogPath: tc.dest}, Family(tc.protocol) == FamilyHTTP)
		if len(logs) != 1 || logs[0].GetName() != tc.want {
			t.Errorf("%s to %q: %v, want one %s", tc.protocol, tc.dest, logs, tc.want)
			continue
		}
		if err := logs[0].ValidateAll(); err != nil {
			t.Errorf("%s to %q: %v", tc.protocol, tc.dest, err)
		}
	}
	if logs := accessLogs(&LoadBalancer{ID: 7, Protocol: "HTTP"}, true); logs != nil {
		t.Errorf("logging off: %v", logs)
	}
}

func TestCheckAccessLogPath(t *testing.T) {
	for _, ok := range []string{"grpc", "stdout", "/dev/stdout", "/var/log/lbaas/{lb}.log", "/var/log/lbaas.log", "/var/log/lb-{lb}"} {
		if err := CheckAccessLogPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "GRPC", "var/log/x.log", "./x.log", "/var/log/", "/var/log//x.log", "/var/log/../x.log",
		"/var/log/{lb}/access.log", "/var/{lb}/x.log", "/var/log/x\n.log", "/var/log/x\x00.log", "/var/log/\xff.log"} {
		if err := CheckAccessLogPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
