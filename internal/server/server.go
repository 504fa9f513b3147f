// Package server wires the control plane together: store, services,
// REST gateway, gRPC, health and metrics endpoints. cmd/lbaasd runs it;
// tests start it in-process on loopback ports.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	"github.com/openlbaas/lbaas/gateway"
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	lbhealth "github.com/openlbaas/lbaas/health"
	"github.com/openlbaas/lbaas/internal/accesslog"
	"github.com/openlbaas/lbaas/internal/console"
	"github.com/openlbaas/lbaas/internal/controlplane"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/internal/nodedns"
	"github.com/openlbaas/lbaas/internal/ratelimit"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/internal/tlsreload"
	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/internal/xdsauth"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// Config is the service configuration (flags and environment variables).
type Config struct {
	HTTPAddr string
	GRPCAddr string
	XDSAddr  string
	// AccessLogPath is where connection logs go: translator.AccessLogGRPC
	// (to this server, logged here; the default when empty),
	// translator.AccessLogStdout, or an absolute file path on the proxies
	// ("{lb}" in the file name is replaced by the load balancer's resource
	// name). Start refuses what translator.CheckAccessLogPath refuses.
	AccessLogPath string
	// EnvoyDrainTime is the Envoys' drain time (--drain-time-s), told in
	// status descriptions.
	EnvoyDrainTime time.Duration
	// DebugAddr serves Go's pprof handlers when set (keep it on loopback).
	DebugAddr   string
	DatabaseURL string
	// SecretsKeyFile is the key-encryption key of the secrets at rest (the
	// private keys of SSL termination; see internal/secrets); SecretsKey,
	// when set, is that key itself (base64, from the environment). With
	// neither, a SQLite database gets a key file beside it (generated on
	// first start) and a PostgreSQL one refuses to start.
	SecretsKeyFile string
	SecretsKey     string
	PublicURL      string
	Region         string
	Fleet          string
	Pools          []store.Pool
	Limits         api.Limits
	// AllowedDomains restrict the domain names nodes may use as their
	// address (see api.Config); empty allows any.
	AllowedDomains []string
	// DeniedNodeNetworks are networks no node may be in (netguard).
	DeniedNodeNetworks []netip.Prefix
	// DenyHostAddresses also refuses this machine's interface addresses
	// as node addresses (read at start, refreshed every minute).
	DenyHostAddresses bool
	// NodeResolver resolves node names (in the API's validation, before
	// each probe, and for publication: proxies get IP endpoints only). Nil
	// resolves none: names then never resolve, and their nodes get no
	// traffic (tests stay off the network); lbaasd uses the system's.
	NodeResolver netguard.Resolver
	// NodeNameRefresh is how often node names are resolved again (5 s to
	// 5 min; default 30 s).
	NodeNameRefresh time.Duration
	TokenTTL        time.Duration
	Source          SourceAddresses
	// DemoUser creates a demo user when the database has no users.
	DemoUser bool
	// RateLimits enforces the rate limits of GET /limits (the reference's
	// defaults, with the accounts' overrides) on REST and gRPC calls.
	// lbaasd turns it on unless --rate-limits=false; off here by default
	// so tests that issue many requests need not wait.
	RateLimits bool
	// ManualActivation runs no xDS server: load balancers stay pending
	// until something calls store.MarkApplied (tests use it to hold a load
	// balancer in BUILD).
	ManualActivation bool
	// DisableHealthChecks runs no health monitor prober in this process:
	// node statuses then stay as stored. By default the prober runs (on
	// PostgreSQL, each replica probes its share of the shards).
	DisableHealthChecks bool
	// HealthCheckConcurrency bounds the probes in flight (default 256).
	HealthCheckConcurrency int
	// AckTimeout is how long an xDS client may leave a response
	// unanswered before it stops counting for status and is disconnected
	// (0: the default, 30 s; negative: never).
	AckTimeout time.Duration
	// TLSCertFile and TLSKeyFile, when set, make the REST, gRPC and xDS
	// listeners serve TLS with this certificate (see docs/security.md).
	TLSCertFile, TLSKeyFile string
	// XDSClientCAFile requires xDS clients to present a certificate
	// issued by these CAs (mutual TLS) and authorizes each client for the
	// fleet its certificate names (package xdsauth).
	XDSClientCAFile string
	// XDSInsecure allows xDS without client certificates on an address
	// that is not loopback. Without it such a configuration is refused.
	XDSInsecure bool
	// TLSReloadInterval is how often the certificate, key and client CA
	// files are re-read (tlsreload.DefaultInterval when zero).
	TLSReloadInterval time.Duration
	// DBTimeout bounds the database work of each store call, whether a
	// request's or a background job's (see store.Options.Timeout): past it
	// a request gets 503 serviceUnavailable (gRPC UNAVAILABLE). Zero
	// means store.DefaultTimeout.
	DBTimeout time.Duration
	// DBConnections is the PostgreSQL pool size, or the number of SQLite
	// readers (store.Options.Connections).
	DBConnections int
	// ReplicaLease is how long a replica on PostgreSQL counts for status
	// without renewing its lease; past it, it stops serving xDS until it
	// renews (controlplane.DefaultLease when zero).
	ReplicaLease time.Duration
	// DisableConsole serves no web console at /console.
	DisableConsole bool
	// ConsoleRefresh is how often the console's pages refresh their live
	// parts (0: console.DefaultRefresh; negative: never).
	ConsoleRefresh time.Duration
	// LoadReportInterval is the interval at which proxies and proxyless
	// clients report their load (LRS) on the xDS port
	// (loadstats.DefaultInterval when zero).
	LoadReportInterval time.Duration
	// LoadBalancerMetrics is how many load balancers get Prometheus series
	// of their own from the load reports (the first that many to report;
	// 0: none).
	LoadBalancerMetrics int
	// UsageFlushInterval is how often this replica writes its reporters'
	// numbers into the usage history (usage.DefaultFlushInterval when
	// zero): a restart loses at most that much.
	UsageFlushInterval time.Duration
	// UsageRetention is how long usage stays in the database
	// (usage.DefaultRetention when zero).
	UsageRetention time.Duration
	// Now is the clock of the load reports and usage (time.Now when nil;
	// tests set it).
	Now    func() time.Time
	Logger *slog.Logger
}

