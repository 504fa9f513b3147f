// Command lbaasd is the load-balancer-as-a-service control plane: the
// Rackspace Cloud Load Balancers v1.0 REST API, the same services over
// gRPC, and (soon) xDS for the Envoy fleet, in one process.
//
// Every flag can also be given as an environment variable: LBAASD_ and the
// flag name in capitals with - as _ (--database-url: LBAASD_DATABASE_URL).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	"github.com/openlbaas/lbaas/envoy"
	"github.com/openlbaas/lbaas/internal/console"
	"github.com/openlbaas/lbaas/internal/controlplane"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/ratelimit"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/internal/tlsreload"
	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

const envPrefix = "LBAASD"

// defaultPools let everything run on one machine: IPv4 VIPs on loopback
// addresses a local Envoy can bind, IPv6 VIPs from a unique local prefix.
const defaultPools = "PUBLIC=127.1.0.0/16,SERVICENET=127.2.0.0/16,PUBLIC=fd00:1ba5::/64"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := root().ParseAndRun(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "lbaasd:", err)
		os.Exit(1)
	}
}

// common are the flags every subcommand that touches the database shares.
type common struct {
	databaseURL string
	dbTimeout   time.Duration
	dbConns     int
	logLevel    string
	logFormat   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.databaseURL, "database-url", "lbaasd.db",
		"database: a SQLite file path (embedded default) or postgres://user:pass@host:5432/db")
	fs.DurationVar(&c.dbTimeout, "db-timeout", store.DefaultTimeout,
		"longest a request's or a background job's database work may take; past it requests get 503 serviceUnavailable")
	fs.IntVar(&c.dbConns, "db-connections", 0,
		fmt.Sprintf("database connections of this process: the PostgreSQL pool (default one per core, at least 4: %d here) or SQLite's readers beside its one writer (default one per core, at least 2: %d here); calls beyond them wait in arrival order",
			store.DefaultConnections("postgres"), store.DefaultConnections("sqlite")))
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

// logger checks the common flags and returns the logger they ask for.
func (c *common) logger() (*slog.Logger, error) {
	if c.dbTimeout <= 0 {
		return nil, errors.New("--db-timeout must be positive")
	}
	if c.dbConns < 0 {
		return nil, errors.New("--db-connections must not be negative")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json")
}

func root() *ffcli.Command {
	serve := serveCommand()
	return strict(&ffcli.Command{
		Name:        "lbaasd",
		ShortUsage:  "lbaasd [serve|user|limits|migrate|envoy-bootstrap|cert|secrets] [flags]",
		ShortHelp:   "Load-balancer-as-a-service control plane (Rackspace CLB v1.0 API, gRPC, xDS).",
		FlagSet:     serve.FlagSet,
		Options:     serve.Options,
		Subcommands: []*ffcli.Command{serve, userCommand(), limitsCommand(), migrateCommand(), bootstrapCommand(), certCommand(), secretsCommand()},
		Exec:        serve.Exec,
	})
}

// strict makes c and its subcommands refuse arguments they do not take, so
// that a mistyped command (lbaasd serv, lbaasd user craete) is an error
// rather than the default command or a silent help text.
func strict(c *ffcli.Command) *ffcli.Command {
	exec := c.Exec
	c.Exec = func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command or argument %q (see %s -h)", args[0], strings.Fields(c.ShortUsage + " lbaasd")[0])
		}
		return exec(ctx, args)
	}
	for _, sub := range c.Subcommands {
		strict(sub)
	}
	return c
}

func serveCommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd serve", flag.ContinueOnError)
	var c common
	c.register(fs)
	cfg := server.Config{Limits: api.DefaultLimits}
	cfg.DeniedNodeNetworks, _ = parseNetworks(defaultDeniedNodeNetworks)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST API, identity, /healthz, /readyz and /metrics listen address")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC API listen address")
	fs.StringVar(&cfg.XDSAddr, "xds-addr", "127.0.0.1:18000", "xDS (ADS, state of the world and delta) listen address for Envoy proxies and proxyless gRPC clients")
	fs.StringVar(&cfg.AccessLogPath, "access-log-path", translator.DefaultAccessLogPath,
		"where the connection logs of load balancers with connectionLogging on go: "+translator.AccessLogGRPC+
			" (Envoy streams them to lbaasd over its xDS connection; lbaasd logs them), "+translator.AccessLogStdout+
			" (Envoy's standard output), or an absolute file path on the proxies, whose directory must exist there; "+
			"{lb} in the file name becomes lb_<id> (e.g. /var/log/lbaas/{lb}.log)")
	fs.Func("denied-node-networks", "networks nodes may not be in, comma-separated CIDRs, or none "+
		"(default "+defaultDeniedNodeNetworks+": the hosts' own and link-local addresses)", func(v string) error {
		nets, err := parseNetworks(v)
		cfg.DeniedNodeNetworks = nets
		return err
	})
	fs.BoolVar(&cfg.DenyHostAddresses, "deny-host-addresses", true,
		"also refuse this machine's own interface addresses as node addresses (reread every minute; off with --denied-node-networks none)")
	dnsServer := fs.String("node-dns-server", "", "resolve node names with this DNS server (host:port, e.g. a resolver that knows no internal zones) instead of the system's resolver")
	fs.DurationVar(&cfg.NodeNameRefresh, "node-name-refresh", 30*time.Second, "how often node names are resolved again (5s to 5m)")
	healthChecks := fs.Bool("health-checks", true, "probe the nodes of load balancers with a health monitor (on PostgreSQL the replicas share them, 16 shards)")
	fs.IntVar(&cfg.HealthCheckConcurrency, "health-check-concurrency", 256, "probes in flight at once, at most")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go pprof and /debug/xds/clients (connected xDS clients) on this address (e.g. 127.0.0.1:6060); off when empty")
	fs.DurationVar(&cfg.EnvoyDrainTime, "envoy-drain-time", envoy.DefaultDrainTime, "the drain time the fleet's Envoys run with "+
		"(lbaasd envoy-bootstrap --drain-time), told in the status description of a change that makes them drain connections")
	fs.DurationVar(&cfg.ReplicaLease, "replica-lease", controlplane.DefaultLease, "on PostgreSQL, how long a replica counts for status without renewing its lease (renewed every third of it); "+
		"a replica that cannot renew it stops serving xDS until it can, and the others stop waiting for its clients")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 30*time.Second, "an xDS client that leaves a response unanswered (no ACK or NACK) this long stops counting for status and is disconnected; 0 never")
	serveConsole := fs.Bool("console", true, "serve the web console at /console (a client of the REST API, in-process)")
	fs.DurationVar(&cfg.ConsoleRefresh, "console-refresh", console.DefaultRefresh, "how often the web console's pages refresh their live parts (status, nodes, events, plots); 0 never")
	fs.DurationVar(&cfg.LoadReportInterval, "load-report-interval", loadstats.DefaultInterval,
		"how often proxies and proxyless clients report their load (LRS) to lbaasd, which aggregates it per load balancer (GET /loadbalancers/{id}/stats)")
	fs.IntVar(&cfg.LoadBalancerMetrics, "lb-metrics-max", 1000,
		"how many load balancers get Prometheus series of their own (label lb) from the load reports: the first that many to report; 0 none")
	fs.DurationVar(&cfg.UsageRetention, "usage-retention", usage.DefaultRetention,
		"how long usage (GET /loadbalancers/{id}/usage, /loadbalancers/usage, /loadbalancers/billable) stays in the database, pruned hourly by one replica at a time; the longest window usage reports may ask for")
	fs.DurationVar(&cfg.UsageFlushInterval, "usage-flush-interval", usage.DefaultFlushInterval,
		"how often this replica writes the numbers its reporters sent into the usage history (a restart loses at most that much)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients reach the API at, used in the identity service catalog (default: from each request's Host)")
	fs.StringVar(&cfg.Region, "region", "LOCAL", "region name shown in the service catalog")
	fs.StringVar(&cfg.Fleet, "fleet", "default", "proxy fleet (Envoy node cluster) new load balancers are placed on")
	pools := fs.String("vip-pools", defaultPools, "virtual IP pools: comma-separated TYPE=CIDR, TYPE being PUBLIC or SERVICENET")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", 24*time.Hour, "lifetime of issued tokens")
	fs.BoolVar(&cfg.DemoUser, "demo-user", true, "create user 'demo' (tenant 'demo') and log its API key when the database has no users")
	fs.BoolVar(&cfg.RateLimits, "rate-limits", true, "enforce the rate limits of GET /limits (per account and HTTP method; 'lbaasd limits' changes an account's); "+
		"false turns them off (counted per replica: see docs/architecture.md)")
	fs.StringVar(&cfg.Source.IPv4Public, "source-ipv4-public", "127.0.0.1", "source address of traffic to public nodes (sourceAddresses.ipv4Public)")
	fs.StringVar(&cfg.Source.IPv4Servicenet, "source-ipv4-servicenet", "127.0.0.1", "source address of traffic to ServiceNet nodes")
	fs.StringVar(&cfg.Source.IPv6Public, "source-ipv6-public", "::1/128", "source IPv6 network of traffic to public nodes")
	fs.StringVar(&cfg.Source.IPv6Servicenet, "source-ipv6-servicenet", "::1/128", "source IPv6 network of traffic to ServiceNet nodes")
	fs.Func("allowed-domains", "comma-separated domains whose names nodes may use as their address, e.g. rackspace.com,example.org (default: any domain name)", func(s string) error {
		var err error
		cfg.AllowedDomains, err = api.ParseAllowedDomains(s)
		return err
	})
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate (chain) the REST, gRPC and xDS listeners serve TLS with; re-read while running")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert (same directory)")
	fs.StringVar(&cfg.XDSClientCAFile, "xds-client-ca", "", "PEM CA bundle xDS client certificates must be issued by: mutual TLS, "+
		"each client authorized for the fleet its certificate names (needs --tls-cert)")
	fs.BoolVar(&cfg.XDSInsecure, "xds-insecure", false, "allow xDS without client certificates on an --xds-addr that is not loopback "+
		"(refused otherwise: the xDS port exposes every tenant's configuration)")
	fs.StringVar(&cfg.SecretsKeyFile, "secrets-key-file", "", "key-encryption key of the secrets at rest (SSL termination private keys): "+
		"32 random bytes in base64; or the key itself in "+envPrefix+"_SECRETS_KEY. Default: a SQLite database's file plus .secrets-key, "+
		"generated on first start; required with PostgreSQL")
	fs.DurationVar(&cfg.TLSReloadInterval, "tls-reload-interval", tlsreload.DefaultInterval, "how often the certificate, key and client CA files are re-read")
	limitFlags(fs, &cfg.Limits)
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "lbaasd serve [flags]",
		ShortHelp:  "Serve the REST and gRPC APIs (the default command).",
		LongHelp: "Serve the REST and gRPC APIs (the default command).\n\n" +
			"Every flag can also be set in the environment as LBAASD_ and the flag name in capitals,\n" +
			"with - as _: --database-url is LBAASD_DATABASE_URL. Flags win over the environment.",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(ctx context.Context, _ []string) error {
			log, err := c.logger()
			if err != nil {
				return err
			}
			if cfg.Pools, err = store.ParsePools(*pools); err != nil {
				return fmt.Errorf("--vip-pools: %w", err)
			}
			cfg.DatabaseURL, cfg.DBTimeout, cfg.DBConnections, cfg.Logger = c.databaseURL, c.dbTimeout, c.dbConns, log
			cfg.SecretsKey = os.Getenv(envPrefix + "_SECRETS_KEY")
			cfg.DisableHealthChecks = !*healthChecks
			cfg.DisableConsole = !*serveConsole
			switch {
			case cfg.ConsoleRefresh == 0:
				cfg.ConsoleRefresh = -1 // never
			case cfg.ConsoleRefresh < time.Second:
				return fmt.Errorf("--console-refresh: %s is less than a second (0 turns the refresh off)", cfg.ConsoleRefresh)
			}
			if cfg.AckTimeout == 0 {
				cfg.AckTimeout = -1 // the flag's 0 is "never"; the Config's is "the default"
			}
			if len(cfg.DeniedNodeNetworks) == 0 {
				cfg.DenyHostAddresses = false // "none": the guard is off (trials with loopback nodes)
			}
			cfg.NodeResolver = nodeResolver(*dnsServer)
			return serve(ctx, cfg)
		},
	}
}

