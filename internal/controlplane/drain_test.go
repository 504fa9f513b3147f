package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/store"
)

// An edit Envoy takes in place leaves the status description empty; one
// that rebuilds the listener (here the port) says, once applied, that the
// proxies drain the connections opened before it, and within what time;
// the next edit in place clears it.
func TestStatusTellsWhenConnectionsAreDrained(t *testing.T) {
	onBothBackends(t, func(t *testing.T, st *store.Store) {
		id := insert(t, st, store.StatusActive, 80)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := New(ctx, st, Options{DefaultFleet: "default", DrainTime: 90 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		go p.Run(ctx)
		edit := func(change func(*store.LoadBalancer)) *store.LoadBalancer {
			t.Helper()
			_, err := st.Update(ctx, func(tx *store.Tx) error {
				lb, err := tx.LoadBalancer("1", id)
				if err != nil {
					return err
				}
				change(lb)
				lb.Status = store.StatusPendingUpdate
				return tx.SaveLoadBalancer(lb)
			})
			if err != nil {
				t.Fatal(err)
			}
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