// checkTLS refuses inconsistent TLS settings and unauthenticated xDS
// beyond loopback.
func (cfg Config) checkTLS() error {
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if cfg.XDSClientCAFile != "" && cfg.TLSCertFile == "" {
		return errors.New("--xds-client-ca (mutual TLS on xDS) needs the server certificate: give --tls-cert and --tls-key")
	}
	if cfg.ManualActivation || cfg.XDSClientCAFile != "" || cfg.XDSInsecure || loopback(cfg.XDSAddr) {
		return nil
	}
	return fmt.Errorf("refusing unauthenticated xDS on --xds-addr %s, which is not a loopback address: whoever reaches it "+
		"reads every tenant's listeners, clusters and node addresses. Give --xds-client-ca (with --tls-cert and --tls-key) "+
		"for mutual TLS, or --xds-insecure to allow it knowingly", cfg.XDSAddr)
}

// loopback reports whether a listen address is on loopback only: an IP
// literal in 127.0.0.0/8 or ::1, or localhost. An empty host listens on
// every address.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// SourceAddresses are the addresses traffic to nodes comes from.
type SourceAddresses struct {
	IPv4Public, IPv4Servicenet, IPv6Public, IPv6Servicenet string
}

// Server is a running control plane.
type Server struct {
	HTTPAddr net.Addr
	GRPCAddr net.Addr
	XDSAddr  net.Addr
	// DebugAddr is where pprof and /debug/xds/clients are served (nil when off).
	DebugAddr net.Addr
	Store     *store.Store
	Auth      *auth.Service
	// LoadStats aggregates the load reports (LRS) and Envoy's metrics
	// per load balancer.
	LoadStats *loadstats.Service
	// Usage writes them into the usage history.
	Usage *usage.Recorder

	secrets     *secrets.Keyring
	httpServer  *http.Server
	debugServer *http.Server
	grpcServer  *grpc.Server
	xdsMu       sync.Mutex
	xdsServer   *grpc.Server
	tracker     atomic.Pointer[xds.Tracker]
	xdsCache    atomic.Pointer[xds.Cache]
	fleetCheck  *xdsauth.Authorizer
	accessLog   *accesslog.Service
	health      *health.Server
	tls         *tlsreload.Source // nil without --tls-cert
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	log         *slog.Logger
}

