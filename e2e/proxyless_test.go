package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/logutil"
)

// backend is a real gRPC server on loopback that names itself in replies.
// It can be told to fail calls (UNAVAILABLE), as a sick node would.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	name string
	port int
	srv  *grpc.Server
	// failAll fails every call; failNext fails that many calls.
	failAll  atomic.Bool
	failNext atomic.Int32
}

func (b *backend) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if b.failAll.Load() || b.failNext.Add(-1) >= 0 {
		return nil, status.Errorf(codes.Unavailable, "%s fails on purpose", b.name)
	}
	return &testgrpc.SimpleResponse{Hostname: b.name}, nil
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, port: ln.Addr().(*net.TCPAddr).Port, srv: grpc.NewServer()}
	testgrpc.RegisterTestServiceServer(b.srv, b)
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.srv.Stop)
	return b
}

// api is a REST client of the daemon for one tenant.
type api struct {
	t       *testing.T
	base    string
	account string
	token   string
	client  *http.Client // http.DefaultClient when nil
}

// newAPI creates a user with the binary's admin command and signs in.
func newAPI(t *testing.T, bin, dir string, d *daemon) *api {
	t.Helper()
	cmd := exec.Command(bin, "user", "create", "--username", "e2e", "--tenant", "777")
	cmd.Dir = dir
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	a := &api{t: t, base: d.httpURL, account: "777"}
	var out struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	body := fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"e2e","apiKey":%q}}}`, strings.TrimSpace(string(key)))
	a.do("POST", "/v2.0/tokens", body, 200, &out)
	a.token = out.Access.Token.ID
	return a
}

func (a *api) do(method, path, body string, want int, out any) {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("X-Auth-Token", a.token)
	}
	c := a.client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func (a *api) lbPath(id int, rest string) string {
	return fmt.Sprintf("/v1.0/%s/loadbalancers/%d%s", a.account, id, rest)
}

type lbJSON struct {
	ID                int    `json:"id"`
	Status            string `json:"status"`
	StatusDescription string `json:"statusDescription"`
	Nodes             []struct {
		ID      int    `json:"id"`
		Address string `json:"address"`
		Port    int    `json:"port"`
	} `json:"nodes"`
}

func (a *api) create(body string) lbJSON {
	a.t.Helper()
	var out struct{ LoadBalancer lbJSON }
	a.do("POST", "/v1.0/"+a.account+"/loadbalancers", body, 202, &out)
	return out.LoadBalancer
}

func (a *api) get(id int) lbJSON {
	a.t.Helper()
	var out struct{ LoadBalancer lbJSON }
	a.do("GET", a.lbPath(id, ""), "", 200, &out)
	return out.LoadBalancer
}

// waitStatus polls until the load balancer has the status (10 s at most).
func (a *api) waitStatus(id int, status string) lbJSON {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lb := a.get(id)
		if lb.Status == status {
			return lb
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("load balancer %d is %s (%s), want %s", id, lb.Status, lb.StatusDescription, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeJSON(address string, port int, extra string) string {
	return fmt.Sprintf(`{"address":%q,"port":%d,"condition":"ENABLED"%s}`, address, port, extra)
}

// proxyless is a gRPC client whose xDS bootstrap comes from the binary.
type proxyless struct {
	t        *testing.T
	resolver resolver.Builder
}

func newProxyless(t *testing.T, bin string, d *daemon, nodeID string, bootstrapArgs ...string) *proxyless {
	t.Helper()
	boot, err := exec.Command(bin, append([]string{"envoy-bootstrap", "--proxyless", "--fleet", "default",
		"--xds-address", d.xdsAddr, "--node-id", nodeID}, bootstrapArgs...)...).Output()
	if err != nil {
		t.Fatalf("envoy-bootstrap: %v", err)
	}
	r, err := xds.NewXDSResolverWithConfigForTesting(boot)
	if err != nil {
		t.Fatalf("grpc-go refused the bootstrap: %v", err)
	}
	return &proxyless{t: t, resolver: r}
}

func (p *proxyless) dial(lbID int) testgrpc.TestServiceClient {
	p.t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("xds:///lb_%d", lbID),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(p.resolver))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

// hits sends n RPCs and counts the replies per backend.
func hits(c testgrpc.TestServiceClient, n int) (map[string]int, error) {
	out := map[string]int{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return out, err
		}
		out[res.GetHostname()]++
	}
	return out, nil
}

// eventually samples traffic until ok accepts a sample (10 s at most).
func eventually(t *testing.T, c testgrpc.TestServiceClient, what string, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last map[string]int
	var err error
	for time.Now().Before(deadline) {
		if last, err = hits(c, 20); err == nil && ok(last) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: last sample %v, error %v", what, last, err)
}

// Traffic through a real xDS data plane (grpc-go's proxyless client),
// configured by the real binary through its REST API.
func TestProxylessGRPC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	// Node names resolve through a DNS server on loopback, never the
	// machine's own.
	dns := dnstest.Start(t, map[string][]string{"one.backends.test": {"127.0.0.1"}, "two.backends.test": {"127.0.0.1"}})
	d := startDaemon(t, bin, dir, []string{"LBAASD_NODE_DNS_SERVER=" + dns.Addr})
	a := newAPI(t, bin, dir, d)
	client := newProxyless(t, bin, d, "e2e-client")

	be := map[string]*backend{}
	for _, name := range []string{"a", "b", "c", "primary", "secondary", "one", "two"} {
		be[name] = startBackend(t, name)
	}

	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"grpc","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`,
		nodeJSON("127.0.0.1", be["a"].port, ""), nodeJSON("127.0.0.1", be["b"].port, "")))
	a.waitStatus(lb.ID, "ACTIVE")
	c := client.dial(lb.ID)

	t.Run("requests reach the nodes", func(t *testing.T) {
		eventually(t, c, "both nodes serve", func(h map[string]int) bool { return h["a"] > 0 && h["b"] > 0 })
	})
	nodeB := lb.Nodes[1].ID
	setCondition := func(node int, condition string) {
		a.do("PUT", a.lbPath(lb.ID, "/nodes/"+strconv.Itoa(node)), `{"node":{"condition":"`+condition+`"}}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
	}
	t.Run("a DISABLED node gets no new requests", func(t *testing.T) {
		setCondition(nodeB, "DISABLED")
		eventually(t, c, "only a serves", func(h map[string]int) bool { return h["a"] == 20 })
		setCondition(nodeB, "ENABLED")
		eventually(t, c, "b is back", func(h map[string]int) bool { return h["b"] > 0 })
	})
	t.Run("a DRAINING node gets none", func(t *testing.T) {
		setCondition(nodeB, "DRAINING")
		eventually(t, c, "only a serves", func(h map[string]int) bool { return h["a"] == 20 })
	})
	t.Run("an added node joins the rotation", func(t *testing.T) {
		a.do("POST", a.lbPath(lb.ID, "/nodes"), `{"nodes":[`+nodeJSON("127.0.0.1", be["c"].port, "")+`]}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		eventually(t, c, "c serves", func(h map[string]int) bool { return h["c"] > 0 && h["a"] > 0 && h["b"] == 0 })
	})

	t.Run("a SECONDARY node serves only when the primaries are gone", func(t *testing.T) {
		failover := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"failover","protocol":"HTTP","port":81,
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`,
			nodeJSON("127.0.0.1", be["primary"].port, ""), nodeJSON("127.0.0.1", be["secondary"].port, `,"type":"SECONDARY"`)))
		a.waitStatus(failover.ID, "ACTIVE")
		fc := client.dial(failover.ID)
		eventually(t, fc, "the primary takes everything", func(h map[string]int) bool { return h["primary"] == 20 })
		be["primary"].srv.Stop()
		eventually(t, fc, "the secondary takes over", func(h map[string]int) bool { return h["secondary"] == 20 })
	})

	t.Run("named nodes: the control plane resolves them, the client balances over their addresses", func(t *testing.T) {
		// grpc-go refused the STRICT_DNS cluster such a load balancer used
		// to get; now it receives IP endpoints over EDS like any other.
		named := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"dns","protocol":"HTTP","port":82,"algorithm":"ROUND_ROBIN",
			"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s,%s]}}`,
			nodeJSON("one.backends.test", be["one"].port, ""), nodeJSON("two.backends.test", be["two"].port, "")))
		a.waitStatus(named.ID, "ACTIVE")
		nc := client.dial(named.ID)
		eventually(t, nc, "both named nodes serve", func(h map[string]int) bool { return h["one"] > 0 && h["two"] > 0 })
		if got := a.get(named.ID); got.Status != "ACTIVE" {
			t.Errorf("the client refused the named nodes: %s %q", got.Status, got.StatusDescription)
		}
		// The other load balancer serves, and still takes changes.
		eventually(t, c, "lb still serves", func(h map[string]int) bool { return h["a"]+h["c"] == 20 })
		setCondition(nodeB, "ENABLED")
		eventually(t, c, "b is back", func(h map[string]int) bool { return h["b"] > 0 })
	})
}

