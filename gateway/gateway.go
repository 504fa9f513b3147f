// Package gateway serves the Rackspace Cloud Load Balancers v1.0 REST API
// (and the identity endpoint that issues its tokens) by translating HTTP
// to the lbaas.v1 gRPC services with grpc-gateway. It owns everything that
// is HTTP: paths, status codes, the fault bodies, body limits.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// MaxBodyBytes bounds request bodies; a larger one is a 400 badRequest.
const MaxBodyBytes = 1 << 20

// Services are the gRPC service implementations the gateway calls in-process.
type Services struct {
	LoadBalancers       lbaasv1.LoadBalancerServiceServer
	Catalog             lbaasv1.CatalogServiceServer
	Nodes               lbaasv1.NodeServiceServer
	VirtualIPs          lbaasv1.VirtualIpServiceServer
	HealthMonitors      lbaasv1.HealthMonitorServiceServer
	AccessLists         lbaasv1.AccessListServiceServer
	ConnectionThrottles lbaasv1.ConnectionThrottleServiceServer
	SessionPersistence  lbaasv1.SessionPersistenceServiceServer
	ConnectionLogging   lbaasv1.ConnectionLoggingServiceServer
	ErrorPages          lbaasv1.ErrorPageServiceServer
	SSLTerminations     lbaasv1.SSLTerminationServiceServer
	CertificateMappings lbaasv1.CertificateMappingServiceServer
	ContentCaching      lbaasv1.ContentCachingServiceServer
	Metadata            lbaasv1.MetadataServiceServer
	NodeEvents          lbaasv1.NodeEventServiceServer
	Usage               lbaasv1.UsageServiceServer
}

// successCodes are the reference's status codes for each operation;
// anything not listed answers 200.
var successCodes = map[string]int{
	"/lbaas.v1.LoadBalancerService/CreateLoadBalancer":      http.StatusAccepted,
	"/lbaas.v1.LoadBalancerService/UpdateLoadBalancer":      http.StatusAccepted,
	"/lbaas.v1.LoadBalancerService/DeleteLoadBalancer":      http.StatusAccepted,
	"/lbaas.v1.LoadBalancerService/BulkDeleteLoadBalancers": http.StatusAccepted,
	"/lbaas.v1.NodeService/AddNodes":                        http.StatusAccepted,
	"/lbaas.v1.NodeService/UpdateNode":                      http.StatusAccepted,
	"/lbaas.v1.NodeService/BulkUpdateNodes":                 http.StatusAccepted,
	"/lbaas.v1.NodeService/DeleteNode":                      http.StatusAccepted,
	"/lbaas.v1.NodeService/BulkDeleteNodes":                 http.StatusAccepted,
	"/lbaas.v1.VirtualIpService/AddVirtualIp":               http.StatusAccepted,
	"/lbaas.v1.VirtualIpService/BulkDeleteVirtualIps":       http.StatusAccepted,
	// Features: the reference answers 202 for these, 200 for the others
	// (throttling, logging, error page and metadata changes).
	"/lbaas.v1.HealthMonitorService/UpdateHealthMonitor":           http.StatusAccepted,
	"/lbaas.v1.HealthMonitorService/DeleteHealthMonitor":           http.StatusAccepted,
	"/lbaas.v1.AccessListService/AppendAccessList":                 http.StatusAccepted,
	"/lbaas.v1.AccessListService/DeleteAccessList":                 http.StatusAccepted,
	"/lbaas.v1.AccessListService/DeleteNetworkItem":                http.StatusAccepted,
	"/lbaas.v1.SessionPersistenceService/UpdateSessionPersistence": http.StatusAccepted,
	"/lbaas.v1.SessionPersistenceService/DeleteSessionPersistence": http.StatusAccepted,
	"/lbaas.v1.ContentCachingService/UpdateContentCaching":         http.StatusAccepted,
	"/lbaas.v1.CertificateMappingService/AddCertificateMapping":    http.StatusAccepted,
	"/lbaas.v1.CertificateMappingService/UpdateCertificateMapping": http.StatusAccepted,
	"/lbaas.v1.CertificateMappingService/DeleteCertificateMapping": http.StatusAccepted,
}

