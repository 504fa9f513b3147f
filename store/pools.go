package store

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"gorm.io/gorm/clause"
)

// Pool is a range of addresses virtual IPs of one type are allocated from.
type Pool struct {
	// Type is PUBLIC or SERVICENET.
	Type   string
	Prefix netip.Prefix
}

// Version is IPV4 or IPV6.
func (p Pool) Version() string {
	if p.Prefix.Addr().Is4() {
		return "IPV4"
	}
	return "IPV6"
}

func (p Pool) name() string { return p.Type + "/" + p.Prefix.String() }

// maxScan bounds the search for a free address in a huge (IPv6) pool.
const maxScan = 1 << 20

// size is the number of usable offsets, 1..size. IPv4 pools skip the
// network and broadcast addresses.
func (p Pool) size() int64 {
	hostBits := p.Prefix.Addr().BitLen() - p.Prefix.Bits()
	if hostBits >= 62 {
		return 1 << 62
	}
	n := int64(1) << hostBits
	if p.Prefix.Addr().Is4() {
		return max(n-2, 0)
	}
	return n - 1
}

func (p Pool) address(offset int64) netip.Addr {
	base := new(big.Int).SetBytes(p.Prefix.Masked().Addr().AsSlice())
	base.Add(base, big.NewInt(offset))
	buf := make([]byte, p.Prefix.Addr().BitLen()/8)
	base.FillBytes(buf)
	addr, _ := netip.AddrFromSlice(buf)
	return addr
}

// FormatAddress renders an address the way the API shows it: IPv6 in full
// form (fd24:f480:ce44:91bc:1af2:15ff:0000:0005), as Rackspace does.
func FormatAddress(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return a.StringExpanded()
	}
	return a.String()
}

// ParsePools parses "TYPE=PREFIX,TYPE=PREFIX" (e.g. "PUBLIC=127.1.0.0/16").
func ParsePools(spec string) ([]Pool, error) {
	var pools []Pool
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		typ, cidr, ok := strings.Cut(item, "=")
		typ = strings.ToUpper(strings.TrimSpace(typ))
		if !ok || (typ != "PUBLIC" && typ != "SERVICENET") {
			return nil, fmt.Errorf("pool %q: want PUBLIC=<cidr> or SERVICENET=<cidr>", item)
		}
		prefix, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", item, err)
		}
		p := Pool{Type: typ, Prefix: prefix.Masked()}
		if p.size() < 1 {
			return nil, fmt.Errorf("pool %q has no usable addresses", item)
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// AllocateVirtualIP takes a free address of the given type and version
// (IPV4 or IPV6) from the configured pools for the account.
func (tx *Tx) AllocateVirtualIP(account, typ, version string) (*VirtualIP, error) {
	found := false
	for _, p := range tx.store.pools {
		if p.Type != typ || p.Version() != version {
			continue
		}
		found = true
		addr, err := tx.allocateFrom(p)
		if errors.Is(err, ErrOutOfVirtualIPs) {
			continue
		}
		if err != nil {
			return nil, err
		}
		vip := &VirtualIP{Account: account, Address: FormatAddress(addr), Type: typ, IPVersion: version}
		if err := tx.db.Create(vip).Error; err != nil {
			return nil, err
		}
		return vip, nil
	}
	if !found {
		return nil, ErrNoPool
	}
	return nil, ErrOutOfVirtualIPs
}

// allocateFrom walks the pool from its cursor to the first address not in
// use. Writers are serialised (see Update), so the address stays free
// until the transaction commits; the unique index on address backs this up.
func (tx *Tx) allocateFrom(p Pool) (netip.Addr, error) {
	cur := vipPool{Name: p.name()}
	if err := tx.db.Clauses(clause.OnConflict{DoNothing: true}).Create(&cur).Error; err != nil {
		return netip.Addr{}, err
	}
	if err := tx.db.First(&cur, "name = ?", p.name()).Error; err != nil {
		return netip.Addr{}, err
	}
	size := p.size()
	for i := int64(0); i < min(size, maxScan); i++ {
		offset := (cur.Cursor+i)%size + 1
		addr := p.address(offset)
		var n int64
		if err := tx.db.Model(&VirtualIP{}).Where("address = ?", FormatAddress(addr)).Count(&n).Error; err != nil {
			return netip.Addr{}, err
		}
		if n == 0 {
			next := offset % size
			err := tx.db.Model(&vipPool{}).Where("name = ?", p.name()).Update("cursor", next).Error
			return addr, err
		}
	}
	return netip.Addr{}, ErrOutOfVirtualIPs
}
