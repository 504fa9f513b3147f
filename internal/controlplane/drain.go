package controlplane

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/openlbaas/lbaas/envoy"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// Most edits reach Envoy without rebuilding a listener (translator/ecds.go),
// so the connections open on it carry on. A change of what the listener is
// made of (its addresses, its protocol, anything of a UDP load balancer)
// makes Envoy drain the old one: HTTP connections close between requests,
// the others when the drain time is over. The load balancer's status
// description says so once the change is applied.

// noteDraining records that a load balancer's change rebuilds its Envoy
// listener. A change staged over one that drains and is not applied yet
// drains too (the proxies may have taken the first). Callers hold p.mu.
func (p *Publisher) noteDraining(lb *store.LoadBalancer, prev, next *resources) {
	_, pending := p.draining[lb.ID]
	if pending || listenerDrains(prev, next, translator.ResourceName(lb.ID)) {
		fleet := lb.Fleet
		if prev != nil {
			fleet = prev.fleet // whose proxies drain
		}
		p.draining[lb.ID] = drainingChange{revision: lb.Revision, fleet: fleet}
	}
}

// drainingChange is a change that rebuilds a listener, and the fleet whose
// proxies drain it.
type drainingChange struct {
	revision int64
	fleet    string
}

// listenerDrains tells whether going from prev to next makes the Envoys
// drain the connections of the load balancer's listener (name).
func listenerDrains(prev, next *resources, name string) bool {
	key := xds.Key{TypeURL: resource.ListenerType, Name: name}
	if prev == nil || next == nil {
		return false
	}
	before, after := prev.byKind[xds.KindEnvoy][key], next.byKind[xds.KindEnvoy][key]
	switch {
	case before == nil:
		return false // a new listener has no connections
	case prev.fleet != next.fleet || after == nil:
		return true // the old fleet's proxies remove the listener
	case xds.EqualAny(before, after):
		return false
	}
	var b, a listenerv3.Listener
	if before.UnmarshalTo(&b) != nil || after.UnmarshalTo(&a) != nil {
		return true // our own bytes; cannot happen
	}
	return translator.Drains(&b, &a)
}

// drainNotice is the status description of a load balancer whose change
// at revision is applied: what the proxies do with the connections opened
// before it when the change rebuilt the listener, else nothing. The drain
// time is the longest the fleet's connected Envoys declare in their
// bootstrap, else --envoy-drain-time.
func (p *Publisher) drainNotice(lb uint32, revision int64) string {
	p.mu.Lock()
	c, ok := p.draining[lb]
	if ok && c.revision == revision {
		delete(p.draining, lb)
	}
	p.mu.Unlock()
	if !ok || c.revision != revision {
		return ""
	}
	d := p.tracker.DrainTime(c.fleet)
	if d <= 0 {
		d = p.drainTime
	}
	if d <= 0 {
		d = envoy.DefaultDrainTime
	}
	return fmt.Sprintf("Applied. The change rebuilt the load balancer's listener on the proxies: they drain the connections "+
		"opened before it (HTTP connections close between requests) and close those still open %d s after the change.",
		int64(d.Seconds()))
}