// defaultDeniedNodeNetworks keep customers from pointing nodes (and so the
// proxies and the health prober) at the machines' own services.
const defaultDeniedNodeNetworks = netguard.DefaultDenied

// nodeResolver is the system's resolver (hosts file, resolv.conf), or one
// that asks only the given DNS server.
func nodeResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

func parseNetworks(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	if strings.TrimSpace(v) == "none" {
		return nil, nil
	}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func limitFlags(fs *flag.FlagSet, l *api.Limits) {
	for _, f := range []struct {
		flag, name string
		v          *uint32
	}{
		{"limit-loadbalancers", "LOADBALANCER_LIMIT", &l.LoadBalancers},
		{"limit-nodes", "NODE_LIMIT", &l.Nodes},
		{"limit-ipv6", "IPV6_LIMIT", &l.IPv6},
		{"limit-batch-delete", "BATCH_DELETE_LIMIT", &l.BatchDelete},
		{"limit-access-list", "ACCESS_LIST_LIMIT", &l.AccessList},
		{"limit-node-meta", "NODE_META_LIMIT", &l.NodeMeta},
		{"limit-certificate-mappings", "CERTIFICATE_MAPPING_LIMIT", &l.CertificateMappings},
		{"limit-loadbalancer-meta", "LOADBALANCER_META_LIMIT", &l.LoadBalancerMeta},
	} {
		fs.Func(f.flag, fmt.Sprintf("absolute limit %s of every account (default %d)", f.name, *f.v), func(s string) error {
			var n uint32
			if _, err := fmt.Sscan(s, &n); err != nil || n == 0 {
				return fmt.Errorf("want a positive number")
			}
			*f.v = n
			return nil
		})
	}
}

func serve(ctx context.Context, cfg server.Config) error {
	if cfg.ReplicaLease < time.Second {
		return errors.New("--replica-lease must be at least 1s")
	}
	start := time.Now()
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("lbaasd serving", "http", srv.HTTPAddr.String(), "grpc", srv.GRPCAddr.String(),
		"xds", srv.XDSAddr.String(), "database", srv.Store.Dialect(), "startup", time.Since(start).Round(time.Millisecond),
		"tls", cfg.TLSCertFile != "", "xds_mtls", cfg.XDSClientCAFile != "")
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// adminCommand is a subcommand that works on the database: it gets the
// common flags and an open store.
func adminCommand(name, usage, help string, flags func(*flag.FlagSet), run func(ctx context.Context, st *store.Store, log *slog.Logger) error) *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd "+name, flag.ContinueOnError)
	var c common
	c.register(fs)
	flags(fs)
	return &ffcli.Command{
		Name:       name[strings.LastIndex(name, " ")+1:],
		ShortUsage: "lbaasd " + usage,
		ShortHelp:  help,
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
			}
			log, err := c.logger()
			if err != nil {
				return err
			}
			st, err := store.Open(ctx, store.Options{URL: c.databaseURL, Logger: log, Timeout: c.dbTimeout, Connections: c.dbConns})
			if err != nil {
				return err
			}
			defer st.Close()
			return run(ctx, st, log)
		},
	}
}

