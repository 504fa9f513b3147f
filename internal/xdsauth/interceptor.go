package xdsauth

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Reasons a request is refused, the "reason" label of
// lbaas_xds_auth_denied_total.
const (
	ReasonNoIdentity = "no_identity" // no verified client certificate, or one naming no lbaas identity
	ReasonFleet      = "fleet"       // the node claims another fleet
	ReasonNode       = "node"        // the node id is not the certificate's
	ReasonMessage    = "message"     // a request that names no xDS node
)

// nodeRequest is a request that carries the client's xDS node:
// DiscoveryRequest and DeltaDiscoveryRequest, and LRS's LoadStatsRequest
// (load reports, on the xDS port: the node comes in the first one).
// Anything else is refused.
type nodeRequest interface {
	GetNode() *corev3.Node
}

// nodeOf is the xDS node a streamed message names: a discovery request's
// node, or the identifier of a connection log stream (Envoy's gRPC access
// log service, on the same port: only its first message names the node).
func nodeOf(m any) (*corev3.Node, bool) {
	switch r := m.(type) {
	case nodeRequest:
		return r.GetNode(), true
	case *accesslogv3.StreamAccessLogsMessage:
		return r.GetIdentifier().GetNode(), true
	case *metricsv3.StreamMetricsMessage:
		return r.GetIdentifier().GetNode(), true
	}
	return nil, false
}

// Authorizer checks xDS requests against the client certificate.
type Authorizer struct {
	defaultFleet string
	log          *slog.Logger
	denied       *prometheus.CounterVec
}

// New returns an Authorizer; defaultFleet is the fleet of a node with an
// empty cluster. reg (optional) gets lbaas_xds_auth_denied_total.
func New(defaultFleet string, log *slog.Logger, reg prometheus.Registerer) *Authorizer {
	if log == nil {
		log = slog.Default()
	}
	a := &Authorizer{
		defaultFleet: defaultFleet,
		log:          log,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lbaas_xds_auth_denied_total",
			Help: "xDS streams and requests refused by client-certificate authorization, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(a.denied)
	}
	return a
}

// ServerOptions are the interceptors to install on the xDS gRPC server.
func (a *Authorizer) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainStreamInterceptor(a.Stream), grpc.ChainUnaryInterceptor(a.Unary)}
}

// Stream authorizes every message a streaming xDS call receives (ADS,
// CDS, LDS, ... in both variants) and ends the stream with
// PermissionDenied at the first one that claims another fleet or node.
func (a *Authorizer) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	id, err := a.identity(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	s := &stream{ServerStream: ss, ctx: ctx, cancel: cancel, a: a, id: id, method: info.FullMethod}
	herr := handler(srv, s)
	// The refused request never reached the handler, which sees the end
	// of the stream and may return nil: the client must get the refusal.
	if d := s.refusal(); d != nil {
		return d
	}
	return herr
}

// Unary authorizes the unary Fetch* calls of the xDS services.
func (a *Authorizer) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	id, err := a.identity(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	r, ok := req.(nodeRequest)
	if !ok {
		return nil, a.deny(ReasonMessage, id, nil, info.FullMethod, "%T names no xDS node", req)
	}
	if err := a.check(id, r.GetNode(), info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// identity is the lbaas identity of the stream's verified client
// certificate.
func (a *Authorizer) identity(ctx context.Context, method string) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	var chains [][]*x509.Certificate
	if ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			chains = ti.State.VerifiedChains
		}
	}
	if len(chains) == 0 || len(chains[0]) == 0 {
		a.denied.WithLabelValues(ReasonNoIdentity).Inc()
		a.log.Warn("xds client refused: no verified client certificate", "peer", peerAddr(ctx), "method", method)
		return Identity{}, status.Error(codes.Unauthenticated, "xDS requires a verified client certificate")
	}
	id, err := FromCertificate(chains[0][0])
	if err != nil {
		a.denied.WithLabelValues(ReasonNoIdentity).Inc()
		a.log.Warn("xds client refused: no identity in its certificate", "peer", peerAddr(ctx), "method", method, "err", err)
		return Identity{}, status.Errorf(codes.PermissionDenied, "xDS client certificate: %v", err)
	}
	return id, nil
}

// check allows a request whose node (the stream's node: the xDS node may
// come only in the first request) is in the certificate's fleet and, for
// a node certificate, is that node.
func (a *Authorizer) check(id Identity, node *corev3.Node, method string) error {
	fleet := node.GetCluster()
	if fleet == "" {
		fleet = a.defaultFleet
	}
	if fleet != id.Fleet {
		return a.deny(ReasonFleet, id, node, method, "certificate %s is for fleet %q; node %q claims fleet %q",
			id, id.Fleet, node.GetId(), fleet)
	}
	if id.Node != "" && node.GetId() != id.Node {
		return a.deny(ReasonNode, id, node, method, "certificate %s is for node %q; the request names node %q",
			id, id.Node, node.GetId())
	}
	return nil
}

func (a *Authorizer) deny(reason string, id Identity, node *corev3.Node, method, format string, args ...any) error {
	a.denied.WithLabelValues(reason).Inc()
	err := status.Errorf(codes.PermissionDenied, format, args...)
	a.log.Warn("xds client refused", "reason", reason, "identity", id.String(), "node", node.GetId(),
		"cluster", node.GetCluster(), "method", method, "err", status.Convert(err).Message())
	return err
}

// stream checks each received message; after a refusal the stream's
// context is cancelled so that the handler stops.
type stream struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelFunc
	a      *Authorizer
	id     Identity
	method string

	node *corev3.Node // last node the client sent; RecvMsg is not called concurrently

	mu     sync.Mutex
	denied error
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	if err := s.refusal(); err != nil {
		return err
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	node, ok := nodeOf(m)
	if !ok {
		return s.refuse(s.a.deny(ReasonMessage, s.id, s.node, s.method, "%T names no xDS node", m))
	}
	if node != nil {
		s.node = node
	}
	if err := s.a.check(s.id, s.node, s.method); err != nil {
		return s.refuse(err)
	}
	return nil
}

func (s *stream) refuse(err error) error {
	s.mu.Lock()
	if s.denied == nil {
		s.denied = err
	}
	s.mu.Unlock()
	s.cancel()
	return err
}

func (s *stream) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
