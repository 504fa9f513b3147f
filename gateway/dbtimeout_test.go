package gateway_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/server"
)

func withDBTimeout(d time.Duration) envOption { return func(c *server.Config) { c.DBTimeout = d } }

// dbTimeout is the --db-timeout of these tests; a request that waits on
// the database must be answered well within maxWait of it, far from the
// minute a hung database used to cost.
const (
	dbTimeout = 500 * time.Millisecond
	maxWait   = 3 * time.Second
)

// The Rackspace fault of an unavailable service, as the REST API sends it.
var unavailableBody = map[string]any{"code": 503.0, "message": "The Load balancing service is currently not available"}

const loopbackLB = `{"loadBalancer":{"name":"web","port":80,"protocol":"HTTP",
	"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],
	"nodes":[{"address":"127.0.0.1","port":8081,"condition":"ENABLED"}]}}`

// timed sends a request with a client timeout well past maxWait (so that a
// hang fails the test rather than stalling it) and returns the status,
// the decoded body and how long the answer took.
func (e *env) timed(method, path, token, body string) (int, map[string]any, time.Duration) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	client := &http.Client{Timeout: 4 * maxWait}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: no answer after %v: %v", method, path, time.Since(start), err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	took := time.Since(start)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	if res.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, res.StatusCode, b)
		}
	}
	return res.StatusCode, out, took
}

// dbTimeouts reads lbaas_db_timeouts_total from /metrics.
func (e *env) dbTimeouts() int {
	e.t.Helper()
	res, err := (&http.Client{Timeout: maxWait}).Get(e.base + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "lbaas_db_timeouts_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("metric line %q: %v", line, err)
			}
			return int(n)
		}
	}
	e.t.Fatalf("no lbaas_db_timeouts_total in /metrics:\n%s", b)
	return 0
}

// wantUnavailable checks a request got the 503 fault in about the
// database timeout: not at once (the database did not refuse, it hung),
// and not after a hang.
func (e *env) wantUnavailable(what string, code int, body, want map[string]any, took time.Duration) {
	e.t.Helper()
	e.t.Logf("%s: %d in %v", what, code, took.Round(time.Millisecond))
	if code != 503 || !reflect.DeepEqual(body, want) {
		e.t.Errorf("%s with the database hung: %d %v, want 503 %v", what, code, body, want)
	}
	if took < dbTimeout*8/10 || took > maxWait {
		e.t.Errorf("%s answered after %v; want about the %v database timeout (under %v)", what, took, dbTimeout, maxWait)
	}
}