// A change becomes ACTIVE only once a connected client acknowledged it:
// while the client process is stopped (SIGSTOP) the load balancer stays
// BUILD (a client waiting for it) or PENDING_UPDATE (a client using it);
// when the client resumes, it acknowledges and the status follows.
func TestStatusWaitsForTheClientsACK(t *testing.T) {
	t.Parallel()
	if os.Getenv("E2E_CLIENT_TARGET") != "" {
		runClientProcess()
		return
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	b := startBackend(t, "a")
	lbBody := `{"loadBalancer":{"name":"acked","protocol":"HTTP","port":80,"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
		"nodes":[` + nodeJSON("127.0.0.1", b.port, "") + `]}}`
	lb := a.create(lbBody)
	a.waitStatus(lb.ID, "ACTIVE")

	t.Run("an update waits for a client using the load balancer", func(t *testing.T) {
		client, out := stoppableClient(t, bin, d, lb.ID)
		// A few replies: the client has settled (and acknowledged what it got).
		waitFor(t, "the client's replies", func() bool { return strings.Count(out.String(), "served by a") >= 3 })
		stop(t, client)
		// The timeout is in the route the client uses. (An algorithm change
		// from RANDOM to ROUND_ROBIN would not do: a gRPC client gets round
		// robin for both, so it has nothing to acknowledge.)
		a.do("PUT", a.lbPath(lb.ID, ""), `{"loadBalancer":{"timeout":45}}`, 202, nil)
		time.Sleep(time.Second)
		if st := a.get(lb.ID).Status; st != "PENDING_UPDATE" {
			t.Fatalf("with the client stopped the load balancer is %s, want PENDING_UPDATE (xDS clients: %d; client output:\n%s)",
				st, xdsClients(t, d), out.String())
		}
		resume(t, client)
		a.waitStatus(lb.ID, "ACTIVE")
	})

	t.Run("a new load balancer waits for a client waiting for it", func(t *testing.T) {
		next := lb.ID + 1 // ids are handed out in order
		waitFor(t, "the previous client to be gone", func() bool { return xdsClients(t, d) == 0 })
		client, out := stoppableClient(t, bin, d, next)
		waitFor(t, "the client to subscribe", func() bool { return xdsClients(t, d) == 1 })
		time.Sleep(200 * time.Millisecond) // let it ask for lb_<next>
		stop(t, client)
		created := a.create(lbBody)
		if created.ID != next {
			t.Fatalf("created load balancer %d, expected %d", created.ID, next)
		}
		time.Sleep(time.Second)
		if st := a.get(next).Status; st != "BUILD" {
			t.Fatalf("with the waiting client stopped the new load balancer is %s, want BUILD", st)
		}
		resume(t, client)
		a.waitStatus(next, "ACTIVE")
		waitFor(t, "the client served through the new load balancer", func() bool { return strings.Contains(out.String(), "served by a") })
	})
	d.stop(t)
}

// stoppableClient runs a proxyless client of lb_<id> in a process of its own.
func stoppableClient(t *testing.T, bin string, d *daemon, id int) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	boot, err := exec.Command(bin, "envoy-bootstrap", "--proxyless", "--xds-address", d.xdsAddr,
		"--node-id", fmt.Sprintf("stoppable-%d", id)).Output()
	if err != nil {
		t.Fatal(err)
	}
	return clientProcess(t, "TestStatusWaitsForTheClientsACK", boot, id)
}