// Start opens the store, binds the listeners and serves in the background.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.checkTLS(); err != nil {
		return nil, err
	}
	if cfg.AccessLogPath != "" {
		// Envoy refuses a listener whose log file it cannot open.
		if err := translator.CheckAccessLogPath(cfg.AccessLogPath); err != nil {
			return nil, fmt.Errorf("--access-log-path: %w", err)
		}
	}
	var certs *tlsreload.Source
	if cfg.TLSCertFile != "" {
		var err error
		certs, err = tlsreload.New(tlsreload.Files{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile,
			ClientCAFile: cfg.XDSClientCAFile, Interval: cfg.TLSReloadInterval})
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, Pools: cfg.Pools, Logger: log, Timeout: cfg.DBTimeout, Connections: cfg.DBConnections, Now: cfg.Now})
	if err != nil {
		if certs != nil {
			certs.Close()
		}
		return nil, err
	}
	s := &Server{Store: st, Auth: auth.New(st, cfg.TokenTTL, log), log: log, tls: certs}
	if s.secrets, err = openSecrets(ctx, cfg, st, log); err != nil {
		_ = st.Close()
		if certs != nil {
			certs.Close()
		}
		return nil, err
	}
	s.LoadStats = loadstats.New(loadstats.Options{Interval: cfg.LoadReportInterval, LoadBalancerID: translator.LoadBalancerID,
		Serves: s.servesClusters(cfg.Fleet), MetricsLoadBalancers: cfg.LoadBalancerMetrics, Now: cfg.Now})
	if err := s.listen(cfg); err != nil {
		_ = st.Close()
		if certs != nil {
			certs.Close()
		}
		return nil, err
	}
	if cfg.DemoUser {
		if err := s.createDemoUser(ctx, cfg); err != nil {
			s.log.Warn("demo user not created", "err", err)
		}
	}
	return s, nil
}