// A hung PostgreSQL (every one of its processes stopped, as a frozen host
// looks) costs each request the database timeout and gets 503
// serviceUnavailable, over REST and gRPC; when it resumes, the service
// works again without a restart.
func TestHungPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	pg, err := pgtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withDatabase(dsn), withDBTimeout(dbTimeout))
	id := e.createLB(loopbackLB)
	e.waitStatus(id, "ACTIVE")
	lbPath := fmt.Sprintf("/v1.0/%s/loadbalancers/%d", e.account, id)
	// A token that was never used: checking it needs the database.
	bobToken := e.login("bob", e.account)
	carolKey, err := e.srv.Auth.CreateUser(context.Background(), "carol", e.account, "")
	if err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(e.srv.GRPCAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lbs := lbaasv1.NewLoadBalancerServiceClient(conn)
	grpcGet := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*maxWait)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-auth-token", e.token)
		start := time.Now()
		_, err := lbs.GetLoadBalancer(ctx, &lbaasv1.GetLoadBalancerRequest{Account: e.account, LoadBalancerId: uint32(id)})
		return time.Since(start), err
	}
	if _, err := grpcGet(); err != nil {
		t.Fatalf("gRPC GetLoadBalancer before the freeze: %v", err)
	}

	if n := e.dbTimeouts(); n != 0 {
		t.Fatalf("lbaas_db_timeouts_total = %d before the database hung", n)
	}
	thaw, err := pg.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(thaw) // never leave the shared server frozen

	code, body, took := e.timed("GET", lbPath, e.token, "")
	e.wantUnavailable("GET a load balancer", code, body, unavailableBody, took)
	code, body, took = e.timed("POST", "/v1.0/"+e.account+"/loadbalancers", e.token, loopbackLB)
	e.wantUnavailable("POST a load balancer", code, body, unavailableBody, took)
	code, body, took = e.timed("GET", "/v1.0/"+e.account+"/loadbalancers", bobToken, "")
	e.wantUnavailable("GET with a token not yet checked", code, body, unavailableBody, took)
	code, body, took = e.timed("POST", "/v2.0/tokens", "",
		`{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"carol","apiKey":"`+carolKey+`"}}}`)
	e.wantUnavailable("POST /v2.0/tokens", code, body,
		map[string]any{"serviceUnavailable": map[string]any{"code": 503.0, "message": "Service unavailable"}}, took)

	took, err = grpcGet()
	t.Logf("gRPC GetLoadBalancer: %v in %v", err, took.Round(time.Millisecond))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Errorf("gRPC GetLoadBalancer with the database hung: %v, want UNAVAILABLE", err)
	}
	if len(st.Details()) != 1 || st.Details()[0].(*lbaasv1.Fault).GetCode() != 503 {
		t.Errorf("gRPC status details %v, want the 503 fault", st.Details())
	}
	if took < dbTimeout*8/10 || took > maxWait {
		t.Errorf("gRPC GetLoadBalancer answered after %v; want about %v", took, dbTimeout)
	}

	// More requests at once than the pool has connections: none waits for
	// another's deadline.
	var wg sync.WaitGroup
	tooks := make([]time.Duration, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, took := e.timed("GET", lbPath, e.token, "")
			tooks[i] = took
			if code != 503 || !reflect.DeepEqual(body, unavailableBody) || took > maxWait {
				t.Errorf("concurrent request %d: %d %v after %v", i, code, body, took)
			}
		}()
	}
	wg.Wait()
	t.Logf("concurrent requests answered after %v", tooks)
	code, body, took = e.timed("GET", "/readyz", "", "")
	if code != 503 || took > maxWait {
		t.Errorf("/readyz with the database hung: %d after %v, want 503", code, took)
	}
	// Each of the 36 requests above ran out of time once (a request stops
	// at its first failing call); background jobs may add theirs.
	if n := e.dbTimeouts(); n < 36 {
		t.Errorf("lbaas_db_timeouts_total = %d after 36 requests timed out", n)
	}

	thaw()
	// The first request after the database resumes succeeds: connections
	// stuck in the freeze were dropped, not handed out again.
	code, body, took = e.timed("GET", lbPath, e.token, "")
	if code != 200 {
		t.Fatalf("GET after the database resumed: %d %v (after %v)", code, body, took)
	}
	t.Logf("GET after the database resumed: 200 in %v", took.Round(time.Millisecond))
	if code, body, _ = e.timed("GET", "/v1.0/"+e.account+"/loadbalancers", bobToken, ""); code != 200 {
		t.Fatalf("GET with bob's token after the database resumed: %d %v", code, body)
	}
	e.waitStatus(e.createLB(loopbackLB), "ACTIVE")
	if _, err := grpcGet(); err != nil {
		t.Fatalf("gRPC GetLoadBalancer after the database resumed: %v", err)
	}
	if code, _, _ := e.timed("GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("/readyz after the database resumed: %d", code)
	}
}

// On SQLite, a write lock another process holds (here another connection
// in a write transaction) makes a mutation wait at most the database
// timeout, then 503; reads go on (WAL), and writes work once it is gone.
func TestLockedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lbaas.db")
	e := newEnv(t, withDatabase(path), withDBTimeout(dbTimeout))
	id := e.createLB(loopbackLB)
	e.waitStatus(id, "ACTIVE")

	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() { _, _ = other.ExecContext(context.Background(), "ROLLBACK") })
	}
	t.Cleanup(release)

	code, body, took := e.timed("POST", "/v1.0/"+e.account+"/loadbalancers", e.token, loopbackLB)
	e.wantUnavailable("POST a load balancer", code, body, unavailableBody, took)
	if code, body, _ := e.timed("GET", fmt.Sprintf("/v1.0/%s/loadbalancers/%d", e.account, id), e.token, ""); code != 200 {
		t.Errorf("GET while another process writes: %d %v", code, body)
	}

	release()
	e.waitStatus(e.createLB(loopbackLB), "ACTIVE")
}