// clientProcess runs a proxyless client of lb_<id> with this bootstrap in
// a process of its own: the test binary running test, which must start
// with runClientProcess when E2E_CLIENT_TARGET is set.
func clientProcess(t *testing.T, test string, boot []byte, id int) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	self, _ := os.Executable()
	client := exec.Command(self, "-test.run", "^"+test+"$")
	client.Env = append(os.Environ(), "E2E_CLIENT_TARGET=xds:///lb_"+strconv.Itoa(id), "GRPC_XDS_BOOTSTRAP_CONFIG="+string(boot))
	client.Env = withoutEnv(client.Env, "GRPC_XDS_BOOTSTRAP")
	out := &syncBuffer{}
	client.Stdout, client.Stderr = out, out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Process.Kill(); _ = client.Wait() })
	return client, out
}

// stop stops a client process and waits until the kernel reports it
// stopped (state T), so that it can acknowledge nothing from then on.
func stop(t *testing.T, c *exec.Cmd) {
	t.Helper()
	if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to be stopped", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(fields) > 0 && fields[0] == "T"
	})
}

func resume(t *testing.T, c *exec.Cmd) {
	t.Helper()
	if err := c.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// xdsClients reads the daemon's count of connected proxyless clients.
func xdsClients(t *testing.T, d *daemon) int {
	t.Helper()
	res, err := http.Get(d.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `lbaas_xds_clients{fleet="default",kind="grpc"}`) {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// runClientProcess is the stoppable client: it calls the target until killed.
func runClientProcess() {
	conn, err := grpc.NewClient(os.Getenv("E2E_CLIENT_TARGET"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	c := testgrpc.NewTestServiceClient(conn)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			fmt.Println("served by", res.GetHostname())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a buffer safe to read while a process writes to it.
type syncBuffer = logutil.Buffer

// With session persistence a proxyless client's calls stick to one node:
// the channel is the session (ring hash on grpc-go's channel id).
func TestProxylessSessionPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil)
	a := newAPI(t, bin, dir, d)
	client := newProxyless(t, bin, d, "sticky-client")
	var nodes []string
	for _, name := range []string{"n1", "n2", "n3", "n4"} {
		nodes = append(nodes, nodeJSON("127.0.0.1", startBackend(t, name).port, ""))
	}
	lb := a.create(`{"loadBalancer":{"name":"sticky","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[` + strings.Join(nodes, ",") + `]}}`)
	a.waitStatus(lb.ID, "ACTIVE")
	c := client.dial(lb.ID)
	eventually(t, c, "round robin spreads calls", func(h map[string]int) bool { return len(h) == 4 })

	a.do("PUT", a.lbPath(lb.ID, "/sessionpersistence"), `{"sessionPersistence":{"persistenceType":"HTTP_COOKIE"}}`, 202, nil)
	a.waitStatus(lb.ID, "ACTIVE")
	eventually(t, c, "every call of the channel goes to one node", func(h map[string]int) bool { return len(h) == 1 })
}
