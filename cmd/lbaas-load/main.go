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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/xds"
)

type config struct {
	lbaasd        string
	loadBalancers int
	nodes         int
	clients       int
	updates       int
	workers       int
	maxDuration   time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.lbaasd, "lbaasd", "bin/lbaasd", "path of the lbaasd binary to measure")
	flag.IntVar(&c.loadBalancers, "load-balancers", 10_000, "load balancers to create")
	flag.IntVar(&c.nodes, "nodes", 10, "nodes per load balancer")
	flag.IntVar(&c.clients, "clients", 50, "proxyless gRPC xDS clients, all using the updated load balancer")
	flag.IntVar(&c.updates, "updates", 200, "changes to time, one after the other")
	flag.IntVar(&c.workers, "workers", 8, "concurrent REST clients while creating")
	flag.DurationVar(&c.maxDuration, "max-duration", 10*time.Minute, "stop after this long, whatever happens")
	flag.Parse()
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

func run(ctx context.Context, c config) error {
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
	d, err := startDaemon(ctx, c, dir)
	if err != nil {
		return err
	}
	defer d.stop()
	token, err := signIn(ctx, c.lbaasd, dir, d.http)
	if err != nil {
		return err
	}
	rest := &restClient{base: d.http, token: token, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.workers * 2}}}

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
	rss, _ := rssOf(d.cmd.Process.Pid)
	fmt.Printf("lbaasd RSS with %d load balancers: %d MB\n", len(ids), rss/1024)

	target := ids[len(ids)/2]
	if err := rest.waitActive(ctx, target); err != nil {
		return err
	}
	fmt.Printf("lb_%d is ACTIVE; connecting %d clients\n", target, c.clients)
	stopClients, err := connectClients(ctx, c.clients, c.lbaasd, d.xds, target)
	if err != nil {
		return err
	}
	defer stopClients()
	fmt.Printf("%d proxyless gRPC clients connected and using lb_%d\n", c.clients, target)

	latencies, err := timeUpdates(ctx, rest, target, c.updates)
	if err != nil {
		return err
	}
	report(latencies)
	rss, _ = rssOf(d.cmd.Process.Pid)
	fmt.Printf("lbaasd RSS at the end: %d MB\n", rss/1024)
	return nil
}

type daemon struct {
	cmd       *exec.Cmd
	http, xds string
}

var serving = regexp.MustCompile(`lbaasd serving" http=(\S+) grpc=\S+ xds=(\S+)`)

func startDaemon(ctx context.Context, c config, dir string) (*daemon, error) {
	limit := fmt.Sprint(c.loadBalancers + 10)
	cmd := exec.CommandContext(ctx, c.lbaasd, "serve", "--database-url", filepath.Join(dir, "load.db"),
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--xds-addr", "127.0.0.1:0",
		"--demo-user=false", "--limit-loadbalancers", limit, "--limit-nodes", fmt.Sprint(max(c.nodes, 25)),
		"--vip-pools", "PUBLIC=127.64.0.0/10", "--debug-addr", "127.0.0.1:6061",
		"--denied-node-networks", "none") // the backends are on loopback
	cmd.Dir = dir
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
		return nil, errors.New("lbaasd did not start")
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

func signIn(ctx context.Context, bin, dir, base string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "user", "create", "--username", "load", "--tenant", "load",
		"--database-url", filepath.Join(dir, "load.db"))
	key, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("user create: %w", err)
	}
	body := fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"load","apiKey":%q}}}`, strings.TrimSpace(string(key)))
	res, err := http.Post(base+"/v2.0/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
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

// timeUpdates changes the target's first node weight n times, one after
// the other, timing each from the 202 to ACTIVE.
func timeUpdates(ctx context.Context, r *restClient, target, n int) ([]time.Duration, error) {
	code, b, err := r.do(ctx, "GET", fmt.Sprintf("/loadbalancers/%d/nodes", target), "")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("list nodes: %d %s %v", code, b, err)
	}
	var nodes struct{ Nodes []struct{ ID int } }
	if err := json.Unmarshal(b, &nodes); err != nil || len(nodes.Nodes) == 0 {
		return nil, fmt.Errorf("no nodes: %v", err)
	}
	node := nodes.Nodes[0].ID
	// Weights only reach the data plane for weighted algorithms.
	if code, b, err := r.do(ctx, "PUT", fmt.Sprintf("/loadbalancers/%d", target), `{"loadBalancer":{"algorithm":"WEIGHTED_ROUND_ROBIN"}}`); err != nil || code != 202 {
		return nil, fmt.Errorf("update: %d %s %v", code, b, err)
	}
	if err := r.waitActive(ctx, target); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := range n {
		body := fmt.Sprintf(`{"node":{"weight":%d}}`, i%99+2)
		start := time.Now()
		code, b, err := r.do(ctx, "PUT", fmt.Sprintf("/loadbalancers/%d/nodes/%d", target, node), body)
		if err != nil || code != 202 {
			return out, fmt.Errorf("update node: %d %s %v", code, b, err)
		}
		if err := r.waitActive(ctx, target); err != nil {
			return out, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func report(d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Printf("convergence, 202 -> every client ACKed (ACTIVE), %d changes: p50 %s  p90 %s  p99 %s  max %s\n",
		len(d), q(0.5).Round(10*time.Microsecond), q(0.9).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
}

func rssOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb int
			_, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmRSS:"), "kB")), &kb)
			return kb, err
		}
	}
	return 0, errors.New("no VmRSS")
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
