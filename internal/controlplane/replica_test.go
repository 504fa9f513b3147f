package controlplane

import (
	"context"
	"log/slog"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

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
		pickyEnvoy(t, addr, []string{"lb_" + itoa(id)})
		waitFor(t, func() bool { return len(p.Tracker().ClientList()) == 1 && len(p.Tracker().ClientList()[0].Types) == 4 })
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
