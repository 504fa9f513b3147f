// Command lbaas-load measures the control plane under load on one machine:
// it starts the real lbaasd (SQLite in a temporary directory, loopback
// ports), creates load balancers over REST, connects proxyless grpc-go xDS
// clients, and measures how long a change takes from the API's 202 to
// every connected client having acknowledged it (the load balancer turning
// ACTIVE), plus the daemon's memory. Everything it sends goes to
// 127.0.0.1, and it stops by itself (-max-duration).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/xds"

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/translator"
)

type config struct {
	lbaasd        string
	loadBalancers int
	nodes         int
	mode          string
	clients       int
	change        string
	changes       int
	workers       int
	debugAddr     string
	connectOver   time.Duration
	maxDuration   time.Duration
	replicas      int
	// secretsKeyFile is the key of the secrets at rest the replicas share
	// (PostgreSQL needs one; SQLite makes its own beside the database).
	secretsKeyFile string
}

// Bounds: the tool shares a machine, so a typo must not start a flood.
const (
	maxClients       = 1000
	maxLoadBalancers = 20_000
	maxChanges       = 1000
	maxNodes         = 25
	maxWorkers       = 64
	maxWallTime      = time.Hour
	maxReplicas      = 5
	fleet            = "default"
)

func main() {
	var c config
	flag.StringVar(&c.lbaasd, "lbaasd", "bin/lbaasd", "path of the lbaasd binary to measure")
	flag.IntVar(&c.loadBalancers, "load-balancers", 10_000, fmt.Sprintf("load balancers to create (at most %d)", maxLoadBalancers))
	flag.IntVar(&c.nodes, "nodes", 10, fmt.Sprintf("nodes per load balancer (at most %d)", maxNodes))
	flag.StringVar(&c.mode, "mode", modeGRPC, "xDS clients: grpc (proxyless grpc-go clients of one load balancer), envoy-delta or envoy-sotw (Envoy-like clients of the whole fleet), or envoy-delta,envoy-sotw")
	flag.IntVar(&c.clients, "clients", 50, fmt.Sprintf("xDS clients per mode (at most %d)", maxClients))
	flag.DurationVar(&c.connectOver, "connect-over", 0, "Envoy modes: spread the clients' connections evenly over this long (0: all at once)")
	flag.StringVar(&c.change, "change", "both", "what each timed change does: node (a node's condition: EDS), algorithm (CDS), or both (alternating)")
	flag.IntVar(&c.changes, "changes", 200, fmt.Sprintf("changes to time, one after the other (at most %d)", maxChanges))
	flag.IntVar(&c.workers, "workers", 8, fmt.Sprintf("concurrent REST clients while creating (at most %d)", maxWorkers))
	flag.StringVar(&c.debugAddr, "debug-addr", "127.0.0.1:6061", "lbaasd's pprof address (loopback); empty for none")
	flag.IntVar(&c.replicas, "replicas", 1, fmt.Sprintf("lbaasd replicas (at most %d); more than one share a throwaway PostgreSQL "+
		"(from the machine's binaries, as the tests start it) and the clients are spread over them", maxReplicas))
	flag.DurationVar(&c.maxDuration, "max-duration", 10*time.Minute, fmt.Sprintf("stop after this long, whatever happens (at most %s)", maxWallTime))
	flag.Parse()
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "lbaas-load:", err)
		os.Exit(2)
	}
	// An interrupt or SIGTERM ends the run like the deadline does: the
	// daemon is stopped and the temporary directory removed.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sig, c.maxDuration)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "lbaas-load:", err)
		os.Exit(1)
	}
}

func (c config) check() error {
	bounded := func(flag string, v, hi int) error {
		if v < 1 || v > hi {
			return fmt.Errorf("-%s: must be from 1 to %d (got %d)", flag, hi, v)
		}
		return nil
	}
	if _, err := parseModes(c.mode); err != nil {
		return err
	}
	if _, err := parseChanges(c.change); err != nil {
		return err
	}
	if c.connectOver < 0 || c.connectOver >= c.maxDuration {
		return fmt.Errorf("-connect-over: must be from 0 to less than -max-duration (got %s)", c.connectOver)
	}
	if c.maxDuration <= 0 || c.maxDuration > maxWallTime {
		return fmt.Errorf("-max-duration: must be positive and at most %s (got %s)", maxWallTime, c.maxDuration)
	}
	if c.debugAddr != "" {
		host, _, err := net.SplitHostPort(c.debugAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-debug-addr: must be a loopback address and port (got %q)", c.debugAddr)
		}
	}
	return errors.Join(bounded("load-balancers", c.loadBalancers, maxLoadBalancers), bounded("nodes", c.nodes, maxNodes),
		bounded("clients", c.clients, maxClients), bounded("changes", c.changes, maxChanges), bounded("workers", c.workers, maxWorkers),
		bounded("replicas", c.replicas, maxReplicas))
}