// New returns the REST handler for the /v1.0 API.
func New(svc Services, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	m := newMetrics(reg)
	jsonMarshaler := newMarshaler()
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler),
		runtime.WithMarshalerOption(mimeJSON, jsonMarshaler),
		runtime.WithMarshalerOption(mimeXML, &xmlMarshaler{json: jsonMarshaler}),
		runtime.WithErrorHandler(errorHandler(log)),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithForwardResponseOption(setStatus),
		runtime.WithMiddlewares(m.routeLabel),
		runtime.WithDisablePathLengthFallback(),
	)
	ctx := context.Background()
	// Order matters: a later registration wins, so the fixed paths of
	// CatalogService (loadbalancers/protocols) come after
	// loadbalancers/{loadBalancerId}.
	if err := lbaasv1.RegisterLoadBalancerServiceHandlerServer(ctx, mux, svc.LoadBalancers); err != nil {
		return nil, err
	}
	if err := lbaasv1.RegisterNodeServiceHandlerServer(ctx, mux, svc.Nodes); err != nil {
		return nil, err
	}
	if err := lbaasv1.RegisterVirtualIpServiceHandlerServer(ctx, mux, svc.VirtualIPs); err != nil {
		return nil, err
	}
	for _, register := range []func() error{
		func() error { return lbaasv1.RegisterHealthMonitorServiceHandlerServer(ctx, mux, svc.HealthMonitors) },
		func() error { return lbaasv1.RegisterAccessListServiceHandlerServer(ctx, mux, svc.AccessLists) },
		func() error {
			return lbaasv1.RegisterConnectionThrottleServiceHandlerServer(ctx, mux, svc.ConnectionThrottles)
		},
		func() error {
			return lbaasv1.RegisterSessionPersistenceServiceHandlerServer(ctx, mux, svc.SessionPersistence)
		},
		func() error {
			return lbaasv1.RegisterConnectionLoggingServiceHandlerServer(ctx, mux, svc.ConnectionLogging)
		},
		func() error { return lbaasv1.RegisterErrorPageServiceHandlerServer(ctx, mux, svc.ErrorPages) },
		func() error {
			return lbaasv1.RegisterSSLTerminationServiceHandlerServer(ctx, mux, svc.SSLTerminations)
		},
		func() error {
			return lbaasv1.RegisterCertificateMappingServiceHandlerServer(ctx, mux, svc.CertificateMappings)
		},
		func() error { return lbaasv1.RegisterContentCachingServiceHandlerServer(ctx, mux, svc.ContentCaching) },
		func() error { return lbaasv1.RegisterMetadataServiceHandlerServer(ctx, mux, svc.Metadata) },
		// After NodeService: nodes/events must win over nodes/{nodeId}.
		func() error { return lbaasv1.RegisterNodeEventServiceHandlerServer(ctx, mux, svc.NodeEvents) },
		// After LoadBalancerService: loadbalancers/usage and
		// loadbalancers/billable must win over loadbalancers/{loadBalancerId}.
		func() error { return lbaasv1.RegisterUsageServiceHandlerServer(ctx, mux, svc.Usage) },
		// Last: loadbalancers/protocols and the like must win over
		// loadbalancers/{loadBalancerId}.
		func() error { return lbaasv1.RegisterCatalogServiceHandlerServer(ctx, mux, svc.Catalog) },
	} {
		if err := register(); err != nil {
			return nil, err
		}
	}
	rest := compat(mux)
	return m.instrument(compress(negotiate(rest, atomFeed(rest))), log), nil
}

// incomingHeader passes the token (and nothing else custom) to the services.
func incomingHeader(key string) (string, bool) {
	if strings.EqualFold(key, "X-Auth-Token") {
		return "x-auth-token", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// setStatus answers with the operation's status code; an empty reply has
// no body and so no content type.
func setStatus(ctx context.Context, w http.ResponseWriter, msg proto.Message) error {
	method, _ := runtime.RPCMethod(ctx)
	if _, empty := msg.(*emptypb.Empty); empty {
		w.Header().Del("Content-Type")
	}
	if code, ok := successCodes[method]; ok {
		w.WriteHeader(code)
	}
	return nil
}

// compat adapts Rackspace URL conventions the gRPC mapping cannot express:
// the changes-since query parameter (negotiate has taken care of the
// format suffixes). It also bounds the request body.
func compat(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("changes-since") {
			q["changes_since"] = q["changes-since"]
			delete(q, "changes-since")
			r.URL.RawQuery = q.Encode()
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lbaas_api_requests_total", Help: "REST API requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lbaas_api_request_duration_seconds", Help: "REST API request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route", "method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

type routeKey struct{}

// routeLabel records the matched route pattern for the metrics.
func (m *metrics) routeLabel(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if slot, ok := r.Context().Value(routeKey{}).(*string); ok {
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				*slot = p.String()
			}
		}
		next(w, r, params)
	}
}

func (m *metrics) instrument(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := "unmatched"
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
		elapsed := time.Since(start)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.code)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "code", rec.code, "duration", elapsed)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(b)
}
