package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/xds"

	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/pgtest"
)

// pgProxy forwards TCP connections to PostgreSQL and can black-hole them
// (a partition between one replica and the database: bytes stop flowing
// both ways, connections stay open, new ones hang).
type pgProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	cond    *sync.Cond
	blocked bool
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln}
	p.cond = sync.NewCond(&p.mu)
	t.Cleanup(func() { p.unblock(); _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c, target)
		}
	}()
	return p
}

func (p *pgProxy) forward(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { p.pump(up, c); done <- struct{}{} }()
	go func() { p.pump(c, up); done <- struct{}{} }()
	<-done
}

// pump copies from src to dst, holding what it read while blocked.
func (p *pgProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.blocked {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *pgProxy) block() {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
}

func (p *pgProxy) unblock() {
	p.mu.Lock()
	p.blocked = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// through returns dsn with its host:port replaced by the proxy's.
func (p *pgProxy) through(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// replicaPort finds a port free on 127.0.0.1, .2 and .3, so that the
// three replicas' xDS ports are one name's three addresses.
func replicaPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		port := freePort(t)
		free := true
		for _, host := range []string{"127.0.0.2", "127.0.0.3"} {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", host, port))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on 127.0.0.1-3")
	return 0
}

// serving tells whether an xDS port accepts connections.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ackedRevisions reads, from a replica's /debug/xds/clients, the store
// revision each type reflects in what a node acknowledged (nil when the
// node is not connected there).
func ackedRevisions(t *testing.T, debugAddr, node string) map[string]int64 {
	t.Helper()
	res, err := http.Get("http://" + debugAddr + "/debug/xds/clients")
	if err != nil {
		return nil // a replica killed or partitioned
	}
	defer res.Body.Close()
	var out struct {
		Clients []struct {
			Node  string
			Types []struct {
				Type     string
				Revision int64 `json:"ackedRevision"`
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for _, c := range out.Clients {
		if c.Node == node {
			revs := map[string]int64{}
			for _, ty := range c.Types {
				revs[ty.Type] = ty.Revision
			}
			return revs
		}
	}
	return nil
}

// tryCreate creates a load balancer without failing the test (it runs
// in a writer goroutine, against replicas that may be gone): the id when
// the API acknowledged it (202).
func tryCreate(base, token, body string) (int, bool) {
	req, _ := http.NewRequest("POST", base+"/v1.0/777/loadbalancers", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", token)
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		return 0, false
	}
	var out struct{ LoadBalancer lbJSON }
	if json.Unmarshal(b, &out) != nil {
		return 0, false
	}
	return out.LoadBalancer.ID, true
}

// Three lbaasd replicas on one PostgreSQL, with proxyless gRPC clients
// spread over them (one DNS name per client, listing the replicas in a
// different order, as round-robin DNS would): status waits for every
// replica's clients; a replica killed under a write load loses nothing
// and strands no load balancer; a replica cut from the database stops
// serving xDS, its lease lapses, and it comes back when the database does.
func TestReplicas(t *testing.T) {
	t.Parallel()
	if os.Getenv("E2E_CLIENT_TARGET") != "" {
		runClientProcess()
		return
	}
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	port := replicaPort(t)
	xdsAddr := func(i int) string { return fmt.Sprintf("127.0.0.%d:%d", i, port) }
	dns := dnstest.Start(t, map[string][]string{
		"r1.xds.test": {"127.0.0.1", "127.0.0.2", "127.0.0.3"},
		"r2.xds.test": {"127.0.0.2", "127.0.0.3", "127.0.0.1"},
		"r3.xds.test": {"127.0.0.3", "127.0.0.1", "127.0.0.2"},
	})
	pg, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, pg.Host)

	// Short timeouts so that the test is quick: a silent client stops
	// counting after 3 s, a replica after 3 s without renewing its lease.
	const ackTimeout, lease = 3 * time.Second, 3 * time.Second
	replicas := make([]*daemon, 4) // 1-based
	// Replicas of one database share its key-encryption key.
	secretsKey := newSecretsKey(t)
	debug := make([]string, 4)
	for i := 1; i <= 3; i++ {
		url := dsn
		if i == 3 {
			url = proxy.through(t, dsn)
		}
		debug[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		replicas[i] = startDaemon(t, bin, dir, []string{"LBAASD_DATABASE_URL=" + url, "LBAASD_SECRETS_KEY=" + secretsKey},
			"--xds-addr", xdsAddr(i), "--ack-timeout", ackTimeout.String(), "--replica-lease", lease.String(),
			"--db-timeout", "2s", "--debug-addr", debug[i])
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				t.Logf("replica %d:\n%s", i, replicas[i].stderr)
			}
		}
	})
	cmd := exec.Command(bin, "user", "create", "--username", "e2e", "--tenant", "777")
	cmd.Env = append(os.Environ(), "LBAASD_DATABASE_URL="+dsn)
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	apis := make([]*api, 4)
	apis[1] = &api{t: t, base: replicas[1].httpURL, account: "777"}
	var signIn struct {
		Access struct {
			Token struct{ ID string } `json:"token"`
		} `json:"access"`
	}
	apis[1].do("POST", "/v2.0/tokens", fmt.Sprintf(`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"e2e","apiKey":%q}}}`,
		strings.TrimSpace(string(key))), 200, &signIn)
	for i := 1; i <= 3; i++ {
		apis[i] = &api{t: t, base: replicas[i].httpURL, account: "777", token: signIn.Access.Token.ID}
	}
	bootstrap := func(node string, replica int) []byte {
		out, err := exec.Command(bin, "envoy-bootstrap", "--proxyless", "--fleet", "default", "--node-id", node,
			"--xds-address", fmt.Sprintf("dns://%s/r%d.xds.test:%d", dns.Addr, replica, port)).Output()
		if err != nil {
			t.Fatalf("envoy-bootstrap: %v", err)
		}
		return out
	}
	inProcess := func(node string, replica int) *proxyless {
		r, err := xds.NewXDSResolverWithConfigForTesting(bootstrap(node, replica))
		if err != nil {
			t.Fatalf("grpc-go refused the bootstrap: %v", err)
		}
		return &proxyless{t: t, resolver: r}
	}

	be := startBackend(t, "a")
	lbBody := func(name string) string {
		return `{"loadBalancer":{"name":"` + name + `","protocol":"HTTP","port":80,"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
			"nodes":[` + nodeJSON("127.0.0.1", be.port, "") + `]}}`
	}
	lb := apis[1].create(lbBody("shared"))
	apis[1].waitStatus(lb.ID, "ACTIVE")
	c1 := inProcess("c1", 1).dial(lb.ID)
	c2 := inProcess("c2", 2).dial(lb.ID)
	c3, c3out := clientProcess(t, "TestReplicas", bootstrap("c3", 3), lb.ID)
	eventually(t, c1, "c1 is served", func(h map[string]int) bool { return h["a"] == 20 })
	eventually(t, c2, "c2 is served", func(h map[string]int) bool { return h["a"] == 20 })
	waitFor(t, "c3 to be served", func() bool { return strings.Count(c3out.String(), "served by a") >= 3 })
	for i := 1; i <= 3; i++ {
		waitFor(t, fmt.Sprintf("one client on replica %d", i), func() bool { return xdsClients(t, replicas[i]) == 1 })
	}
	// The health monitors' shards: each live replica probes its share.
	shards := func(i int) int { return int(metric(t, replicas[i], "lbaas_health_shards")) }
	waitFor(t, "the 16 shards spread over the three replicas", func() bool {
		return shards(1)+shards(2)+shards(3) == 16 && max(shards(1), shards(2), shards(3)) <= 6
	})

	t.Run("a change through any replica waits for the clients of all three", func(t *testing.T) {
		stop(t, c3) // on replica 3
		apis[2].do("PUT", apis[2].lbPath(lb.ID, ""), `{"loadBalancer":{"timeout":45}}`, 202, nil)
		cut := `lbaas_xds_ack_timeouts_total{fleet="default",kind="grpc"}`
		deadline := time.Now().Add(ackTimeout + 15*time.Second)
		for {
			st := apis[1].get(lb.ID).Status
			if st == "ACTIVE" {
				// Only once replica 3 stopped counting its silent client.
				if metric(t, replicas[3], cut) == 0 {
					t.Fatal("ACTIVE while the stopped client on replica 3 still counted")
				}
				break
			}
			if st != "PENDING_UPDATE" {
				t.Fatalf("the load balancer is %s", st)
			}
			if time.Now().After(deadline) {
				t.Fatalf("still PENDING_UPDATE %s after the ack timeout", time.Since(deadline.Add(-ackTimeout-15*time.Second)))
			}
			time.Sleep(50 * time.Millisecond)
		}
		resume(t, c3)
		// Cut off by the ack timeout, it connects again (to replica 3, the
		// first its name lists).
		waitFor(t, "c3 back on replica 3", func() bool { return xdsClients(t, replicas[3]) == 1 })
	})

	t.Run("kill -9 of a replica under a write load", func(t *testing.T) {
		var (
			mu    sync.Mutex
			acked []int
			stopW atomic.Bool
			wg    sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// At most 20 (the account may have 25 load balancers).
			for i := 0; !stopW.Load() && i < 20; i++ {
				if id, ok := tryCreate(replicas[1+i%3].httpURL, apis[1].token, lbBody(fmt.Sprintf("load-%d", i))); ok {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
		waitFor(t, "a few writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 3 })
		before := ackedRevisions(t, debug[2], "c2")
		if before == nil {
			t.Fatal("c2 is not on replica 2")
		}
		if err := replicas[2].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		atKill := len(acked)
		mu.Unlock()
		// c2 moves on (its name lists replica 3 next), and keeps being served.
		waitFor(t, "c2 on replica 3", func() bool { return ackedRevisions(t, debug[3], "c2") != nil })
		eventually(t, c2, "c2 is served after its replica died", func(h map[string]int) bool { return h["a"] == 20 })
		waitFor(t, "writes after the kill", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= atKill+3 })
		stopW.Store(true)
		wg.Wait()
		after := ackedRevisions(t, debug[3], "c2")
		for typ, rev := range before {
			if after[typ] < rev {
				t.Errorf("c2's %s went back from revision %d to %d", typ, rev, after[typ])
			}
		}
		mu.Lock()
		defer mu.Unlock()
		// Every acknowledged write is there, and none stays BUILD once the
		// dead replica's lease has lapsed.
		for _, id := range acked {
			apis[1].waitStatus(id, "ACTIVE")
		}
		apis[3].do("PUT", apis[3].lbPath(lb.ID, ""), `{"loadBalancer":{"timeout":50}}`, 202, nil)
		apis[1].waitStatus(lb.ID, "ACTIVE")
		waitFor(t, "the dead replica's shards taken over", func() bool { return shards(1) == 8 && shards(3) == 8 })
	})

	t.Run("a replica cut from the database stops serving xDS", func(t *testing.T) {
		proxy.block()
		waitFor(t, "replica 3 to close its xDS port", func() bool { return !serving(xdsAddr(3)) })
		// Its clients (c3, and c2 since replica 2 died) go to replica 1.
		waitFor(t, "every client on replica 1", func() bool { return xdsClients(t, replicas[1]) == 3 })
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		live := func() int {
			var n int
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM replicas WHERE expires_at > now()").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Replica 2 was killed; replica 3's lease lapses (it stopped serving
		// before the database's clock says so, never after).
		waitFor(t, "one live replica", func() bool { return live() == 1 })
		waitFor(t, "replica 1 probing every shard", func() bool { return shards(1) == 16 })
		if serving(xdsAddr(3)) {
			t.Fatal("replica 3 serves xDS again while cut off")
		}
		apis[1].do("PUT", apis[1].lbPath(lb.ID, ""), `{"loadBalancer":{"timeout":55}}`, 202, nil)
		apis[1].waitStatus(lb.ID, "ACTIVE")
		before := len(c3out.String())
		waitFor(t, "c3 served through replica 1", func() bool { return strings.Count(c3out.String()[before:], "served by a") >= 3 })

		proxy.unblock()
		waitFor(t, "replica 3 to serve xDS again", func() bool { return serving(xdsAddr(3)) })
		waitFor(t, "replica 3's lease", func() bool { return live() == 2 })
		waitFor(t, "the shards shared again", func() bool { return shards(1) == 8 && shards(3) == 8 })
	})
}
