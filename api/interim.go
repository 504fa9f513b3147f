package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/openlbaas/lbaas/store"
)

// ActivateCommitted is the interim status step used until the xDS server
// reports real fleet ACKs: it treats every committed revision as applied,
// moving BUILD / PENDING_UPDATE load balancers to ACTIVE and PENDING_DELETE
// ones to DELETED. The xDS side replaces it by calling store.MarkApplied
// with the revision each fleet has acknowledged. It returns when ctx ends.
func ActivateCommitted(ctx context.Context, st *store.Store, log *slog.Logger) {
	revs, stop := st.Subscribe()
	defer stop()
	apply := func() {
		rev, err := st.Revision(ctx)
		if err != nil {
			log.WarnContext(ctx, "interim activation: read revision", "err", err)
			return
		}
		fleets, err := st.Fleets(ctx)
		if err != nil {
			log.WarnContext(ctx, "interim activation: list fleets", "err", err)
			return
		}
		for _, fleet := range fleets {
			if _, err := st.MarkApplied(ctx, fleet, rev); err != nil {
				log.WarnContext(ctx, "interim activation", "fleet", fleet, "err", err)
			}
		}
	}
	// The ticker retries after a database error and picks up changes
	// committed by other replicas.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	apply() // load balancers left waiting by a previous run
	for {
		select {
		case <-ctx.Done():
			return
		case <-revs:
			apply()
		case <-tick.C:
			apply()
		}
	}
}