func (s *Server) listen(cfg Config) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "lbaas_db_timeouts_total",
		Help: "Database calls, of requests and background jobs, that did not finish within --db-timeout.",
	}, func() float64 { return float64(s.Store.Timeouts()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lbaas_db_waiting",
		Help: "Database calls, of requests and background jobs, waiting for a connection of the pool (in arrival order).",
	}, func() float64 { return float64(s.Store.Waiting()) }))
	reg.MustRegister(s.LoadStats)

	guard, err := netguard.New(cfg.DeniedNodeNetworks, netguard.Options{HostAddresses: cfg.DenyHostAddresses, Logger: s.log})
	if err != nil {
		return err
	}
	names := nodedns.New(nodedns.Options{Guard: guard, Resolver: cfg.NodeResolver, Refresh: cfg.NodeNameRefresh, Logger: s.log})
	reg.MustRegister(names.Collector())

	replica := usageReplica() // names this replica's usage rows
	apiCfg := api.Config{
		Limits: cfg.Limits, Fleet: cfg.Fleet, Logger: s.log,
		SourceAddresses: sourceAddresses(cfg.Source), AllowedDomains: cfg.AllowedDomains, ResolveNode: names.Resolve,
		Secrets:   s.secrets,
		LoadStats: s.LoadStats, UsageReplica: replica,
		UsageRetention: cfg.UsageRetention, Now: cfg.Now,
	}
	var rates *ratelimit.Limiter
	if cfg.RateLimits {
		rates = ratelimit.New(s.Store, s.log)
		if err := rates.Load(context.Background()); err != nil {
			return fmt.Errorf("read the accounts' rate limits: %w", err)
		}
		s.Auth.Limiter, apiCfg.RateLimits = rates, rates
	}
	svc := Services(s.Store, s.Auth, apiCfg)
	rest, err := gateway.New(svc, s.log, reg)
	if err != nil {
		return err
	}
	identity := &gateway.Identity{Auth: s.Auth, PublicURL: cfg.PublicURL, Region: cfg.Region, Log: s.log}

	mux := http.NewServeMux()
	mux.Handle("/v1.0/", rest)
	mux.Handle("/v2.0/tokens", identity)
	mux.Handle("GET "+gateway.OpenAPIPath, gateway.OpenAPIHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if !cfg.DisableConsole {
		// The web console is a client of the API above, served in-process.
		mux.Handle(console.Prefix+"/", console.New(console.Options{API: mux, Logger: s.log, Refresh: cfg.ConsoleRefresh}))
		mux.Handle("GET "+console.Prefix, http.RedirectHandler(console.Prefix+"/", http.StatusMovedPermanently))
	}

	grpcOpts := []grpc.ServerOption{grpc.UnaryInterceptor(api.RefuseNUL)}
	if s.tls != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig())))
	}
	s.grpcServer = grpc.NewServer(grpcOpts...)
	registerGRPC(s.grpcServer, svc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpcServer, s.health)
	reflection.Register(s.grpcServer)

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr: %w", err)
	}
	grpcLn, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		_ = httpLn.Close()
		return fmt.Errorf("listen on --grpc-addr: %w", err)
	}
	s.HTTPAddr, s.GRPCAddr = httpLn.Addr(), grpcLn.Addr()
	s.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	if s.tls != nil {
		s.httpServer.TLSConfig = s.tls.ServerConfig()
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		guard.Run(ctx, time.Minute)
	}()
	if rates != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			rates.Run(ctx)
		}()
	}
	s.Usage = &usage.Recorder{Store: s.Store, Stats: s.LoadStats, Replica: replica, FlushInterval: cfg.UsageFlushInterval,
		Retention: cfg.UsageRetention, Now: cfg.Now, Log: s.log}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.Usage.Run(ctx)
	}()
	if !cfg.ManualActivation {
		if err := s.serveXDS(ctx, cfg, reg, names); err != nil {
			cancel()
			_ = httpLn.Close()
			_ = grpcLn.Close()
			return err
		}
	}
	if cfg.DebugAddr != "" {
		if err := s.serveDebug(cfg.DebugAddr); err != nil {
			cancel()
			_ = httpLn.Close()
			_ = grpcLn.Close()
			return err
		}
	}
	if !cfg.DisableHealthChecks {
		prober := lbhealth.New(s.Store, lbhealth.Options{Logger: s.log, Concurrency: cfg.HealthCheckConcurrency, Lease: cfg.ReplicaLease,
			Dialer: netguard.Dialer{Guard: guard, Resolver: cfg.NodeResolver}})
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lbaas_health_shards",
			Help: "Shards of the health monitors this replica probes (of " + fmt.Sprint(lbhealth.Shards) + ", shared among the replicas).",
		}, func() float64 { return float64(prober.Shards()) }))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			prober.Run(ctx)
		}()
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		serve := s.httpServer.Serve
		if s.tls != nil {
			serve = func(ln net.Listener) error { return s.httpServer.ServeTLS(ln, "", "") }
		}
		if err := serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpcServer.Serve(grpcLn); err != nil {
			s.log.Error("grpc server", "err", err)
		}
	}()
	return nil
}

// serveDebug serves pprof for profiling a running control plane.
func (s *Server) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on --debug-addr: %w", err)
	}
	s.DebugAddr = ln.Addr()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/xds/clients", s.xdsClientList)
	s.debugServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.debugServer.Serve(ln) }()
	return nil
}

// serveXDS publishes the store to the data plane on the xDS address. On
// PostgreSQL the publisher holds a lease among the replicas; when it
// cannot renew it (the database is out of reach), this replica stops
// serving xDS — its listener closes, so its clients go to another replica
// rather than keep a configuration nobody can update — and serves again,
// from a fresh publisher, once it has the database back.
func (s *Server) serveXDS(ctx context.Context, cfg Config, reg prometheus.Registerer, names *nodedns.Cache) error {
	// Node names resolve before the first publication, so that a restart
	// publishes no named node without its addresses.
	if err := names.Prewarm(ctx, s.Store); err != nil {
		return fmt.Errorf("resolve the node names: %w", err)
	}
	metrics := xds.NewMetrics()
	x, err := s.startXDS(ctx, cfg, reg, metrics, names, cfg.XDSAddr)
	if err != nil {
		return err
	}
	s.XDSAddr = x.addr
	reg.MustRegister(xdsClients{s}, metrics)
	if cfg.XDSClientCAFile == "" && !loopback(cfg.XDSAddr) {
		// Only with --xds-insecure (checkTLS).
		s.log.Warn("xDS clients are not authenticated (--xds-insecure): whoever reaches the xDS port reads every fleet's configuration",
			"xds", s.XDSAddr.String())
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.runXDS(ctx, cfg, reg, metrics, names, x)
	}()
	go func() {
		defer s.wg.Done()
		names.Run(ctx, s.Store)
	}()
	return nil
}