const rolesHelp = "comma-separated roles: identity:user-admin (the account owner), lbaas:admin (create, read, update, delete), " +
	"lbaas:creator (create, read, update), lbaas:observer (read), admin, observer"

func userCommand() *ffcli.Command {
	var username, tenant, password, roles string
	name := func(fs *flag.FlagSet) { fs.StringVar(&username, "username", "", "user name (required)") }
	required := func() error {
		if username == "" {
			return errors.New("--username is required")
		}
		return nil
	}
	create := adminCommand("user create", "user create --username NAME --tenant ACCOUNT [--role ROLES] [--password PW]",
		"Create an API user and print its API key (shown once; stored hashed).",
		func(fs *flag.FlagSet) {
			name(fs)
			fs.StringVar(&tenant, "tenant", "", "tenant (account) id the user manages (required)")
			fs.StringVar(&password, "password", "", "optional password, for passwordCredentials logins")
			fs.StringVar(&roles, "role", "", rolesHelp+" (default: the account owner when the account has none, else lbaas:admin)")
		},
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if username == "" || tenant == "" {
				return errors.New("--username and --tenant are required")
			}
			rs, err := auth.ParseRoles(roles)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			key, err := auth.New(st, 0, log).CreateUser(ctx, username, tenant, password, rs...)
			if err != nil {
				return err
			}
			fmt.Println(key)
			return nil
		})
	var listTenant string
	list := adminCommand("user list", "user list [--tenant ACCOUNT]", "List the users (of one account): name, account, roles, creation time.",
		func(fs *flag.FlagSet) { fs.StringVar(&listTenant, "tenant", "", "only this tenant's users") },
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			users, err := auth.New(st, 0, log).Users(ctx, listTenant)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "USERNAME\tTENANT\tROLES\tCREATED")
			for _, u := range users {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Username, u.Tenant, u.Roles, u.CreatedAt.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		})
	del := adminCommand("user delete", "user delete --username NAME", "Delete a user; its tokens stop working (within 30 s on running servers).",
		name,
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if err := required(); err != nil {
				return err
			}
			return userError(auth.New(st, 0, log).DeleteUser(ctx, username), username)
		})
	rotate := adminCommand("user rotate-key", "user rotate-key --username NAME",
		"Give a user a new API key (printed once) and revoke its tokens; the old key stops working at once.",
		name,
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if err := required(); err != nil {
				return err
			}
			key, err := auth.New(st, 0, log).RotateKey(ctx, username)
			if err != nil {
				return userError(err, username)
			}
			fmt.Println(key)
			return nil
		})
	setRoles := adminCommand("user set-roles", "user set-roles --username NAME --role ROLES",
		"Replace a user's roles (its tokens carry the new ones within 30 s).",
		func(fs *flag.FlagSet) {
			name(fs)
			fs.StringVar(&roles, "role", "", rolesHelp+" (required)")
		},
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if err := required(); err != nil {
				return err
			}
			rs, err := auth.ParseRoles(roles)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			return userError(auth.New(st, 0, log).SetRoles(ctx, username, rs), username)
		})
	return &ffcli.Command{
		Name:        "user",
		ShortUsage:  "lbaasd user [create|list|delete|rotate-key|set-roles] [flags]",
		ShortHelp:   "Manage API users and their roles.",
		Subcommands: []*ffcli.Command{create, list, del, rotate, setRoles},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func userError(err error, username string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", username)
	}
	return err
}

