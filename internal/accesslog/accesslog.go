// Package accesslog receives the proxies' connection logs: Envoy's gRPC
// access log service (envoy.service.accesslog.v3), served on the xDS port,
// where the translator's gRPC loggers (translator.AccessLogGRPC, the
// default) send them over each proxy's connection to the control plane.
// Every entry becomes one slog record naming its load balancer and the
// proxy it came from.
package accesslog

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	datav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Message is the slog message of every entry.
const Message = "connection log"

// Service implements the AccessLogService.
type Service struct {
	accesslogv3.UnimplementedAccessLogServiceServer
	log     *slog.Logger
	entries *prometheus.CounterVec
}

// New returns the service; reg (optional) gets lbaas_access_log_entries_total.
func New(log *slog.Logger, reg prometheus.Registerer) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{log: log, entries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lbaas_access_log_entries_total",
		Help: "Connection log entries received from the proxies (Envoy's gRPC access log service), by kind (http, tcp).",
	}, []string{"kind"})}
	if reg != nil {
		reg.MustRegister(s.entries)
	}
	return s
}

// Register serves the service on a gRPC server (the xDS server).
func (s *Service) Register(g *grpc.Server) { accesslogv3.RegisterAccessLogServiceServer(g, s) }

// StreamAccessLogs logs every entry of a proxy's stream. Envoy names the
// stream (its node and the log name, lb_<id>) in the first message only,
// and never expects an answer before it closes the stream.
func (s *Service) StreamAccessLogs(stream accesslogv3.AccessLogService_StreamAccessLogsServer) error {
	var stamp []any // the stream's identity, on every record
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&accesslogv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			return err
		}
		if id := msg.GetIdentifier(); id != nil {
			stamp = []any{"lb", id.GetLogName(), "fleet", id.GetNode().GetCluster(), "proxy", id.GetNode().GetId()}
		}
		for _, e := range msg.GetHttpLogs().GetLogEntry() {
			s.entries.WithLabelValues("http").Inc()
			s.log.Info(Message, append(stamp, httpAttrs(e)...)...)
		}
		for _, e := range msg.GetTcpLogs().GetLogEntry() {
			s.entries.WithLabelValues("tcp").Inc()
			s.log.Info(Message, append(stamp, tcpAttrs(e)...)...)
		}
	}
}

func httpAttrs(e *datav3.HTTPAccessLogEntry) []any {
	req, res := e.GetRequest(), e.GetResponse()
	return append(commonAttrs(e.GetCommonProperties()),
		"method", req.GetRequestMethod().String(), "path", req.GetPath(), "host", req.GetAuthority(),
		"status", res.GetResponseCode().GetValue(), "bytes_sent", res.GetResponseBodyBytes(),
		"user_agent", req.GetUserAgent(), "referer", req.GetReferer())
}

func tcpAttrs(e *datav3.TCPAccessLogEntry) []any {
	c := e.GetConnectionProperties()
	return append(commonAttrs(e.GetCommonProperties()), "received", c.GetReceivedBytes(), "sent", c.GetSentBytes())
}

func commonAttrs(c *datav3.AccessLogCommon) []any {
	attrs := []any{"client", address(c.GetDownstreamRemoteAddress()), "node", address(c.GetUpstreamRemoteAddress())}
	if d := c.GetDuration(); d != nil {
		attrs = append(attrs, "duration", d.AsDuration())
	}
	if f := c.GetResponseFlags(); f != nil {
		attrs = append(attrs, "flags", flags(f))
	}
	return attrs
}

// address is ip:port, or "" when Envoy sent none (no node was picked).
func address(a *corev3.Address) string {
	sa := a.GetSocketAddress()
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return sa.GetAddress()
	}
	return netip.AddrPortFrom(ip, uint16(sa.GetPortValue())).String()
}

// flags are the response flags Envoy set, as the names of their fields
// ("no_healthy_upstream", "upstream_request_timeout", ...).
func flags(f *datav3.ResponseFlags) []string {
	var out []string
	m := f.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.BoolKind && m.Get(fd).Bool() {
			out = append(out, string(fd.Name()))
		}
	}
	return out
}
