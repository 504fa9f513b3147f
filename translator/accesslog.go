package translator

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	fileaccesslogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	grpcaccesslogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	streamaccesslogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"
)

// Where connection logs go (LoadBalancer.AccessLogPath): one of these
// words, or an absolute file path on the proxies.
const (
	// AccessLogGRPC streams every entry to the control plane, Envoy's gRPC
	// access log service on the xDS connection (ControlPlaneCluster): no
	// file on the proxies, so nothing there that could be missing.
	AccessLogGRPC = "grpc"
	// AccessLogStdout writes one line per entry to Envoy's standard output.
	AccessLogStdout = "stdout"
	// DefaultAccessLogPath is the destination unless the operator says
	// otherwise.
	DefaultAccessLogPath = AccessLogGRPC
)

// ControlPlaneCluster is the bootstrap's cluster to the control plane
// (lbaasd envoy-bootstrap writes it): the xDS connection, which also
// carries the gRPC access logs.
const ControlPlaneCluster = "xds_cluster"

const (
	fileAccessLog   = "envoy.access_loggers.file"
	stdoutAccessLog = "envoy.access_loggers.stdout"
	httpGRPCLog     = "envoy.access_loggers.http_grpc"
	tcpGRPCLog      = "envoy.access_loggers.tcp_grpc"
)

// accessLogs log each request (HTTP) or connection (other protocols, UDP
// sessions) when connection logging is on: streamed to the control plane
// under the load balancer's resource name, or written as one line (Apache
// combined format plus upstream and duration for HTTP) starting with that
// name.
//
// A file whose directory does not exist on the proxy makes Envoy refuse the
// whole listener (its access log manager opens the file when the listener
// is built), which is why the default is the gRPC service and lbaasd
// checks a file path's form at start (CheckAccessLogPath).
func accessLogs(lb *LoadBalancer, http bool) []*accesslogv3.AccessLog {
	if !lb.ConnectionLogging {
		return nil
	}
	name := ResourceName(lb.ID)
	dest := lb.AccessLogPath
	if dest == "" {
		dest = DefaultAccessLogPath
	}
	if dest == AccessLogGRPC {
		common := &grpcaccesslogv3.CommonGrpcAccessLogConfig{
			LogName: name,
			GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ControlPlaneCluster},
			}},
			TransportApiVersion: corev3.ApiVersion_V3,
		}
		if http {
			return accessLog(httpGRPCLog, &grpcaccesslogv3.HttpGrpcAccessLogConfig{CommonConfig: common})
		}
		return accessLog(tcpGRPCLog, &grpcaccesslogv3.TcpGrpcAccessLogConfig{CommonConfig: common})
	}
	format := name + ` %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% - - [%START_TIME(%d/%b/%Y:%H:%M:%S %z)%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %BYTES_SENT% "%REQ(REFERER)%" "%REQ(USER-AGENT)%" %UPSTREAM_HOST% %DURATION%ms` + "\n"
	if !http {
		format = name + ` %DOWNSTREAM_REMOTE_ADDRESS% [%START_TIME(%d/%b/%Y:%H:%M:%S %z)%] %UPSTREAM_HOST% received=%BYTES_RECEIVED% sent=%BYTES_SENT% duration=%DURATION%ms flags=%RESPONSE_FLAGS%` + "\n"
	}
	text := &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormatSource{
		TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: format}},
	}}
	if dest == AccessLogStdout {
		return accessLog(stdoutAccessLog, &streamaccesslogv3.StdoutAccessLog{
			AccessLogFormat: &streamaccesslogv3.StdoutAccessLog_LogFormat{LogFormat: text},
		})
	}
	return accessLog(fileAccessLog, &fileaccesslogv3.FileAccessLog{
		Path:            strings.ReplaceAll(dest, "{lb}", name),
		AccessLogFormat: &fileaccesslogv3.FileAccessLog_LogFormat{LogFormat: text},
	})
}

func accessLog(name string, config proto.Message) []*accesslogv3.AccessLog {
	return []*accesslogv3.AccessLog{{Name: name, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(config)}}}
}

// CheckAccessLogPath checks a connection-log destination before anything
// is published with it: AccessLogGRPC, AccessLogStdout, or an absolute,
// clean file path whose "{lb}", if any, is in the file name. A directory
// per load balancer could not exist ahead of the load balancer, and Envoy
// refuses a listener whose log file it cannot open. (The directory itself
// is on the proxies, which the control plane cannot see: it must exist
// there.)
func CheckAccessLogPath(dest string) error {
	switch dest {
	case AccessLogGRPC, AccessLogStdout:
		return nil
	case "":
		return fmt.Errorf("empty: give %q, %q or an absolute file path", AccessLogGRPC, AccessLogStdout)
	}
	switch {
	case !utf8.ValidString(dest) || strings.ContainsAny(dest, "\x00\n\r"):
		return fmt.Errorf("%q is not a file path", dest)
	case !strings.HasPrefix(dest, "/"):
		return fmt.Errorf("%q is not %q, %q or an absolute file path", dest, AccessLogGRPC, AccessLogStdout)
	case strings.HasSuffix(dest, "/") || path.Clean(dest) != dest:
		return fmt.Errorf("%q is not a clean path to a file (want e.g. %s)", dest, path.Clean(dest))
	case strings.Contains(path.Dir(dest), "{lb}"):
		return fmt.Errorf("%q: {lb} may only be in the file name: a directory per load balancer would not exist on the proxies", dest)
	}
	return nil
}
