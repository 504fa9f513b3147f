package store

import (
	"context"
	"reflect"
	"testing"
)

// The node names of live load balancers, and a change recorded for the
// load balancers whose names resolve differently, without touching their
// status.
func TestNodeNamesAndTouch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open(nil)
		ctx := context.Background()
		a := newLB("1", "a", newNode("www.example.com", 80), newNode("10.0.0.1", 80), newNode("fd00:0000:0000:0000:0000:0000:0000:0001", 80))
		b := newLB("1", "b", newNode("www.example.com", 8080), newNode("api.example.org", 80))
		gone := newLB("2", "gone", newNode("old.example.net", 80))
		createLB(t, s, a)
		createLB(t, s, b)
		createLB(t, s, gone)
		setStatus(t, s, a, StatusActive)
		setStatus(t, s, gone, StatusDeleted)

		names, err := s.NodeNames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]uint32{"www.example.com": {a.ID, b.ID}, "api.example.org": {b.ID}}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("NodeNames = %v, want %v", names, want)
		}

		rev, err := s.TouchLoadBalancers(ctx, []uint32{a.ID, gone.ID})
		if err != nil || rev == 0 {
			t.Fatalf("TouchLoadBalancers = %d, %v", rev, err)
		}
		checkChanges(t, s, rev, []Change{{Revision: rev, LoadBalancerID: a.ID, Fleet: "default"}})
		got, err := s.LoadBalancerByID(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != StatusActive || got.Revision != rev {
			t.Errorf("touched load balancer: status %s revision %d, want ACTIVE %d", got.Status, got.Revision, rev)
		}
		if rev, err := s.TouchLoadBalancers(ctx, []uint32{gone.ID}); rev != 0 || err != nil {
			t.Errorf("touching only a deleted load balancer = %d, %v; want nothing", rev, err)
		}
	})
}
