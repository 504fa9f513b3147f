package xds

import (
	"context"
	"errors"
	"sort"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	extensionservice "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerOptions are what a gRPC server serving the cache needs: the
// tracker's stream interceptor (so that it can end a stream) and the codec
// that sends shared full states from their one encoding.
func ServerOptions(c *Cache, t *Tracker) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainStreamInterceptor(t.StreamInterceptor()), ServerCodec(c)}
}

// Register serves the cache on a gRPC server: ADS (state of the world with
// ordered responses, and delta) and the per-type discovery services (ECDS
// and SDS included; secrets only to entitled streams, see ServeSecrets). The
// server must have been built with ServerOptions.
func Register(ctx context.Context, g *grpc.Server, c *Cache, t *Tracker) {
	srv := serverv3.NewServer(ctx, c, t.Callbacks(), sotw.WithOrderedADS())
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(g, srv)
	extensionservice.RegisterExtensionConfigDiscoveryServiceServer(g, srv)
	secretservice.RegisterSecretDiscoveryServiceServer(g, srv)
}

type killKey struct{}

// errKilled is the cause of a stream the tracker ended.
type errKilled struct{ st *status.Status }

func (e errKilled) Error() string { return e.st.Message() }

// StreamInterceptor lets the tracker end a stream: go-control-plane's
// server offers no way to, and a client that never reads its stream is
// blocked in a send that only the end of the call releases.
func (t *Tracker) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancelCause(ss.Context())
		defer cancel(nil)
		wrapped := &killableStream{ServerStream: ss, ctx: context.WithValue(ctx, killKey{}, func(err error) { cancel(err) })}
		done := make(chan error, 1)
		go func() { done <- handler(srv, wrapped) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			var k errKilled
			if errors.As(context.Cause(ctx), &k) {
				return k.st.Err()
			}
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

type killableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *killableStream) Context() context.Context { return s.ctx }

// Run ends, every second, the streams that left a response unanswered
// longer than the ack timeout, until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	if t.limits.AckTimeout <= 0 {
		return
	}
	tick := time.NewTicker(min(time.Second, t.limits.AckTimeout/4))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.expire()
		}
	}
}

// expire ends the streams that have not answered in time. They stop
// counting for status at once; the client resyncs when it reconnects.
func (t *Tracker) expire() {
	deadline := t.now().Add(-t.limits.AckTimeout)
	t.mu.Lock()
	var late []*stream
	for _, s := range t.streams {
		if s.excluded {
			continue
		}
		for _, r := range s.sent {
			if r.at.Before(deadline) {
				s.excluded = true
				late = append(late, s)
				break
			}
		}
	}
	t.mu.Unlock()
	for _, s := range late {
		t.metrics.ackTimeouts.WithLabelValues(s.group.Fleet, string(s.group.Kind)).Inc()
		t.log.Warn("xds: a client left a response unanswered too long; disconnecting it",
			"node", s.node, "fleet", s.group.Fleet, "kind", s.group.Kind, "peer", s.peer, "ack_timeout", t.limits.AckTimeout)
		if s.kill != nil {
			s.kill(errKilled{status.Newf(codes.DeadlineExceeded, "xds: no ACK or NACK within %s", t.limits.AckTimeout)})
		}
	}
	if len(late) > 0 {
		t.settle()
	}
}

// ClientInfo describes a connected stream, for operators.
type ClientInfo struct {
	Stream    int64     `json:"stream"`
	Node      string    `json:"node"`
	Fleet     string    `json:"fleet"`
	Kind      Kind      `json:"kind"`
	Peer      string    `json:"peer"`
	Identity  string    `json:"identity,omitempty"`
	Connected time.Time `json:"connected"`
	Counting  bool      `json:"countsForStatus"`
	NACKs     uint64    `json:"nacks"`
	// DrainTime is the drain time the node's bootstrap declares, in
	// seconds (0: none declared).
	DrainTime float64          `json:"drainTimeSeconds,omitempty"`
	Types     []ClientTypeInfo `json:"types"`
}

// ClientTypeInfo is a stream's position for one resource type.
type ClientTypeInfo struct {
	Type     string `json:"type"`
	Acked    string `json:"ackedVersion"`
	Revision int64  `json:"ackedRevision"`
	// Lag is how many store revisions the acknowledged one is behind.
	Lag        int64      `json:"lag"`
	Unanswered int        `json:"unanswered"`
	Since      *time.Time `json:"unansweredSince,omitempty"`
}

// ClientList lists the connected streams.
func (t *Tracker) ClientList() []ClientInfo {
	latest := t.cache.Revision()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []ClientInfo{}
	for _, s := range t.streams {
		info := ClientInfo{Stream: s.id, Node: s.node, Fleet: s.group.Fleet, Kind: s.group.Kind, Peer: s.peer, Identity: s.identity,
			Connected: s.since, Counting: !s.excluded, NACKs: s.nacks, DrainTime: s.drainTime.Seconds()}
		for _, typeURL := range TypeOrder {
			ti := ClientTypeInfo{Type: shortType(typeURL), Acked: s.acked[typeURL]}
			if ti.Acked != "" {
				ti.Revision = t.cache.RevisionOf(s.group, typeURL, ti.Acked)
				ti.Lag = latest - ti.Revision
			}
			for _, r := range s.sent {
				if r.typeURL == typeURL {
					ti.Unanswered++
					if ti.Since == nil || r.at.Before(*ti.Since) {
						at := r.at
						ti.Since = &at
					}
				}
			}
			if ti.Acked != "" || ti.Unanswered > 0 {
				info.Types = append(info.Types, ti)
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Metrics count what clients do.
type Metrics struct {
	nacks       *prometheus.CounterVec
	ackTimeouts *prometheus.CounterVec
	refused     *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lbaas_xds_nacks_total",
			Help: "Responses xDS clients refused (NACK), by fleet and type (cds, eds, ecds, sds, lds, rds)."}, []string{"fleet", "type"}),
		ackTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lbaas_xds_ack_timeouts_total",
			Help: "xDS clients disconnected for leaving a response unanswered past --ack-timeout."}, []string{"fleet", "kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lbaas_xds_refused_streams_total",
			Help: "xDS streams ended for going over a limit, by reason."}, []string{"reason"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.nacks.Describe(ch)
	m.ackTimeouts.Describe(ch)
	m.refused.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.nacks.Collect(ch)
	m.ackTimeouts.Collect(ch)
	m.refused.Collect(ch)
}