// xdsServing is one incarnation of the xDS server and its publisher.
type xdsServing struct {
	pub    *controlplane.Publisher
	server *grpc.Server
	addr   net.Addr
	ctx    context.Context
	cancel context.CancelFunc
	served chan struct{}
}

// startXDS builds a publisher from the store and serves it on addr.
func (s *Server) startXDS(ctx context.Context, cfg Config, reg prometheus.Registerer, metrics *xds.Metrics,
	names *nodedns.Cache, addr string) (*xdsServing, error) {
	limits := xds.DefaultLimits
	if cfg.AckTimeout != 0 {
		limits.AckTimeout = max(cfg.AckTimeout, 0)
	}
	pubOpts := controlplane.Options{DefaultFleet: cfg.Fleet, AccessLogPath: cfg.AccessLogPath,
		NodeAddresses: names.Lookup, Limits: limits, DrainTime: cfg.EnvoyDrainTime, Lease: cfg.ReplicaLease,
		Probes: !cfg.DisableHealthChecks, Metrics: metrics, Keys: s.secrets}
	if s.tls != nil && cfg.XDSClientCAFile != "" {
		// Mutual TLS: private keys of SSL termination go to the streams
		// whose client certificate names the load balancer's fleet.
		pubOpts.SecretsEntitled = xdsauth.Entitled
	}
	pub, err := controlplane.New(ctx, s.Store, pubOpts, s.log)
	if err != nil {
		return nil, fmt.Errorf("load the data plane configuration: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --xds-addr: %w", err)
	}
	// The tracker can end a stream (ack timeout), then the fleet check;
	// full states are encoded once and the bytes sent to every client.
	opts := append(xds.ServerOptions(pub.Cache(), pub.Tracker()),
		grpc.MaxConcurrentStreams(1<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	if s.tls != nil {
		creds := s.tls.ServerConfig()
		if cfg.XDSClientCAFile != "" {
			// Mutual TLS: every client names its fleet in its certificate
			// and sees only that fleet.
			creds = s.tls.MutualConfig("h2")
			opts = append(opts, s.xdsAuth(cfg, reg).ServerOptions()...)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(creds)))
	}
	x := &xdsServing{pub: pub, server: grpc.NewServer(opts...), addr: ln.Addr(), served: make(chan struct{})}
	x.ctx, x.cancel = context.WithCancel(ctx)
	xds.Register(x.ctx, x.server, pub.Cache(), pub.Tracker())
	// Connection logs come back on the same connection (translator.AccessLogGRPC).
	s.accessLogs(reg).Register(x.server)
	// So does the load clients and proxies report (LRS).
	s.LoadStats.Register(x.server)
	s.xdsMu.Lock()
	s.xdsServer = x.server
	s.xdsMu.Unlock()
	s.tracker.Store(pub.Tracker())
	s.xdsCache.Store(pub.Cache())
	go func() {
		defer close(x.served)
		if err := x.server.Serve(ln); err != nil {
			s.log.Error("xds server", "err", err)
		}
	}()
	return x, nil
}

// accessLogs is the access log service, built once (its metrics are
// registered) and served by every incarnation of the xDS server.
func (s *Server) accessLogs(reg prometheus.Registerer) *accesslog.Service {
	if s.accessLog == nil {
		s.accessLog = accesslog.New(s.log, reg)
	}
	return s.accessLog
}

// usageReplica names this process's usage rows: unique among the
// replicas and their restarts (readers sum every replica's rows).
func usageReplica() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	if len(host) > 40 {
		host = host[:40]
	}
	return host + "-" + hex.EncodeToString(b)
}

