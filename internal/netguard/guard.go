// Package netguard decides which addresses the control plane may aim the
// data plane and the health prober at. Customers name their nodes; without
// a guard a node could be the control plane's own host (loopback, its
// interface addresses, a link-local metadata service) and the proxies or
// the prober would connect there on the customer's behalf.
//
// One Guard answers for the API (validation), the health prober (before
// every connection) and the publisher (before an address reaches a proxy):
//
//   - the configured denied networks (--denied-node-networks);
//   - by default also the host's own interface addresses, read at start
//     and refreshed;
//   - every IPv6 form that embeds a denied IPv4 address: IPv4-mapped,
//     IPv4-compatible, NAT64 (64:ff9b::/96 and the local-use
//     64:ff9b:1::/48), 6to4 (2002::/16) and Teredo (2001::/32, server and
//     client);
//   - names, resolved by the control plane (Resolve): a name is denied when
//     any of its addresses is, and "localhost" names always are.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go4.org/netipx"
)

// DefaultDenied is lbaasd's default --denied-node-networks: "this"
// network, loopback, link-local (cloud metadata services), IPv6 loopback,
// link-local and the deprecated site-local fec0::/10. IPv6 forms embedding
// a denied IPv4 address are denied with it.
const DefaultDenied = "0.0.0.0/8,127.0.0.0/8,169.254.0.0/16,::1/128,fe80::/10,fec0::/10"

// Options configure a Guard.
type Options struct {
	// HostAddresses also denies the addresses of this machine's network
	// interfaces (read by New, refreshed by Run).
	HostAddresses bool
	// Interfaces lists the host's addresses; default net.InterfaceAddrs.
	Interfaces func() ([]netip.Addr, error)
	Logger     *slog.Logger
}

// Guard says whether an address may be a node's. A nil *Guard allows
// every address (the guard is off).
type Guard struct {
	networks   *netipx.IPSet // the configured denied networks
	denied     []netip.Prefix
	host       atomic.Pointer[netipx.IPSet]
	hostOn     bool
	interfaces func() ([]netip.Addr, error)
	log        *slog.Logger
}

// New returns a guard denying the networks (and, with opts.HostAddresses,
// the host's own addresses). It returns nil, a guard that allows
// everything, when there is nothing to deny.
func New(denied []netip.Prefix, opts Options) (*Guard, error) {
	if len(denied) == 0 && !opts.HostAddresses {
		return nil, nil
	}
	denied = slices.Clone(denied)
	var b netipx.IPSetBuilder
	for i, p := range denied {
		denied[i] = p.Masked()
		b.AddPrefix(denied[i])
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, err
	}
	g := &Guard{networks: set, denied: denied, hostOn: opts.HostAddresses, interfaces: opts.Interfaces, log: opts.Logger}
	if g.interfaces == nil {
		g.interfaces = interfaceAddrs
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.hostOn {
		if err := g.Refresh(); err != nil {
			return nil, fmt.Errorf("read the host's addresses: %w", err)
		}
	}
	return g, nil
}

// Refresh rereads the host's interface addresses.
func (g *Guard) Refresh() error {
	if g == nil || !g.hostOn {
		return nil
	}
	addrs, err := g.interfaces()
	if err != nil {
		return err
	}
	var b netipx.IPSetBuilder
	for _, a := range addrs {
		b.Add(a.WithZone("").Unmap())
	}
	set, err := b.IPSet()
	if err != nil {
		return err
	}
	g.host.Store(set)
	return nil
}

// Run refreshes the host's addresses every interval until ctx ends
// (addresses come and go: DHCP, a new VIP, a container's interface).
func (g *Guard) Run(ctx context.Context, every time.Duration) {
	if g == nil || !g.hostOn {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.Refresh(); err != nil {
				g.log.WarnContext(ctx, "netguard: reread the host's addresses (keeping the last ones)", "err", err)
			}
		}
	}
}

func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		} else if ip, err := netip.ParseAddr(a.String()); err == nil {
			out = append(out, ip)
		}
	}
	return out, nil
}

// DeniedError says why an address may not be a node's. Its text names the
// address and the configured network, never the host's addresses as such.
type DeniedError struct {
	Addr netip.Addr
	// Via is the IPv4 address embedded in Addr that is denied, if it is
	// not Addr itself.
	Via netip.Addr
	// Network is the configured denied network containing it, or invalid
	// when it is one of the host's own addresses.
	Network netip.Prefix
}

func (e *DeniedError) Error() string { return e.what() + " " + e.reason() }

func (e *DeniedError) what() string {
	if e.Via.IsValid() {
		return e.Addr.String() + " (embedding " + e.Via.String() + ")"
	}
	return e.Addr.String()
}

func (e *DeniedError) reason() string {
	if e.Network.IsValid() {
		return fmt.Sprintf("is in %s, where nodes are not allowed", e.Network)
	}
	return "is an address of the service's own hosts, where nodes are not allowed"
}

