package xds

import (
	"bytes"
	"fmt"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The codec writes, for a shared state, exactly the bytes proto.Marshal
// writes, and falls back to it for everything else.
func TestCodecWritesWhatProtoWrites(t *testing.T) {
	c := NewCache("default", 0)
	g := Group{"default", KindEnvoy}
	u := &Update{Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {}}}
	for i := range 50 {
		name := fmt.Sprintf("lb_%d", i)
		a, err := Marshal(&clusterv3.Cluster{Name: name, AltStatName: fmt.Sprint("é", i)})
		if err != nil {
			t.Fatal(err)
		}
		u.Upsert[resource.ClusterType][name] = a
	}
	if err := c.Apply(1, map[Group]*Update{g: u}); err != nil {
		t.Fatal(err)
	}
	world := c.groups[g][resource.ClusterType].world()
	cd := codec{base: encoding.GetCodecV2(protoenc.Name), shared: c.shared}
	check := func(what string, m proto.Message, shared bool) {
		t.Helper()
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cd.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want) {
			t.Fatalf("%s: the codec's bytes differ from proto's", what)
		}
		if shared != (len(got) == 3) {
			t.Fatalf("%s: shared encoding used: %v, want %v", what, len(got) == 3, shared)
		}
	}
	check("state of the world", &discoveryv3.DiscoveryResponse{VersionInfo: "r0.1", Resources: world.res,
		TypeUrl: resource.ClusterType, Nonce: "17"}, true)
	check("state of the world, twice", &discoveryv3.DiscoveryResponse{VersionInfo: "r0.1", Resources: world.res,
		TypeUrl: resource.ClusterType, Nonce: "18"}, true)
	check("delta", &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: "r0.1", Resources: world.delta,
		TypeUrl: resource.ClusterType, Nonce: "3", RemovedResources: []string{"lb_99", "lb_100"}}, true)
	check("a subset", &discoveryv3.DiscoveryResponse{VersionInfo: "r0.1", Resources: world.res[1:],
		TypeUrl: resource.ClusterType, Nonce: "19"}, false)
	check("canary", &discoveryv3.DiscoveryResponse{VersionInfo: "r0.1", Resources: world.res, Canary: true,
		TypeUrl: resource.ClusterType, Nonce: "20"}, false)
	check("a request", &discoveryv3.DiscoveryRequest{VersionInfo: "x", ResourceNames: []string{"a"}}, false)
	// A replaced state is no longer shared.
	a, _ := Marshal(&clusterv3.Cluster{Name: "lb_0", AltStatName: "new"})
	if err := c.Apply(2, map[Group]*Update{g: {Upsert: map[string]map[string]*anypb.Any{resource.ClusterType: {"lb_0": a}}}}); err != nil {
		t.Fatal(err)
	}
	c.groups[g][resource.ClusterType].world()
	check("a replaced state", &discoveryv3.DiscoveryResponse{VersionInfo: "r0.1", Resources: world.res,
		TypeUrl: resource.ClusterType, Nonce: "21"}, false)
}