// servesClusters tells which clusters a load reporter's fleet is served
// (its group in the xDS cache): a reporter reports only on its own
// fleet's load balancers.
func (s *Server) servesClusters(defaultFleet string) func(*corev3.Node, []string) []bool {
	return func(node *corev3.Node, clusters []string) []bool {
		c := s.xdsCache.Load()
		if c == nil {
			return make([]bool, len(clusters))
		}
		return c.Served(xds.GroupOf(node, defaultFleet), resourcev3.ClusterType, clusters)
	}
}

// xdsAuth is the xDS fleet check, built once (its metrics are registered).
func (s *Server) xdsAuth(cfg Config, reg prometheus.Registerer) *xdsauth.Authorizer {
	if s.fleetCheck == nil {
		s.fleetCheck = xdsauth.New(cfg.Fleet, s.log, reg)
	}
	return s.fleetCheck
}

// runXDS runs the publisher until ctx ends; when the replica's lease is
// lost, it stops serving xDS and starts again once the store answers.
func (s *Server) runXDS(ctx context.Context, cfg Config, reg prometheus.Registerer, metrics *xds.Metrics,
	names *nodedns.Cache, x *xdsServing) {
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval, retry.MaxInterval = 100*time.Millisecond, 5*time.Second
	for {
		err := x.pub.Run(x.ctx)
		x.cancel()
		// Every stream ends and the listener closes: the clients go to
		// another replica.
		x.server.Stop()
		<-x.served
		if ctx.Err() != nil || err == nil {
			return
		}
		s.log.Error("xds: stopped serving xDS: this replica lost its lease among the replicas (is the database reachable?)",
			"replica", x.pub.Replica(), "xds", x.addr.String())
		addr := x.addr.String()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry.NextBackOff()):
			}
			next, err := s.startXDS(ctx, cfg, reg, metrics, names, addr)
			if err == nil {
				x = next
				break
			}
			s.log.Warn("xds: serve xDS again; retrying", "err", err)
		}
		retry.Reset()
		s.log.Info("xds: serving xDS again", "replica", x.pub.Replica(), "xds", x.addr.String())
	}
}

// Services builds every API service.
func Services(st *store.Store, authz api.Authorizer, cfg api.Config) gateway.Services {
	return gateway.Services{
		LoadBalancers:       api.NewLoadBalancers(st, authz, cfg),
		Catalog:             api.NewCatalog(authz, cfg),
		Nodes:               api.NewNodes(st, authz, cfg),
		VirtualIPs:          api.NewVirtualIPs(st, authz, cfg),
		HealthMonitors:      api.NewHealthMonitors(st, authz, cfg),
		AccessLists:         api.NewAccessLists(st, authz, cfg),
		ConnectionThrottles: api.NewConnectionThrottles(st, authz, cfg),
		SessionPersistence:  api.NewSessionPersistences(st, authz, cfg),
		ConnectionLogging:   api.NewConnectionLoggings(st, authz, cfg),
		ErrorPages:          api.NewErrorPages(st, authz, cfg),
		SSLTerminations:     api.NewSSLTerminations(st, authz, cfg),
		CertificateMappings: api.NewCertificateMappings(st, authz, cfg),
		ContentCaching:      api.NewContentCachings(st, authz, cfg),
		Metadata:            api.NewMetadata(st, authz, cfg),
		NodeEvents:          api.NewNodeEvents(st, authz, cfg),
		Usage:               api.NewUsage(st, authz, cfg),
	}
}

func registerGRPC(g *grpc.Server, svc gateway.Services) {
	lbaasv1.RegisterLoadBalancerServiceServer(g, svc.LoadBalancers)
	lbaasv1.RegisterCatalogServiceServer(g, svc.Catalog)
	lbaasv1.RegisterNodeServiceServer(g, svc.Nodes)
	lbaasv1.RegisterVirtualIpServiceServer(g, svc.VirtualIPs)
	lbaasv1.RegisterHealthMonitorServiceServer(g, svc.HealthMonitors)
	lbaasv1.RegisterAccessListServiceServer(g, svc.AccessLists)
	lbaasv1.RegisterConnectionThrottleServiceServer(g, svc.ConnectionThrottles)
	lbaasv1.RegisterSessionPersistenceServiceServer(g, svc.SessionPersistence)
	lbaasv1.RegisterConnectionLoggingServiceServer(g, svc.ConnectionLogging)
	lbaasv1.RegisterErrorPageServiceServer(g, svc.ErrorPages)
	lbaasv1.RegisterSSLTerminationServiceServer(g, svc.SSLTerminations)
	lbaasv1.RegisterCertificateMappingServiceServer(g, svc.CertificateMappings)
	lbaasv1.RegisterContentCachingServiceServer(g, svc.ContentCaching)
	lbaasv1.RegisterMetadataServiceServer(g, svc.Metadata)
	lbaasv1.RegisterNodeEventServiceServer(g, svc.NodeEvents)
	lbaasv1.RegisterUsageServiceServer(g, svc.Usage)
}