func limitsCommand() *ffcli.Command {
	var account, verb, unit string
	var value uint
	accountFlag := func(fs *flag.FlagSet) { fs.StringVar(&account, "account", "", "the account (tenant) id (required)") }
	show := adminCommand("limits show", "limits show --account ACCOUNT", "Show an account's rate limits (defaults and overrides).",
		accountFlag,
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if account == "" {
				return errors.New("--account is required")
			}
			l := ratelimit.New(st, log)
			if err := l.Load(ctx); err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "METHOD\tLIMIT\tUNIT")
			for _, r := range l.Rules(account) {
				fmt.Fprintf(w, "%s\t%d\t%s\n", r.Verb, r.Value, r.Unit)
			}
			return w.Flush()
		})
	set := adminCommand("limits set", "limits set --account ACCOUNT --method POST --unit SECOND --value 20",
		"Override one rate limit of an account (running servers apply it within 30 s).",
		func(fs *flag.FlagSet) {
			accountFlag(fs)
			fs.StringVar(&verb, "method", "", "HTTP method: GET, PUT, DELETE or POST (required)")
			fs.StringVar(&unit, "unit", "", "SECOND or MINUTE (required)")
			fs.UintVar(&value, "value", 0, "requests allowed per unit, at least 1 (required)")
		},
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if account == "" {
				return errors.New("--account is required")
			}
			r := ratelimit.Rule{Verb: strings.ToUpper(verb), Unit: strings.ToUpper(unit), Value: uint32(min(value, 1<<31))}
			if err := r.Check(); err != nil {
				return err
			}
			return st.SetAccountRateLimit(ctx, store.AccountRateLimit{Account: account, Verb: r.Verb, Unit: r.Unit, Value: r.Value})
		})
	reset := adminCommand("limits reset", "limits reset --account ACCOUNT", "Drop an account's overrides: the default rate limits apply again.",
		accountFlag,
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if account == "" {
				return errors.New("--account is required")
			}
			return st.ResetAccountRateLimits(ctx, account)
		})
	return &ffcli.Command{
		Name:        "limits",
		ShortUsage:  "lbaasd limits [show|set|reset] [flags]",
		ShortHelp:   "Show and change an account's rate limits.",
		Subcommands: []*ffcli.Command{show, set, reset},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func migrateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd migrate", flag.ContinueOnError)
	var c common
	c.register(fs)
	return &ffcli.Command{
		Name:       "migrate",
		ShortUsage: "lbaasd migrate [--database-url URL]",
		ShortHelp:  "Apply pending database migrations and exit (serve also does this at start).",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(ctx context.Context, _ []string) error {
			log, err := c.logger()
			if err != nil {
				return err
			}
			st, err := store.Open(ctx, store.Options{URL: c.databaseURL, Logger: log, Timeout: c.dbTimeout, Connections: c.dbConns})
			if err != nil {
				return err
			}
			log.Info("database is up to date", "database", st.Dialect())
			return st.Close()
		},
	}
}

func bootstrapCommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd envoy-bootstrap", flag.ContinueOnError)
	var o envoy.Options
	fs.StringVar(&o.Fleet, "fleet", "default", "fleet the proxy serves (its xDS node cluster)")
	var xdsAddresses addressList
	fs.Var(&xdsAddresses, "xds-address", "host:port of the control plane's xDS port (default 127.0.0.1:18000); repeat it, or separate "+
		"with commas, for several replicas. With --proxyless also dns:///host:port or dns://resolver/host:port: a name that "+
		"resolves to every replica, which running gRPC clients fail over through")
	fs.StringVar(&o.NodeID, "node-id", "", "xDS node id (default: the host name)")
	fs.StringVar(&o.AdminSocket, "admin-socket", envoy.DefaultAdminSocket, "Unix socket (mode 0600) of the Envoy admin interface")
	fs.StringVar(&o.AdminAddress, "admin-address", "", "put the Envoy admin interface on this loopback ip:port instead of --admin-socket (e.g. "+envoy.DefaultAdminAddress+")")
	fs.StringVar(&o.CAFile, "ca-file", "", "CA bundle to verify the control plane with (enables TLS)")
	fs.StringVar(&o.CertFile, "cert-file", "", "client certificate for mutual TLS to the control plane")
	fs.StringVar(&o.KeyFile, "key-file", "", "client private key for mutual TLS to the control plane")
	tlsDir := fs.String("tls-dir", "", "a directory from 'lbaasd cert issue': sets --ca-file, --cert-file and --key-file to its "+
		pki.CACert+", "+pki.Cert+" and "+pki.Key)
	fs.BoolVar(&o.SotW, "sotw", false, "Envoy: state-of-the-world ADS instead of delta (delta sends only what changed; "+
		"state of the world resends every cluster and listener on any change)")
	fs.DurationVar(&o.DrainTime, "drain-time", envoy.DefaultDrainTime, "Envoy: how long it drains the connections of a listener it rebuilds "+
		"(its --drain-time-s, which the command prints on standard error; whole seconds; recorded in the node metadata)")
	fs.DurationVar(&o.StatsFlushInterval, "stats-flush-interval", loadstats.MetricsFlushInterval,
		"Envoy: how often it sends its per-load-balancer stats to the control plane (the metrics service sink; the usage history's step is a minute)")
	proxyless := fs.Bool("proxyless", false, "write the bootstrap of a proxyless gRPC client (GRPC_XDS_BOOTSTRAP) instead of Envoy's")
	return &ffcli.Command{
		Name:       "envoy-bootstrap",
		ShortUsage: "lbaasd envoy-bootstrap --fleet F --xds-address HOST:PORT [--xds-address HOST:PORT ...] [--proxyless] > bootstrap.json",
		ShortHelp:  "Print the bootstrap of a fleet Envoy (or, with --proxyless, of a gRPC client) for this control plane.",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(_ context.Context, _ []string) error {
			if *tlsDir != "" {
				if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
					return errors.New("--tls-dir replaces --ca-file, --cert-file and --key-file: give one or the other")
				}
				abs, err := filepath.Abs(*tlsDir)
				if err != nil {
					return err
				}
				o.CAFile, o.CertFile, o.KeyFile = filepath.Join(abs, pki.CACert), filepath.Join(abs, pki.Cert), filepath.Join(abs, pki.Key)
			}
			o.XDSAddress = "127.0.0.1:18000"
			if len(xdsAddresses) > 0 {
				o.XDSAddress, o.MoreXDSAddresses = xdsAddresses[0], xdsAddresses[1:]
			}
			if o.NodeID == "" {
				id, err := envoy.DefaultNodeID()
				if err != nil {
					return err
				}
				o.NodeID = id
			}
			build := envoy.Bootstrap
			if *proxyless {
				build = envoy.GRPCBootstrap
			}
			out, err := build(o)
			if err != nil {
				return err
			}
			if _, err := os.Stdout.Write(out); err != nil || *proxyless {
				return err
			}
			// The drain time is a command-line option of Envoy's.
			args, err := envoy.RunArgs(o, "<bootstrap file>")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(os.Stderr, "start Envoy with: envoy %s\n", strings.Join(args, " "))
			return err
		},
	}
}

// addressList is a flag given several times (or once with commas).
type addressList []string

func (l *addressList) String() string { return strings.Join(*l, ",") }

func (l *addressList) Set(v string) error {
	for a := range strings.SplitSeq(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			*l = append(*l, a)
		}
	}
	return nil
}