func run(ctx context.Context, c config) error {
	modes, _ := parseModes(c.mode)
	kinds, _ := parseChanges(c.change)
	bin, err := filepath.Abs(c.lbaasd)
	if err != nil {
		return err
	}
	c.lbaasd = bin
	dir, err := os.MkdirTemp("", "lbaas-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbURL := filepath.Join(dir, "load.db")
	if c.replicas > 1 {
		pg, err := pgtest.Start()
		if err != nil {
			return err
		}
		defer pg.Stop()
		if dbURL, err = pg.CreateDatabase(ctx); err != nil {
			return err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		c.secretsKeyFile = filepath.Join(dir, "secrets.key")
		if err := os.WriteFile(c.secretsKeyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
			return err
		}
	}
	var replicas []*daemon
	for i := range c.replicas {
		debug := c.debugAddr
		if i > 0 {
			debug = "" // pprof on the first only
		}
		d, err := startDaemon(ctx, c, dir, dbURL, debug)
		if err != nil {
			return err
		}
		defer d.stop()
		replicas = append(replicas, d)
	}
	d := replicas[0]
	token, err := signIn(ctx, c.lbaasd, dir, dbURL, d.http)
	if err != nil {
		return err
	}
	rest := &restClient{base: d.http, token: token, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.workers * 2}}}
	stats, err := newProcStats(d.cmd.Process.Pid)
	if err != nil {
		return err
	}

	var ports []int
	for range c.nodes {
		backend, err := startBackend()
		if err != nil {
			return err
		}
		defer backend.Stop()
		ports = append(ports, backend.port)
	}

	start := time.Now()
	ids, err := createAll(ctx, rest, c, ports)
	if err != nil {
		return err
	}
	createTime := time.Since(start)
	fmt.Printf("created %d load balancers with %d nodes each in %s (%.0f creates/s over REST, %d workers)\n",
		len(ids), c.nodes, createTime.Round(time.Millisecond), float64(len(ids))/createTime.Seconds(), c.workers)
	rss, _, _ := stats.memory()
	fmt.Printf("lbaasd RSS with %d load balancers: %d MB\n", len(ids), rss>>20)

	target := ids[len(ids)/2]
	if err := rest.waitActive(ctx, target); err != nil {
		return err
	}
	ch, err := newChanger(ctx, rest, target)
	if err != nil {
		return err
	}
	var xdsAddrs []string
	for _, r := range replicas {
		xdsAddrs = append(xdsAddrs, r.xds)
	}
	if modes[0] == modeGRPC {
		return runGRPC(ctx, c, xdsAddrs, ch, kinds, stats)
	}
	err = runEnvoy(ctx, c, xdsAddrs, ids, modes, ch, kinds, stats)
	if len(replicas) > 1 {
		for i, r := range replicas {
			st, serr := newProcStats(r.cmd.Process.Pid)
			if serr != nil {
				return errors.Join(err, serr)
			}
			rss, peak, _ := st.memory()
			cpu, _ := st.cpu()
			fmt.Printf("replica %d: RSS %d MB (peak %d MB), CPU %.2f s, serving %d of the clients\n",
				i+1, rss>>20, peak>>20, cpu, share(c.clients, len(replicas), i)*len(modes))
		}
	}
	return err
}

// share is how many of n clients spread round robin over k replicas go to
// replica i.
func share(n, k, i int) int {
	return n/k + min(1, max(0, n%k-i))
}

