package store

import (
	"testing"
)

// A create's usage event counts the addresses it linked (without asking
// the database); later changes, and a create that also attaches an
// address, count them in the database.
func TestUsageEventsCountAddresses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func([]Pool) *Store) {
		s := open([]Pool{pool("PUBLIC", "10.0.0.0/24"), pool("SERVICENET", "10.1.0.0/24")})
		events := func(id uint32) []UsageEvent {
			t.Helper()
			var out []UsageEvent
			if err := s.db.Where("load_balancer_id = ?", id).Order("id").Find(&out).Error; err != nil {
				t.Fatal(err)
			}
			return out
		}
		check := func(e UsageEvent, typ string, public, servicenet int32) {
			t.Helper()
			if e.Type != typ || e.PublicVIPs != public || e.ServicenetVIPs != servicenet {
				t.Errorf("event %s with %d public and %d servicenet addresses, want %s with %d and %d",
					e.Type, e.PublicVIPs, e.ServicenetVIPs, typ, public, servicenet)
			}
		}

		lb := newLB("acc", "two")
		var shared *VirtualIP
		mustUpdate(t, s, func(tx *Tx) error {
			pub, err := tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4")
			if err != nil {
				return err
			}
			svc, err := tx.AllocateVirtualIP("acc", "SERVICENET", "IPV4")
			if err != nil {
				return err
			}
			shared = svc
			lb.VirtualIPs = []VirtualIP{*pub, *svc}
			return tx.CreateLoadBalancer(lb)
		})
		if got := events(lb.ID); len(got) != 1 {
			t.Fatalf("events %+v", got)
		} else {
			check(got[0], EventCreateLoadBalancer, 1, 1)
		}
		mustUpdate(t, s, func(tx *Tx) error {
			if err := tx.DetachVirtualIPs(lb, []uint32{shared.ID}); err != nil {
				return err
			}
			return tx.SaveLoadBalancer(lb)
		})
		if got := events(lb.ID); len(got) != 2 {
			t.Fatalf("events %+v", got)
		} else {
			check(got[1], EventDeleteVirtualIP, 1, 0)
		}

		// Created and given a shared address in one transaction.
		both := newLB("acc", "both")
		mustUpdate(t, s, func(tx *Tx) error {
			pub, err := tx.AllocateVirtualIP("acc", "PUBLIC", "IPV4")
			if err != nil {
				return err
			}
			both.VirtualIPs = []VirtualIP{*pub}
			if err := tx.CreateLoadBalancer(both); err != nil {
				return err
			}
			return tx.AttachVirtualIP(both, shared)
		})
		if got := events(both.ID); len(got) != 1 {
			t.Fatalf("events %+v", got)
		} else {
			check(got[0], EventCreateLoadBalancer, 1, 1)
		}
	})
}
