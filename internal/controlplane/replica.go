package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// DefaultLease is how long a replica counts for status without renewing
// its lease (Options.Lease when zero). It renews every third of it.
const DefaultLease = 15 * time.Second

// pruneEvery is how often a single process (SQLite) prunes the change
// feed; replicas prune at each renewal of their lease.
const pruneEvery = 30 * time.Second

// ErrLeaseLost ends Run when the replica could not renew its lease in
// time (the database is unreachable, or it was too slow): the other
// replicas no longer count its clients, so it must stop serving them.
var ErrLeaseLost = errors.New("controlplane: the replica's lease expired; it stops serving xDS")

func newReplicaID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keepLease renews the replica's lease every third of its length, then
// settles what the live replicas agree on (a lease that expired may be
// what held it) and prunes the change feed. When the lease cannot be
// renewed before it runs out, lost is called and keepLease returns.
func (p *Publisher) keepLease(ctx context.Context, until time.Time, lost func()) {
	every := p.lease / 3
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		p.mu.Lock()
		published := p.revision
		p.mu.Unlock()
		// A renewal that answers after the lease ran out is too late.
		renew, cancel := context.WithDeadline(ctx, until)
		err := p.store.RenewReplica(renew, p.replica, published, p.lease)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			until = sent.Add(p.lease)
			if p.leaseLapsed.Load() {
				p.log.InfoContext(ctx, "xds: lease renewed again", "replica", p.replica)
				p.leaseLapsed.Store(false)
			}
			if _, err := p.store.SettleAgreed(ctx); err != nil {
				p.log.WarnContext(ctx, "xds: settle what the replicas agree on", "err", err)
			}
			if _, err := p.store.PruneChanges(ctx, published); err != nil {
				p.log.WarnContext(ctx, "xds: prune the change feed", "err", err)
			}
			timer.Reset(every)
		case errors.Is(err, store.ErrLeaseLost) || !time.Now().Before(until):
			p.log.ErrorContext(ctx, "xds: the replica's lease expired: it stops serving xDS until it has the database again",
				"replica", p.replica, "err", err)
			lost()
			return
		default:
			if !p.leaseLapsed.Swap(true) {
				p.log.WarnContext(ctx, "xds: renew the replica's lease; retrying", "replica", p.replica, "err", err,
					"expires_in", time.Until(until).Round(time.Millisecond))
			}
			timer.Reset(min(every/4, time.Until(until)))
		}
	}
}

// prune keeps the change feed of a single process short (SQLite: no
// other replica reads it).
func (p *Publisher) prune(ctx context.Context) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		published := p.revision
		p.mu.Unlock()
		if _, err := p.store.PruneChanges(ctx, published); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "xds: prune the change feed", "err", err)
		}
	}
}

// syncFleets records the fleets this replica has clients of, when they
// changed; it reports false when the store failed.
func (p *Publisher) syncFleets(ctx context.Context) bool {
	if p.replica == "" {
		return true
	}
	var fleets []string
	for g := range p.tracker.Clients() {
		if !slices.Contains(fleets, g.Fleet) {
			fleets = append(fleets, g.Fleet)
		}
	}
	sort.Strings(fleets)
	if p.fleetsRecorded && slices.Equal(fleets, p.fleets) {
		return true
	}
	if err := p.store.SetReplicaFleets(ctx, p.replica, fleets); err != nil {
		p.log.WarnContext(ctx, "xds: record the fleets this replica serves; retrying with backoff", "err", err)
		return false
	}
	p.fleets, p.fleetsRecorded = fleets, true
	return true
}

// encodeResources serialises what a kind of data plane keeps running of a
// load balancer in ERROR (store.AcceptedConfig), in name order.
func encodeResources(m map[xds.Key]*anypb.Any) ([]byte, error) {
	keys := make([]xds.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].TypeURL != keys[j].TypeURL {
			return keys[i].TypeURL < keys[j].TypeURL
		}
		return keys[i].Name < keys[j].Name
	})
	msg := &discoveryv3.DeltaDiscoveryResponse{}
	for _, k := range keys {
		msg.Resources = append(msg.Resources, &discoveryv3.Resource{Name: k.Name, Resource: m[k]})
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

func decodeResources(b []byte) (map[xds.Key]*anypb.Any, error) {
	msg := &discoveryv3.DeltaDiscoveryResponse{}
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, err
	}
	out := map[xds.Key]*anypb.Any{}
	for _, r := range msg.GetResources() {
		out[xds.Key{TypeURL: r.GetResource().GetTypeUrl(), Name: r.GetName()}] = r.GetResource()
	}
	return out, nil
}

// kept is what one kind of data plane keeps running of a load balancer in
// ERROR instead of the configuration it refused.
type kept struct {
	fleet     string
	resources map[xds.Key]*anypb.Any
}

// loadKept reads the configurations kept for load balancers in ERROR, so
// that a restart publishes what the fleet last accepted, never what it
// refused.
func (p *Publisher) loadKept(ctx context.Context) error {
	rows, err := p.store.AcceptedConfigs(ctx)
	if err != nil {
		return err
	}
	for id, list := range rows {
		for _, r := range list {
			res, err := decodeResources(r.Config)
			if err != nil {
				p.log.WarnContext(ctx, "xds: a kept configuration does not decode; publishing the current one", "id", id, "err", err)
				continue
			}
			if p.kept[id] == nil {
				p.kept[id] = map[xds.Kind]kept{}
			}
			p.kept[id][xds.Kind(r.Kind)] = kept{fleet: r.Fleet, resources: res}
		}
	}
	return nil
}