func sourceAddresses(src SourceAddresses) *lbaasv1.SourceAddresses {
	out := &lbaasv1.SourceAddresses{}
	if src.IPv4Public != "" {
		out.Ipv4Public = &src.IPv4Public
	}
	if src.IPv4Servicenet != "" {
		out.Ipv4Servicenet = &src.IPv4Servicenet
	}
	if src.IPv6Public != "" {
		out.Ipv6Public = &src.IPv6Public
	}
	if src.IPv6Servicenet != "" {
		out.Ipv6Servicenet = &src.IPv6Servicenet
	}
	return out
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

const demoUser, demoTenant = "demo", "demo"

func (s *Server) createDemoUser(ctx context.Context, cfg Config) error {
	n, err := s.Store.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	key, err := s.Auth.CreateUser(ctx, demoUser, demoTenant, "")
	if err != nil {
		return err
	}
	base := cfg.PublicURL
	if base == "" {
		base = "http://" + s.HTTPAddr.String()
		if s.tls != nil {
			base = "https://" + s.HTTPAddr.String()
		}
	}
	s.log.Info("created a demo user", "username", demoUser, "tenant", demoTenant)
	fmt.Fprintf(os.Stderr, "\nDemo user %q (tenant %q) created. Its API key is shown only now:\n\n"+
		"  export API_KEY=%s\n"+
		"  curl -s %s/v2.0/tokens -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"auth\":{\"RAX-KSKEY:apiKeyCredentials\":{\"username\":\"%s\",\"apiKey\":\"'$API_KEY'\"}}}'\n\n",
		demoUser, demoTenant, key, base, demoUser)
	return nil
}

// Shutdown stops serving: in-flight requests finish (bounded by ctx), then
// the database is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	err := s.httpServer.Shutdown(ctx)
	stopped := make(chan struct{})
	go func() {
		s.grpcServer.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpcServer.Stop()
	}
	if s.debugServer != nil {
		_ = s.debugServer.Close()
	}
	s.xdsMu.Lock()
	if s.xdsServer != nil {
		// xDS streams never end by themselves: proxies reconnect elsewhere.
		s.xdsServer.Stop()
	}
	s.xdsMu.Unlock()
	s.cancel()
	if s.tls != nil {
		s.tls.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// Never hang a shutdown on a stuck background task.
		return errors.Join(err, errors.New("background tasks did not stop in time"))
	}
	return errors.Join(err, s.Store.Close())
}

// xdsClientList lists the connected xDS clients for operators: fleet,
// kind, node, peer, what each acknowledged and how far behind it is.
func (s *Server) xdsClientList(w http.ResponseWriter, _ *http.Request) {
	tracker := s.tracker.Load()
	if tracker == nil {
		http.Error(w, "no xDS server in this process", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"clients": tracker.ClientList()})
}

// xdsClients exports the connected xDS clients per fleet and kind.
type xdsClients struct{ s *Server }

var xdsClientsDesc = prometheus.NewDesc("lbaas_xds_clients", "Connected xDS clients by fleet and kind (envoy or grpc).",
	[]string{"fleet", "kind"}, nil)

func (c xdsClients) Describe(ch chan<- *prometheus.Desc) { ch <- xdsClientsDesc }

func (c xdsClients) Collect(ch chan<- prometheus.Metric) {
	tracker := c.s.tracker.Load()
	if tracker == nil {
		return
	}
	for g, n := range tracker.Clients() {
		ch <- prometheus.MustNewConstMetric(xdsClientsDesc, prometheus.GaugeValue, float64(n), g.Fleet, string(g.Kind))
	}
}
