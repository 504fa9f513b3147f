package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
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
		vip, err := tx.allocateFrom(p, &VirtualIP{Account: account, Type: typ, IPVersion: version})
		if errors.Is(err, ErrOutOfVirtualIPs) {
			continue
		}
		return vip, err
	}
	if !found {
		return nil, ErrNoPool
	}
	return nil, ErrOutOfVirtualIPs
}

// allocateFrom walks the pool from its cursor to the first address not in
// use and inserts vip with it: one statement moves the cursor on, one
// inserts the address unless it is taken (the unique index on address
// decides, so concurrent writers never share one). An address whose
// transaction rolls back is skipped until the cursor comes round again.
func (tx *Tx) allocateFrom(p Pool, vip *VirtualIP) (*VirtualIP, error) {
	// On PostgreSQL the cursor is a sequence, which moves outside the
	// transaction: a row holding it would stay locked until the commit
	// and serialise every writer that allocates. (SQLite has one writer.)
	next := "UPDATE vip_pools SET cursor = cursor % ? + 1 WHERE name = ? RETURNING cursor"
	args := []any{p.size(), p.name()}
	if tx.store.dialect == "postgres" {
		next = "SELECT (nextval(?) - 1) % ? + 1"
		args = []any{p.sequence(), p.size()}
	}
	for range min(p.size(), maxScan) {
		var offset int64
		res := tx.db.Raw(next, args...).Scan(&offset)
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected != 1 {
			return nil, fmt.Errorf("store: pool %s has no cursor", p.name())
		}
		try := *vip
		try.Address = FormatAddress(p.address(offset))
		res = tx.db.Clauses(clause.OnConflict{DoNothing: true}).Create(&try)
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 1 {
			return &try, nil
		}
	}
	return nil, ErrOutOfVirtualIPs
}

// addPools makes sure every configured pool has its cursor: a row, and on
// PostgreSQL a sequence that starts where the row's cursor is.
func (s *Store) addPools(ctx context.Context) error {
	db := s.db.WithContext(ctx)
	for _, p := range s.pools {
		cur := vipPool{Name: p.name()}
		if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&cur).Error; err != nil {
			return err
		}
		if s.dialect != "postgres" {
			continue
		}
		if err := db.First(&cur, "name = ?", p.name()).Error; err != nil {
			return err
		}
		if err := db.Exec(fmt.Sprintf("CREATE SEQUENCE IF NOT EXISTS %s START WITH %d", p.sequence(), cur.Cursor+1)).Error; err != nil {
			return err
		}
	}
	return nil
}

// sequence names the pool's cursor sequence on PostgreSQL.
func (p Pool) sequence() string {
	h := fnv.New64a()
	h.Write([]byte(p.name()))
	return fmt.Sprintf("vip_cursor_%016x", h.Sum64())
}
