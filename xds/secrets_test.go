package xds

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

type fleetKey struct{}

// A stream gets its group's secrets only when ServeSecrets says its peer
// is entitled; without ServeSecrets, and for a watch bound to no stream,
// a secret watch is refused (the stream ends) and nothing is sent.
func TestSecretsOnlyToEntitledStreams(t *testing.T) {
	c := NewCache("default", 0)
	sec, err := Marshal(&tlsv3.Secret{Name: "lb_1_tls"})
	if err != nil {
		t.Fatal(err)
	}
	fleetA := Group{"a", KindEnvoy}
	if err := c.Apply(1, map[Group]*Update{fleetA: {Upsert: map[string]map[string]*anypb.Any{resource.SecretType: {"lb_1_tls": sec}}}}); err != nil {
		t.Fatal(err)
	}
	var id int64
	watch := func(peerFleet, claimed string, bind bool) (cache.Response, error) {
		id++
		c.open(context.WithValue(context.Background(), fleetKey{}, peerFleet), id)
		req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "e", Cluster: claimed}, TypeUrl: resource.SecretType, ResourceNames: []string{"lb_1_tls"}}
		if bind {
			c.bindRequest(id, req)
		}
		ch := make(chan cache.Response, 1)
		if _, err := c.CreateWatch(req, names2sub("lb_1_tls"), ch); err != nil {
			return nil, err
		}
		select {
		case r := <-ch:
			return r, nil
		default:
			return nil, nil
		}
	}
	refused := func(what string, r cache.Response, err error) {
		t.Helper()
		if status.Code(err) != codes.PermissionDenied || r != nil {
			t.Errorf("%s: got %v, %v; want PermissionDenied and nothing", what, r, err)
		}
	}
	r, err := watch("a", "a", true)
	refused("no ServeSecrets", r, err)

	c.ServeSecrets(func(ctx context.Context, g Group) bool { return ctx.Value(fleetKey{}) == g.Fleet })
	r, err = watch("a", "a", true)
	if err != nil || r == nil || len(r.(*sotwResponse).st.names) != 1 {
		t.Fatalf("fleet a's entitled stream: %v, %v", r, err)
	}
	r, err = watch("b", "a", true)
	refused("a peer of fleet b claiming fleet a", r, err)
	r, err = watch("a", "a", false)
	refused("a watch bound to no stream", r, err)
	// Fleet b's own group holds no secret of fleet a: nothing to send.
	r, err = watch("b", "b", true)
	if err != nil || (r != nil && len(r.(*sotwResponse).st.names) > 0) {
		t.Errorf("fleet b's stream: %v, %v; want no secret", r, err)
	}
}

// A refusal naming a secret is pinned on its load balancer, like one
// naming any other resource of it; secrets count as "sds".
func TestSecretNamesAttributeToTheirLoadBalancer(t *testing.T) {
	for name, want := range map[string]uint32{"lb_43_tls": 43, "lb_43_tls_7": 43, "lb_9_secure": 9} {
		if id, ok := lbOf(name); !ok || id != want {
			t.Errorf("lbOf(%q) = %d, %v; want %d", name, id, ok, want)
		}
	}
	if got := shortType(resource.SecretType); got != "sds" {
		t.Errorf("shortType(secret) = %q", got)
	}
}
