package envoy

import (
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/openlbaas/lbaas/xds"
)

// DefaultDrainTime is Envoy's own default drain time (--drain-time-s 600).
const DefaultDrainTime = 600 * time.Second

// DrainTimeMetadataKey is the node metadata key under which the bootstrap
// records the drain time the Envoy is started with (seconds); the xDS
// server reads it (Tracker.DrainTime).
const DrainTimeMetadataKey = xds.DrainTimeMetadataKey

// When Envoy rebuilds a listener it drains the connections of the old one
// (listener_manager_impl.cc, drainListener / drainFilterChains): HTTP
// connections are asked to close between requests, with a probability
// that grows over the drain time (--drain-strategy gradual, the default),
// and whatever is still open when it is over is closed. The drain time is
// a command-line option of Envoy, not a field of its bootstrap, so the
// bootstrap records it in the node metadata and RunArgs gives the command
// line that matches. The control plane rebuilds a listener only for what
// the listener is made of (see translator/ecds.go).

// drainSeconds is the drain time in whole seconds (Envoy's unit).
func (o Options) drainSeconds() (int64, error) {
	d := o.DrainTime
	if d == 0 {
		d = DefaultDrainTime
	}
	if d < time.Second || d%time.Second != 0 {
		return 0, fmt.Errorf("envoy: DrainTime %s is not a whole number of seconds (at least 1 s)", d)
	}
	return int64(d / time.Second), nil
}

// nodeMetadata is what the bootstrap tells about the node: its drain time.
func (o Options) nodeMetadata() (*structpb.Struct, error) {
	s, err := o.drainSeconds()
	if err != nil {
		return nil, err
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{DrainTimeMetadataKey: structpb.NewNumberValue(float64(s))}}, nil
}

// RunArgs are the arguments to start Envoy with the bootstrap at path:
// the bootstrap and the drain time (--drain-time-s).
func RunArgs(o Options, path string) ([]string, error) {
	s, err := o.drainSeconds()
	if err != nil {
		return nil, err
	}
	return []string{"-c", path, "--drain-time-s", strconv.FormatInt(s, 10)}, nil
}
