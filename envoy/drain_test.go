package envoy

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
)

// The drain time is Envoy's --drain-time-s: RunArgs gives it and the
// bootstrap's node metadata records the same, in whole seconds.
func TestDrainTime(t *testing.T) {
	base := Options{NodeID: "n", Fleet: "default", XDSAddress: "127.0.0.1:18000"}
	for _, c := range []struct {
		drain time.Duration
		want  string
	}{{0, "600"}, {30 * time.Second, "30"}, {time.Hour, "3600"}} {
		o := base
		o.DrainTime = c.drain
		args, err := RunArgs(o, "/etc/envoy/bootstrap.json")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"-c", "/etc/envoy/bootstrap.json", "--drain-time-s", c.want}; !slices.Equal(args, want) {
			t.Errorf("%s: args %v, want %v", c.drain, args, want)
		}
		out, err := Bootstrap(o)
		if err != nil {
			t.Fatal(err)
		}
		var b bootstrapv3.Bootstrap
		if err := protojson.Unmarshal(out, &b); err != nil {
			t.Fatal(err)
		}
		got := b.GetNode().GetMetadata().GetFields()[DrainTimeMetadataKey].GetNumberValue()
		if strconv.FormatFloat(got, 'f', -1, 64) != c.want {
			t.Errorf("%s: node metadata says %v s", c.drain, got)
		}
	}
	for _, bad := range []time.Duration{-time.Second, 500 * time.Millisecond, 1500 * time.Millisecond} {
		o := base
		o.DrainTime = bad
		if _, err := RunArgs(o, "b.json"); err == nil {
			t.Errorf("%s accepted", bad)
		}
		if _, err := Bootstrap(o); err == nil {
			t.Errorf("bootstrap with %s accepted", bad)
		}
	}
}