// runEnvoy connects the Envoy-like clients at once, waits for their
// initial sync and times the changes.
func runEnvoy(ctx context.Context, c config, xdsAddrs []string, ids []int, modes []string, ch *changer, kinds []string, stats *procStats) error {
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = translator.ResourceName(uint32(id))
	}
	peakReset := stats.resetPeak()
	how := "at once"
	if c.connectOver > 0 {
		how = "over " + c.connectOver.String()
	}
	fmt.Printf("connecting %d Envoy-like clients per mode (%s) %s to fleet %q\n", c.clients, strings.Join(modes, ", "), how, fleet)
	self, err := newProcStats(os.Getpid())
	if err != nil {
		return err
	}
	syncCPU0, err := stats.cpu()
	if err != nil {
		return err
	}
	syncSelf0, _ := self.cpu()
	syncStart := time.Now()
	f := startFleet(ctx, xdsAddrs, fleet, modes, c.clients, want, c.connectOver)
	defer f.stop()
	res := newResults()
	if err := f.waitSynced(ctx); err != nil {
		return err
	}
	syncWall := time.Since(syncStart)
	syncTimes(f, res)
	rss, _, _ := stats.memory()
	cpu0, err := stats.cpu()
	if err != nil {
		return err
	}
	selfCPU0, _ := self.cpu()
	// What the initial sync cost each side: the daemon's share is what a
	// fleet on other machines would wait for.
	fmt.Printf("initial sync: lbaasd CPU %.2f s (%.0f ms per client), the clients' CPU %.2f s, in %s\n",
		cpu0-syncCPU0, 1000*(cpu0-syncCPU0)/float64(c.clients*len(modes)), selfCPU0-syncSelf0, syncWall.Round(time.Millisecond))
	changeStart := time.Now()
	err = timeChanges(ctx, f, ch, kinds, c.changes, res)
	elapsed := time.Since(changeStart)
	cpu1, _ := stats.cpu()
	selfCPU1, _ := self.cpu()
	_, peak, _ := stats.memory()
	printResults(f, res, kinds)
	peakSince := "since clients connected"
	if !peakReset {
		peakSince = "over the daemon's life (clear_refs refused)"
	}
	fmt.Printf("lbaasd: RSS after initial sync %d MB; peak RSS %s %d MB; CPU over the change phase %.2f s in %s (%.0f%% of one core)\n",
		rss>>20, peakSince, peak>>20, cpu1-cpu0, elapsed.Round(time.Millisecond), 100*(cpu1-cpu0)/elapsed.Seconds())
	// The clients share the machine's cores with the daemon.
	selfRSS, _, _ := self.memory()
	fmt.Printf("lbaas-load itself (the clients): CPU over the change phase %.2f s; RSS %d MB\n", selfCPU1-selfCPU0, selfRSS>>20)
	return err
}

// runGRPC connects proxyless grpc-go clients of the target load balancer
// one by one and times the changes to ACTIVE.
func runGRPC(ctx context.Context, c config, xdsAddrs []string, ch *changer, kinds []string, stats *procStats) error {
	fmt.Printf("lb_%d is ACTIVE; connecting %d clients\n", ch.lb, c.clients)
	for i, addr := range xdsAddrs {
		stopClients, err := connectClients(ctx, share(c.clients, len(xdsAddrs), i), c.lbaasd, addr, ch.lb)
		if err != nil {
			return err
		}
		defer stopClients()
	}
	fmt.Printf("%d proxyless gRPC clients connected and using lb_%d\n", c.clients, ch.lb)
	rss, _, _ := stats.memory()
	cpu0, _ := stats.cpu()
	latencies, err := timeChangesActive(ctx, ch, kinds, c.changes)
	cpu1, _ := stats.cpu()
	for _, k := range kinds {
		printLatencies("convergence of "+kindLabel[k]+", API call start -> ACTIVE (every client ACKed)", latencies[k])
	}
	fmt.Printf("lbaasd: RSS with clients connected %d MB; CPU over the change phase %.2f s\n", rss>>20, cpu1-cpu0)
	return err
}

type daemon struct {
	cmd       *exec.Cmd
	http, xds string
}

var serving = regexp.MustCompile(`lbaasd serving" http=(\S+) grpc=\S+ xds=(\S+)`)

func startDaemon(ctx context.Context, c config, dir, dbURL, debugAddr string) (*daemon, error) {
	limit := fmt.Sprint(c.loadBalancers + 10)
	cmd := exec.CommandContext(ctx, c.lbaasd, "serve", "--database-url", dbURL,
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--xds-addr", "127.0.0.1:0",
		"--demo-user=false", "--limit-loadbalancers", limit, "--limit-nodes", fmt.Sprint(max(c.nodes, 25)),
		"--vip-pools", "PUBLIC=127.64.0.0/10", "--fleet", fleet, "--health-checks=false",
		"--rate-limits=false",            // a load test is many requests of one account
		"--denied-node-networks", "none") // the backends are on loopback
	if debugAddr != "" {
		cmd.Args = append(cmd.Args, "--debug-addr", debugAddr)
	}
	if c.secretsKeyFile != "" {
		cmd.Args = append(cmd.Args, "--secrets-key-file", c.secretsKeyFile)
	}
	cmd.Dir = dir
	// On the deadline or a signal the daemon gets an interrupt and time to
	// shut down, not a SIGKILL; if this tool dies, so does the daemon.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan []string, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var seen bytes.Buffer
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if m := serving.FindStringSubmatch(seen.String()); m != nil {
				found <- m
				log, err := os.Create(filepath.Join(os.TempDir(), "lbaas-load-daemon.log"))
				if err != nil {
					_, _ = io.Copy(io.Discard, stderr)
					return
				}
				defer log.Close()
				_, _ = io.Copy(log, stderr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case m := <-found:
		return &daemon{cmd: cmd, http: "http://" + m[1], xds: m[2]}, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("lbaasd did not start")
	case <-ctx.Done():
		_ = cmd.Wait() // the context's Cancel interrupted it
		return nil, ctx.Err()
	}
}

func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
	}
}

