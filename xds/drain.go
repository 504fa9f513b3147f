package xds

import (
	"math"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// DrainTimeMetadataKey is the node metadata key under which an Envoy's
// bootstrap declares its drain time in seconds (lbaasd envoy-bootstrap
// writes it; the envoy package uses the same key).
const DrainTimeMetadataKey = "lbaas_drain_time_s"

// drainTimeOf is the drain time a node declares, or 0.
func drainTimeOf(n *corev3.Node) time.Duration {
	v := n.GetMetadata().GetFields()[DrainTimeMetadataKey].GetNumberValue()
	if v <= 0 || v > math.MaxInt32 || v != math.Trunc(v) {
		return 0
	}
	return time.Duration(v) * time.Second
}

// DrainTime is the longest drain time the connected Envoys of a fleet
// declare, or 0 when none does: how long the fleet may take to close the
// connections of a listener it rebuilds.
func (t *Tracker) DrainTime(fleet string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	for _, s := range t.streams {
		if s.group == (Group{Fleet: fleet, Kind: KindEnvoy}) {
			d = max(d, s.drainTime)
		}
	}
	return d
}
