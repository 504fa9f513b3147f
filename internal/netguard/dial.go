package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
)

// Dialer connects only to allowed addresses: it resolves a name itself
// (with Resolver), checks every address with Guard, and dials the allowed
// IPs in turn. Nothing else resolves the name, so no second lookup can
// answer differently (DNS rebinding). The zero Dialer resolves no names and
// allows every IP address.
type Dialer struct {
	Guard    *Guard
	Resolver Resolver
}

// DialContext is net.Dialer.DialContext through the guard. A refused
// address gives a *NameError or *DeniedError, a name without addresses
// ErrNotResolved; neither is a network error.
func (d Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ips, err := d.Guard.Resolve(ctx, d.Resolver, host)
	if err != nil {
		return nil, err
	}
	var nd net.Dialer
	var errs []error
	for _, ip := range ips {
		conn, err := nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// Target joins an address and a port the way DialContext takes them.
func Target(address string, port uint32) string {
	if ip, err := netip.ParseAddr(address); err == nil {
		address = ip.String()
	}
	return net.JoinHostPort(address, strconv.FormatUint(uint64(port), 10))
}