// Check returns a *DeniedError when ip may not be a node's address, else
// nil.
func (g *Guard) Check(ip netip.Addr) error {
	if g == nil {
		return nil
	}
	ip = ip.WithZone("").Unmap()
	if err := g.checkOne(ip, netip.Addr{}); err != nil {
		return err
	}
	for _, v4 := range Embedded(ip) {
		if err := g.checkOne(ip, v4); err != nil {
			return err
		}
	}
	return nil
}

func (g *Guard) checkOne(ip, via netip.Addr) error {
	probe := ip
	if via.IsValid() {
		probe = via
	}
	if g.networks.Contains(probe) {
		return &DeniedError{Addr: ip, Via: via, Network: g.network(probe)}
	}
	if host := g.host.Load(); host != nil && host.Contains(probe) {
		return &DeniedError{Addr: ip, Via: via}
	}
	return nil
}

// network is the configured network containing ip (the smallest, when
// they nest).
func (g *Guard) network(ip netip.Addr) netip.Prefix {
	var best netip.Prefix
	for _, p := range g.denied {
		if p.Contains(ip) && (!best.IsValid() || p.Bits() > best.Bits()) {
			best = p
		}
	}
	return best
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
	compatible = netip.MustParsePrefix("::/96")
)

// Embedded returns the IPv4 addresses an IPv6 address carries in one of
// the forms that reach them: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
// (::a.b.c.d), NAT64 (64:ff9b::/96; every RFC 6052 placement within the
// local-use 64:ff9b:1::/48), 6to4 (2002:aabb:ccdd::/48) and Teredo (the
// server, and the client's obfuscated address).
func Embedded(ip netip.Addr) []netip.Addr {
	if !ip.Is6() {
		return nil
	}
	b := ip.As16()
	v4 := func(i0, i1, i2, i3 int) netip.Addr {
		return netip.AddrFrom4([4]byte{b[i0], b[i1], b[i2], b[i3]})
	}
	var out []netip.Addr
	switch {
	case ip.Is4In6():
		out = append(out, ip.Unmap())
	case compatible.Contains(ip):
		// ::a.b.c.d (deprecated, still routed by some stacks); :: and ::1
		// are themselves (0.0.0.0/8 in the embedded view).
		out = append(out, v4(12, 13, 14, 15))
	case nat64.Contains(ip):
		out = append(out, v4(12, 13, 14, 15))
	case nat64Local.Contains(ip):
		// RFC 6052 section 2.2: the /48, /56, /64 and /96 placements (bits
		// 64-71 are the reserved "u" octet).
		out = append(out, v4(6, 7, 9, 10), v4(7, 9, 10, 11), v4(9, 10, 11, 12), v4(12, 13, 14, 15))
	case sixToFour.Contains(ip):
		out = append(out, v4(2, 3, 4, 5))
	case teredo.Contains(ip):
		client := netip.AddrFrom4([4]byte{b[12] ^ 0xff, b[13] ^ 0xff, b[14] ^ 0xff, b[15] ^ 0xff})
		out = append(out, v4(4, 5, 6, 7), client)
	}
	return out
}

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrNotResolved is a name that has no address (or whose lookup failed).
// Its text never carries resolver details such as the DNS server.
var ErrNotResolved = errors.New("name did not resolve")

// NameError is a name with a denied address.
type NameError struct {
	Name string
	Err  *DeniedError
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%s resolves to %s, which %s", e.Name, e.Err.what(), e.Err.reason())
}

func (e *NameError) Unwrap() error { return e.Err }

// IsLocalhost reports whether name is "localhost" or under it: RFC 6761
// names that always mean the machine itself, whatever DNS says.
func IsLocalhost(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

// Resolve returns a node name's addresses when every one is allowed. It
// fails with ErrNotResolved when the name has none (r nil resolves
// nothing), with a *NameError when any address is denied: a name that
// answers with one allowed and one denied address is refused whole, so
// that no later answer (or a proxy's own resolver) can pick the denied one.
// IP addresses are checked as they are.
func (g *Guard) Resolve(ctx context.Context, r Resolver, name string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(name); err == nil {
		if err := g.Check(ip); err != nil {
			return nil, err
		}
		return []netip.Addr{ip.WithZone("").Unmap()}, nil
	}
	if IsLocalhost(name) && g != nil {
		return nil, &NameError{Name: name, Err: &DeniedError{Addr: netip.MustParseAddr("127.0.0.1"), Network: netip.MustParsePrefix("127.0.0.0/8")}}
	}
	if r == nil {
		return nil, ErrNotResolved
	}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		// *net.DNSError names the DNS server: say only that it failed.
		return nil, ErrNotResolved
	}
	out := make([]netip.Addr, 0, len(addrs))
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		a = a.WithZone("").Unmap()
		if err := g.Check(a); err != nil {
			var d *DeniedError
			errors.As(err, &d)
			return nil, &NameError{Name: name, Err: d}
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}