func signIn(ctx context.Context, bin, dir, dbURL, base string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "user", "create", "--username", "load", "--tenant", "load",
		"--database-url", dbURL)
	key, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("user create: %w", err)
	}
	return requestToken(ctx, base, "load", strings.TrimSpace(string(key)))
}

// requestToken signs in with an API key.
func requestToken(ctx context.Context, base, username, key string) (string, error) {
	body := fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":%q,"apiKey":%q}}}`, username, key)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v2.0/tokens", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign in: %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.Access.Token.ID, nil
}

type restClient struct {
	base, token string
	client      *http.Client
}

func (r *restClient) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.base+"/v1.0/load"+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Auth-Token", r.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func (r *restClient) status(ctx context.Context, id int) (string, error) {
	code, b, err := r.do(ctx, "GET", fmt.Sprintf("/loadbalancers/%d", id), "")
	if err != nil || code != 200 {
		return "", fmt.Errorf("get %d: %d %s %v", id, code, b, err)
	}
	var out struct{ LoadBalancer struct{ Status string } }
	err = json.Unmarshal(b, &out)
	return out.LoadBalancer.Status, err
}

func (r *restClient) waitActive(ctx context.Context, id int) error {
	for {
		st, err := r.status(ctx, id)
		if err != nil {
			return err
		}
		if st == "ACTIVE" {
			return nil
		}
		if st == "ERROR" {
			return fmt.Errorf("load balancer %d went to ERROR", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Microsecond):
		}
	}
}

func createAll(ctx context.Context, r *restClient, c config, ports []int) ([]int, error) {
	ids := make([]int, c.loadBalancers)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.workers)
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= c.loadBalancers || ctx.Err() != nil {
					return
				}
				var nodes []string
				for _, port := range ports {
					nodes = append(nodes, fmt.Sprintf(`{"address":"127.0.0.1","port":%d,"condition":"ENABLED"}`, port))
				}
				body := fmt.Sprintf(`{"loadBalancer":{"name":"lb-%d","protocol":"HTTP","port":80,"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`,
					i, strings.Join(nodes, ","))
				code, b, err := r.do(ctx, "POST", "/loadbalancers", body)
				if err != nil || code != 202 {
					errs <- fmt.Errorf("create: %d %s %v", code, b, err)
					return
				}
				var out struct{ LoadBalancer struct{ ID int } }
				if err := json.Unmarshal(b, &out); err != nil {
					errs <- err
					return
				}
				ids[i] = out.LoadBalancer.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ids, ctx.Err()
}

// connectClients starts proxyless clients, each with its own xDS client
// (its own ADS stream), and makes each use the target load balancer.
func connectClients(ctx context.Context, n int, bin, xdsAddr string, target int) (func(), error) {
	var conns []*grpc.ClientConn
	stop := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := range n {
		boot, err := exec.CommandContext(ctx, bin, "envoy-bootstrap", "--proxyless", "--xds-address", xdsAddr,
			"--node-id", fmt.Sprintf("load-client-%d", i)).Output()
		if err != nil {
			stop()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		res, err := xds.NewXDSResolverWithConfigForTesting(boot)
		if err != nil {
			stop()
			return nil, err
		}
		conn, err := grpc.NewClient(fmt.Sprintf("xds:///lb_%d", target), grpc.WithResolvers(res),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, conn)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(cctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			stop()
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
	}
	return stop, nil
}

type backendServer struct {
	testgrpc.UnimplementedTestServiceServer
	*grpc.Server
	port int
}

func (backendServer) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Hostname: "backend"}, nil
}

// startBackend serves the test service on a port of 127.0.0.1; every load
// balancer has one node per backend.
func startBackend() (*backendServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backendServer{Server: grpc.NewServer(), port: ln.Addr().(*net.TCPAddr).Port}
	testgrpc.RegisterTestServiceServer(b.Server, b)
	go func() { _ = b.Serve(ln) }()
	return b, nil
}
