package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/openlbaas/lbaas/envoy"
	"github.com/openlbaas/lbaas/store"
)

// An edit Envoy takes in place leaves the status description empty; one
// that rebuilds the listener (here the port) says, once applied, that the
// proxies drain the connections opened before it, and within what time;
// the next edit in place clears it.
func TestStatusTellsWhenConnectionsAreDrained(t *testing.T) {
	onBothBackends(t, func(t *testing.T, st *store.Store) {
		_, id := runWithDrainTime(t, st)
		edit := func(change func(*store.LoadBalancer)) *store.LoadBalancer {
			t.Helper()
			editStored(t, st, id, func(lb *store.LoadBalancer) {
				change(lb)
				lb.Status = store.StatusPendingUpdate
			})
			return waitStatus(t, st, id, store.StatusActive)
		}
		if lb := edit(func(lb *store.LoadBalancer) {
			lb.Timeout = 90
			lb.ConnectionLogging = true
			lb.ErrorPage = "<p>down</p>"
		}); lb.StatusDescription != "" {
			t.Errorf("after edits in place: %q", lb.StatusDescription)
		}
		lb := edit(func(lb *store.LoadBalancer) { lb.Port = 8080 })
		if d := lb.StatusDescription; !strings.Contains(d, "drain") || !strings.Contains(d, "90 s") {
			t.Errorf("after a port change: %q", d)
		}
		if lb := edit(func(lb *store.LoadBalancer) { lb.Timeout = 60 }); lb.StatusDescription != "" {
			t.Errorf("the next edit in place keeps %q", lb.StatusDescription)
		}
	})
}

// With an Envoy of the fleet connected, the status tells the drain time
// its bootstrap declares rather than --envoy-drain-time.
func TestStatusTellsTheDrainTimeTheEnvoysDeclare(t *testing.T) {
	st := openStore(t)
	p, id := runWithDrainTime(t, st)
	addr := serveXDS(t, p)
	pickyEnvoy(t, addr, []string{"lb_" + itoa(id)},
		&structpb.Struct{Fields: map[string]*structpb.Value{envoy.DrainTimeMetadataKey: structpb.NewNumberValue(45)}})
	waitFor(t, func() bool {
		return len(p.Tracker().ClientList()) == 1 && len(p.Tracker().ClientList()[0].Types) == pickyTypes
	})
	editStored(t, st, id, func(lb *store.LoadBalancer) { lb.Port, lb.Status = 8080, store.StatusPendingUpdate })
	if lb := waitStatus(t, st, id, store.StatusActive); !strings.Contains(lb.StatusDescription, "45 s") {
		t.Errorf("status %q does not tell the Envoy's 45 s", lb.StatusDescription)
	}
}

// editStored changes a stored load balancer (of account 1) in one
// transaction, as the API would.
func editStored(t *testing.T, st *store.Store, id uint32, change func(*store.LoadBalancer)) {
	t.Helper()
	_, err := st.Update(context.Background(), func(tx *store.Tx) error {
		lb, err := tx.LoadBalancer("1", id)
		if err != nil {
			return err
		}
		change(lb)
		return tx.SaveLoadBalancer(lb)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runWithDrainTime runs a publisher told a 90 s drain time, over a store
// holding one active HTTP load balancer (id).
func runWithDrainTime(t *testing.T, st *store.Store) (*Publisher, uint32) {
	t.Helper()
	id := insert(t, st, store.StatusActive, 80)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := New(ctx, st, Options{DefaultFleet: "default", DrainTime: 90 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	return p, id
}
