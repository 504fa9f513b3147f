package controlplane

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/jackc/pgx/v5"

	"github.com/openlbaas/lbaas/internal/pgtest"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

func setAlgorithm(t *testing.T, st *store.Store, id uint32, algorithm string) {
	t.Helper()
	pendingUpdate(t, st, id, func(lb *store.LoadBalancer) { lb.Algorithm = algorithm })
}

func envoyCluster(t *testing.T, p *Publisher, id uint32) *clusterv3.Cluster {
	t.Helper()
	c, _ := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindEnvoy}, resource.ClusterType)["lb_"+itoa(id)].(*clusterv3.Cluster)
	return c
}

// The configuration a fleet refused is not published again after a
// restart: the last accepted one, kept in the store with the ERROR, is
// (before, the restarted publisher translated the refused configuration
// and sent it again). Once the load balancer is fixed and applied, the
// kept copy is dropped.
func TestRefusedConfigurationStaysWithdrawnAfterARestart(t *testing.T) {
	onBothBackends(t, func(t *testing.T, st *store.Store) {
		id := insert(t, st, store.StatusActive, 80)
		ctx, cancel := context.WithCancel(context.Background())
		p, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		addr := serveXDS(t, p)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.Run(ctx)
		}()
		pickyEnvoy(t, addr, []string{"lb_" + itoa(id)}, nil)
		waitFor(t, func() bool {
			return len(p.Tracker().ClientList()) == 1 && len(p.Tracker().ClientList()[0].Types) == pickyTypes
		})
		setAlgorithm(t, st, id, "LEAST_CONNECTIONS") // the picky client refuses it
		waitStatus(t, st, id, store.StatusError)
		waitFor(t, func() bool { return envoyCluster(t, p, id).GetLbPolicy() == clusterv3.Cluster_RANDOM })
		cancel()
		<-done

		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		restarted, err := New(ctx, st, Options{DefaultFleet: "default"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if c := envoyCluster(t, restarted, id); c.GetLbPolicy() != clusterv3.Cluster_RANDOM {
			t.Fatalf("after a restart the ERROR load balancer's cluster is %v, want the last accepted one (RANDOM)", c.GetLbPolicy())
		}
		// Proxyless clients accepted the change: they keep it.
		grpcCluster := restarted.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindGRPC}, resource.ClusterType)["lb_"+itoa(id)]
		if grpcCluster == nil {
			t.Fatal("the kind of client that did not refuse lost the load balancer")
		}

		go func() { _ = restarted.Run(ctx) }()
		setAlgorithm(t, st, id, "ROUND_ROBIN")
		waitStatus(t, st, id, store.StatusActive)
		if c := envoyCluster(t, restarted, id); c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
			t.Fatalf("the fixed configuration is not published: %v", c.GetLbPolicy())
		}
		// In ERROR again for a reason that keeps nothing: nothing is kept.
		if _, err := st.SetRejected(ctx, id, 0, "refused"); err != nil {
			t.Fatal(err)
		}
		kept, err := st.AcceptedConfigs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(kept) != 0 {
			t.Fatalf("the configuration kept before the fix outlived it: %v", kept)
		}
	})
}

func statusOf(t *testing.T, st *store.Store, id uint32) string {
	t.Helper()
	lb, err := st.LoadBalancerByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return lb.Status
}

// heldEnvoy is an Envoy-like state-of-the-world client that acknowledges
// every response, except while held: it then keeps them, and acknowledges
// them when released.
type heldEnvoy struct {
	mu   sync.Mutex
	st   discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	subs map[string][]string
	held bool
	kept []*discoveryv3.DiscoveryResponse
}

func startHeldEnvoy(t *testing.T, addr string, names []string) *heldEnvoy {
	e := &heldEnvoy{}
	e.st, e.subs = envoyStream(t, addr, "held", names, nil)
	go func() {
		for {
			r, err := e.st.Recv()
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.held {
				e.kept = append(e.kept, r)
			} else {
				e.ack(r)
			}
			e.mu.Unlock()
		}
	}()
	return e
}

// ack answers a response. Callers hold e.mu.
func (e *heldEnvoy) ack(r *discoveryv3.DiscoveryResponse) {
	_ = e.st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(),
		VersionInfo: r.GetVersionInfo(), ResourceNames: e.subs[r.GetTypeUrl()]})
}

func (e *heldEnvoy) hold() {
	e.mu.Lock()
	e.held = true
	e.mu.Unlock()
}

func (e *heldEnvoy) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held = false
	for _, r := range e.kept {
		e.ack(r)
	}
	e.kept = nil
}

// Two replicas on one PostgreSQL: a change settles only once the clients
// of every replica that has clients of the fleet applied it — replica A,
// without clients, applies it at once, and the load balancer waits for
// replica B's client; a replica that stops no longer counts.
func TestStatusWaitsForEveryReplicasClients(t *testing.T) {
	url := pgtest.NewDatabase(t)
	stA, stB := openStoreAt(t, url), openStoreAt(t, url)
	id := insert(t, stA, store.StatusActive, 80)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options{DefaultFleet: "default", Lease: 1500 * time.Millisecond}
	a, err := New(ctx, stA, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, stB, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Run(ctx) }()
	ctxB, stopB := context.WithCancel(ctx)
	doneB := make(chan struct{})
	go func() { defer close(doneB); _ = b.Run(ctxB) }()
	defer func() { stopB(); <-doneB }()

	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	query := func(sql string, args ...any) int {
		var n int
		if err := db.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	client := startHeldEnvoy(t, serveXDS(t, b), []string{"lb_" + itoa(id)})
	waitFor(t, func() bool {
		return query("SELECT count(*) FROM replica_fleets WHERE replica_id = $1 AND fleet = 'default'", b.Replica()) == 1
	})
	// Applied by A (no clients) and waiting for B's.
	waitUntilAppliedBy := func(p *Publisher) {
		t.Helper()
		lb, err := stA.LoadBalancerByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return query("SELECT count(*) FROM replica_verdicts WHERE replica_id = $1 AND load_balancer_id = $2 AND revision >= $3",
				p.Replica(), int64(id), lb.Revision) == 1
		})
	}
	client.hold()
	setPort(t, stA, id, 81)
	waitUntilAppliedBy(a)
	if st := statusOf(t, stA, id); st != store.StatusPendingUpdate {
		t.Fatalf("applied by the replica without clients only, the load balancer is %s, want PENDING_UPDATE", st)
	}
	client.release()
	waitStatus(t, stA, id, store.StatusActive)

	// B stops (its lease ends): A's verdict is enough.
	client.hold()
	setPort(t, stA, id, 82)
	waitUntilAppliedBy(a)
	if st := statusOf(t, stA, id); st != store.StatusPendingUpdate {
		t.Fatalf("applied by the replica without clients only, the load balancer is %s, want PENDING_UPDATE", st)
	}
	stopB()
	<-doneB
	waitStatus(t, stA, id, store.StatusActive)
}
