package nodedns

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/dnstest"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func setup(t *testing.T, records map[string][]string) (*Cache, *dnstest.Server, *store.Store) {
	t.Helper()
	dns := dnstest.Start(t, records)
	guard, err := netguard.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, netguard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "lbaas.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := New(Options{Guard: guard, Resolver: dns.Resolver(), Logger: slog.New(slog.DiscardHandler)})
	return c, dns, st
}

func createLB(t *testing.T, st *store.Store, address string) *store.LoadBalancer {
	t.Helper()
	lb := &store.LoadBalancer{Account: "1", Name: "x", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM", Status: store.StatusActive,
		Timeout: 30, Fleet: "default", Nodes: []store.Node{{Address: address, Port: 80, Condition: "ENABLED", Type: "PRIMARY", Weight: 1, Status: "ONLINE"}}}
	if _, err := st.Update(context.Background(), func(tx *store.Tx) error { return tx.CreateLoadBalancer(lb) }); err != nil {
		t.Fatal(err)
	}
	return lb
}

func changedSince(t *testing.T, st *store.Store, rev int64) []uint32 {
	t.Helper()
	changes, err := st.ChangesSince(context.Background(), rev)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, c := range changes {
		ids = append(ids, c.LoadBalancerID)
	}
	return ids
}

func TestLookupAddresses(t *testing.T) {
	c, _, _ := setup(t, map[string][]string{"ok.test": {"10.1.1.1", "2001:db8::1"}, "loop.test": {"127.0.0.1"}})
	if got := c.Lookup(1, "10.0.0.1"); !slices.Equal(got, addrs("10.0.0.1")) {
		t.Errorf("an IP node: %v", got)
	}
	if got := c.Lookup(1, "127.0.0.1"); got != nil {
		t.Errorf("a denied IP node is published: %v", got)
	}
	ctx := context.Background()
	if got, err := c.Resolve(ctx, "ok.test"); err != nil || !slices.Equal(got, addrs("10.1.1.1", "2001:db8::1")) {
		t.Errorf("Resolve(ok.test) = %v, %v", got, err)
	}
	// What the API resolved is there for the publication that follows.
	if got := c.Lookup(1, "ok.test"); !slices.Equal(got, addrs("10.1.1.1", "2001:db8::1")) {
		t.Errorf("Lookup(ok.test) = %v", got)
	}
	if _, err := c.Resolve(ctx, "loop.test"); err == nil {
		t.Error("Resolve(loop.test) allowed")
	}
	if got := c.Lookup(1, "loop.test"); got != nil {
		t.Errorf("a name resolving to a denied address is published: %v", got)
	}
}

// A name the publisher meets first has no addresses yet; Run resolves it
// at once and records a change of the load balancer, which republishes it.
func TestRunResolvesWaitingNames(t *testing.T) {
	c, _, st := setup(t, map[string][]string{"web.test": {"10.1.1.1"}})
	lb := createLB(t, st, "web.test")
	rev, err := st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lookup(lb.ID, "web.test"); got != nil {
		t.Fatalf("resolved before Run: %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, st); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(changedSince(t, st, rev), lb.ID) {
		if time.Now().After(deadline) {
			t.Fatal("no change recorded for the load balancer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.Lookup(lb.ID, "web.test"); !slices.Equal(got, addrs("10.1.1.1")) {
		t.Errorf("after Run: %v", got)
	}
}

// Every refresh resolves the names in use again: a changed answer records
// a change of the load balancers using the name, an unchanged one none; a
// name that now points at a denied address loses its addresses.
func TestSweep(t *testing.T) {
	c, dns, st := setup(t, map[string][]string{"web.test": {"10.1.1.1"}, "other.test": {"10.2.2.2"}})
	ctx := context.Background()
	web := createLB(t, st, "web.test")
	other := createLB(t, st, "other.test")
	if ids := c.sweep(ctx, st); !slices.Equal(sorted(ids), sorted([]uint32{web.ID, other.ID})) {
		t.Errorf("first sweep: %v", ids)
	}
	if ids := c.sweep(ctx, st); len(ids) != 0 {
		t.Errorf("nothing changed, yet %v", ids)
	}
	dns.Set("web.test", "10.1.1.1", "10.1.1.3")
	if ids := c.sweep(ctx, st); !slices.Equal(ids, []uint32{web.ID}) {
		t.Errorf("web.test changed: %v", ids)
	}
	if got := c.Lookup(web.ID, "web.test"); !slices.Equal(got, addrs("10.1.1.1", "10.1.1.3")) {
		t.Errorf("web.test: %v", got)
	}
	rev, _ := st.Revision(ctx)
	dns.Set("web.test", "127.0.0.1")
	c.touch(ctx, st, c.sweep(ctx, st))
	if got := c.Lookup(web.ID, "web.test"); got != nil {
		t.Errorf("web.test now resolves to a denied address, yet %v", got)
	}
	if got := changedSince(t, st, rev); !slices.Equal(got, []uint32{web.ID}) {
		t.Errorf("changes recorded: %v", got)
	}
}

func sorted(ids []uint32) []uint32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func TestRefreshBounds(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{0: DefaultRefresh, time.Second: MinRefresh, time.Hour: MaxRefresh, time.Minute: time.Minute} {
		if got := New(Options{Refresh: in}).Refresh(); got != want {
			t.Errorf("Refresh %v: %v, want %v", in, got, want)
		}
	}
}
