package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

const (
	defaultTimeout = 30
	maxTimeout     = 120
	maxNameLength  = 128
	maxMetaLength  = 256
	defaultWeight  = 1
	maxWeight      = 100
)

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func validName(v *validation, field, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		v.add(field, "must be valid UTF-8")
	case strings.TrimSpace(name) == "":
		v.add(field, "must not be empty")
	case n > maxNameLength:
		v.add(field, "must be at most %d characters long (got %d)", maxNameLength, n)
	}
}

func validPort(v *validation, field string, port uint32) {
	if port < 1 || port > 65535 {
		v.add(field, "must be a port number from 1 to 65535 (got %d)", port)
	}
}

// hostnameRE is an RFC 1123 host name.
var hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?$`)

// validNodeAddress accepts an IP address or a domain name, and returns it
// in canonical form.
func validNodeAddress(v *validation, field, address string) string {
	if address == "" {
		v.add(field, "is required")
		return address
	}
	if ip, err := netip.ParseAddr(address); err == nil {
		if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
			v.add(field, "%q is not a usable node address", address)
		}
		return store.FormatAddress(ip)
	}
	if looksNumeric(address) {
		// 0x7f000001, 0177.0.0.1, 127.1, 2130706433: C resolvers and
		// browsers read these as IPv4 addresses; we do not guess.
		v.add(field, "%q is not a valid IP address: write an IPv4 address as four decimal numbers from 0 to 255 without leading zeros (e.g. 10.1.1.1)", address)
		return address
	}
	if len(address) > 253 || !hostnameRE.MatchString(address) {
		v.add(field, "%q is not a valid IP address or domain name", address)
	}
	return strings.ToLower(address)
}

// numericLabelRE is a label inet_aton (and the URL standard) reads as a
// number: decimal, octal with a leading 0, or hexadecimal with 0x.
var numericLabelRE = regexp.MustCompile(`^(0[xX][0-9a-fA-F]*|[0-9]+)$`)

// looksNumeric reports whether a name that is not an IP address would be
// read as one by some resolver: its last label is numeric (no top-level
// domain is).
func looksNumeric(address string) bool {
	labels := strings.Split(strings.TrimSuffix(address, "."), ".")
	return numericLabelRE.MatchString(labels[len(labels)-1])
}

// nodeLookupTimeout bounds the resolution of a node name at validation.
const nodeLookupTimeout = 3 * time.Second

// check applies the policy to a valid node address (given as the customer
// wrote it, address canonical): its domain, and the
// guard's verdict on the address or on every address the name resolves
// to. A name that does not resolve (yet) is accepted, as the reference
// does: it gets no traffic until it does.
func (p NodePolicy) check(ctx context.Context, v *validation, field, given, address string) {
	if _, err := netip.ParseAddr(address); err != nil && !domainAllowed(address, p.AllowedDomains) {
		v.add(field, "%q is not in an allowed domain (%s; see GET /loadbalancers/alloweddomains)",
			address, strings.Join(p.AllowedDomains, ", "))
		return
	}
	if p.Resolve == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, nodeLookupTimeout)
	defer cancel()
	_, err := p.Resolve(ctx, address)
	var denied *netguard.DeniedError
	if errors.As(err, &denied) {
		v.add(field, "%q: %s", given, err)
	}
}

// validHostHeader accepts host or host:port, the host a name or an address.
func validHostHeader(h string) bool {
	if len(h) > 260 {
		return false
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = h, ""
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return false
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return len(host) <= 253 && hostnameRE.MatchString(host)
}

// NodePolicy says which addresses nodes may have.
type NodePolicy struct {
	// AllowedDomains, when not empty, are the domains node names must be in.
	AllowedDomains []string
	// Resolve checks a node address, resolving a name, against the
	// addresses nodes may not have: the control plane's and the proxies'
	// own (loopback, their interface addresses, link-local metadata
	// services), which would otherwise let a customer probe or proxy to
	// them. A *netguard.DeniedError refuses the address. Nil allows any.
	Resolve func(ctx context.Context, address string) ([]netip.Addr, error)
}

// nodeFromRequest validates a node to add and returns it as stored.
func nodeFromRequest(ctx context.Context, v *validation, field string, in *lbaasv1.NodeRequest, policy NodePolicy) store.Node {
	bad := len(*v)
	address := validNodeAddress(v, field+".address", in.GetAddress())
	if len(*v) == bad {
		policy.check(ctx, v, field+".address", in.GetAddress(), address)
	}
	n := store.Node{
		Address:   address,
		Port:      in.GetPort(),
		Condition: in.GetCondition(),
		Type:      "PRIMARY",
		Weight:    defaultWeight,
		Status:    "ONLINE",
	}
	if in.Port == nil {
		v.add(field+".port", "is required")
	} else {
		validPort(v, field+".port", n.Port)
	}
	switch {
	case in.Condition == nil:
		v.add(field+".condition", "is required (ENABLED, DISABLED or DRAINING)")
	case !oneOf(n.Condition, "ENABLED", "DISABLED", "DRAINING"):
		v.add(field+".condition", "must be ENABLED, DISABLED or DRAINING (got %q)", n.Condition)
	}
	if in.Type != nil {
		n.Type = in.GetType()
		if !oneOf(n.Type, "PRIMARY", "SECONDARY") {
			v.add(field+".type", "must be PRIMARY or SECONDARY (got %q)", n.Type)
		}
	}
	if in.Weight != nil {
		n.Weight = in.GetWeight()
		validWeight(v, field+".weight", n.Weight)
	}
	for i, m := range in.GetMetadata() {
		n.Metadata = append(n.Metadata, store.NodeMeta{Key: m.GetKey(), Value: m.GetValue()})
		validMeta(v, fmt.Sprintf("%s.metadata[%d]", field, i), m)
	}
	validUniqueKeys(v, field+".metadata", in.GetMetadata())
	return n
}

func validWeight(v *validation, field string, w uint32) {
	if w < 1 || w > maxWeight {
		v.add(field, "must be from 1 to %d (got %d)", maxWeight, w)
	}
}

func validMeta(v *validation, field string, m *lbaasv1.Meta) {
	if m.Id != nil {
		v.add(field+".id", "is assigned by the service")
	}
	for name, s := range map[string]*string{"key": m.Key, "value": m.Value} {
		switch {
		case s == nil || *s == "":
			v.add(field+"."+name, "is required")
		case !utf8.ValidString(*s):
			v.add(field+"."+name, "must be valid UTF-8")
		case utf8.RuneCountInString(*s) > maxMetaLength:
			v.add(field+"."+name, "must be at most %d characters long", maxMetaLength)
		}
	}
}

func validUniqueKeys(v *validation, field string, items []*lbaasv1.Meta) {
	seen := map[string]bool{}
	for _, m := range items {
		if seen[m.GetKey()] {
			v.add(field, "key %q appears more than once", m.GetKey())
		}
		seen[m.GetKey()] = true
	}
}

// duplicateNodes reports nodes that share an address and port.
func duplicateNodes(v *validation, field string, existing, added []store.Node) {
	seen := map[string]bool{}
	for _, n := range existing {
		seen[fmt.Sprintf("%s:%d", n.Address, n.Port)] = true
	}
	for i, n := range added {
		key := fmt.Sprintf("%s:%d", n.Address, n.Port)
		if seen[key] {
			v.add(fmt.Sprintf("%s[%d]", field, i), "duplicate node %s port %d", n.Address, n.Port)
		}
		seen[key] = true
	}
}

// networkItem validates an access list entry.
func networkItem(v *validation, field string, in *lbaasv1.NetworkItem) store.NetworkItem {
	item := store.NetworkItem{Address: in.GetAddress(), Type: in.GetType()}
	if in.Id != nil {
		v.add(field+".id", "is assigned by the service")
	}
	if p, err := parseNetwork(item.Address); err != nil {
		v.add(field+".address", "%q is not an IP address or CIDR network", item.Address)
	} else {
		item.Address = p
	}
	if !oneOf(item.Type, "ALLOW", "DENY") {
		v.add(field+".type", "must be ALLOW or DENY (got %q)", item.Type)
	}
	return item
}

// parseNetwork canonicalises an address or CIDR network.
func parseNetwork(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", err
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("bad address %q", s)
	}
	return a.String(), nil
}

// maxCheckBody bounds checkBody (the prober looks for it in the first 64 KiB).
const maxCheckBody = 1024

// healthMonitor validates a health monitor for a protocol.
func healthMonitor(v *validation, field, protocol string, in *lbaasv1.HealthMonitor) *store.HealthMonitor {
	hm := &store.HealthMonitor{
		Type: in.GetType(), Delay: in.GetDelay(), Timeout: in.GetTimeout(),
		AttemptsBeforeDeactivation: in.GetAttemptsBeforeDeactivation(),
		Path:                       in.GetPath(), StatusRegex: in.GetStatusRegex(),
		BodyRegex: in.GetBodyRegex(), HostHeader: in.GetHostHeader(), CheckBody: in.GetCheckBody(),
	}
	if IsUDP(protocol) {
		v.add(field, "health monitoring is not available for protocol %s", protocol)
	}
	switch {
	case in.Type == nil:
		v.add(field+".type", "is required (CONNECT, HTTP or HTTPS)")
	case !oneOf(hm.Type, "CONNECT", "HTTP", "HTTPS"):
		v.add(field+".type", "must be CONNECT, HTTP or HTTPS (got %q)", hm.Type)
	}
	rangeCheck := func(name string, set bool, val, lo, hi uint32) {
		if !set {
			v.add(field+"."+name, "is required")
		} else if val < lo || val > hi {
			v.add(field+"."+name, "must be from %d to %d (got %d)", lo, hi, val)
		}
	}
	rangeCheck("delay", in.Delay != nil, hm.Delay, 1, 3600)
	rangeCheck("timeout", in.Timeout != nil, hm.Timeout, 1, 300)
	rangeCheck("attemptsBeforeDeactivation", in.AttemptsBeforeDeactivation != nil, hm.AttemptsBeforeDeactivation, 1, 10)
	if hm.Type != "HTTP" && hm.Type != "HTTPS" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"path", in.Path != nil}, {"statusRegex", in.StatusRegex != nil}, {"bodyRegex", in.BodyRegex != nil},
			{"hostHeader", in.HostHeader != nil}, {"checkBody", in.CheckBody != nil}} {
			if f.set {
				v.add(field+"."+f.name, "applies to HTTP and HTTPS monitors only")
			}
		}
		return hm
	}
	switch {
	case in.Path == nil:
		v.add(field+".path", "is required for %s monitors", hm.Type)
	case !strings.HasPrefix(hm.Path, "/") || strings.ContainsAny(hm.Path, " \r\n\t") || len(hm.Path) > 2048:
		v.add(field+".path", "must be an HTTP path starting with / (got %q)", hm.Path)
	}
	if in.StatusRegex == nil {
		v.add(field+".statusRegex", "is required for %s monitors", hm.Type)
	}
	for _, f := range []struct{ name, re string }{{"statusRegex", hm.StatusRegex}, {"bodyRegex", hm.BodyRegex}} {
		if len(f.re) > 1024 {
			v.add(field+"."+f.name, "must be at most 1024 characters long")
		} else if _, err := regexp.Compile(f.re); err != nil {
			v.add(field+"."+f.name, "is not a valid regular expression: %v", err)
		}
	}
	if hm.HostHeader != "" && !validHostHeader(hm.HostHeader) {
		v.add(field+".hostHeader", "%q is not a valid host name (optionally with :port)", hm.HostHeader)
	}
	if in.CheckBody != nil {
		switch n := utf8.RuneCountInString(hm.CheckBody); {
		case !utf8.ValidString(hm.CheckBody):
			v.add(field+".checkBody", "must be valid UTF-8")
		case n == 0:
			v.add(field+".checkBody", "must not be empty (leave it out to check no body text)")
		case n > maxCheckBody:
			v.add(field+".checkBody", "must be at most %d characters long (got %d)", maxCheckBody, n)
		}
	}
	return hm
}

// sessionPersistence validates a persistence mode for a protocol.
func sessionPersistence(v *validation, field, protocol string, in *lbaasv1.SessionPersistence) *store.SessionPersistence {
	sp := &store.SessionPersistence{PersistenceType: in.GetPersistenceType()}
	switch sp.PersistenceType {
	case "HTTP_COOKIE":
		if protocol != "HTTP" {
			v.add(field+".persistenceType", "HTTP_COOKIE requires protocol HTTP")
		}
	case "SOURCE_IP":
		if protocol != "HTTP" && protocol != "HTTPS" {
			v.add(field+".persistenceType", "SOURCE_IP requires protocol HTTP or HTTPS")
		}
	case "SSL_ID":
		if protocol != "HTTPS" {
			v.add(field+".persistenceType", "SSL_ID requires protocol HTTPS")
		}
	default:
		v.add(field+".persistenceType", "must be HTTP_COOKIE, SOURCE_IP or SSL_ID (got %q)", sp.PersistenceType)
	}
	return sp
}

// connectionThrottle validates a throttle; on create every attribute is required.
func connectionThrottle(v *validation, field string, in *lbaasv1.ConnectionThrottle) *store.ConnectionThrottle {
	ct := &store.ConnectionThrottle{
		MaxConnections: in.GetMaxConnections(), MinConnections: in.GetMinConnections(),
		MaxConnectionRate: in.GetMaxConnectionRate(), RateInterval: in.GetRateInterval(),
	}
	if in.MaxConnections == nil && in.MinConnections == nil && in.MaxConnectionRate == nil && in.RateInterval == nil {
		v.add(field, "must set at least maxConnections")
	}
	if ct.MaxConnections > 100000 {
		v.add(field+".maxConnections", "must be from 0 (unlimited) to 100000 (got %d)", ct.MaxConnections)
	}
	if ct.MinConnections > 1000 {
		v.add(field+".minConnections", "must be from 0 to 1000 (got %d)", ct.MinConnections)
	}
	if ct.MaxConnectionRate > 100000 {
		v.add(field+".maxConnectionRate", "must be from 0 to 100000 (got %d)", ct.MaxConnectionRate)
	}
	if ct.RateInterval > 3600 || (in.RateInterval != nil && ct.RateInterval < 1) {
		v.add(field+".rateInterval", "must be from 1 to 3600 (got %d)", ct.RateInterval)
	}
	return ct
}

// vipWant is a validated virtual IP request: an existing id, or a type and version.
type vipWant struct {
	field   string
	id      uint32
	typ     string
	version string // IPV4, IPV6, or "" for both
}

func virtualIPRequest(v *validation, field string, in *lbaasv1.VirtualIpRequest) vipWant {
	w := vipWant{field: field, id: in.GetId(), typ: in.GetType(), version: in.GetIpVersion()}
	if in.Id != nil {
		if in.Type != nil || in.IpVersion != nil {
			v.add(field, "give either id (to share a virtual IP) or type, not both")
		}
		return w
	}
	if !oneOf(w.typ, "PUBLIC", "SERVICENET") {
		v.add(field+".type", "must be PUBLIC or SERVICENET (got %q)", w.typ)
	}
	if in.IpVersion != nil && !oneOf(w.version, "IPV4", "IPV6") {
		v.add(field+".ipVersion", "must be IPV4 or IPV6 (got %q)", w.version)
	}
	if w.typ == "SERVICENET" && w.version == "IPV6" {
		v.add(field+".ipVersion", "IPV6 is not available on SERVICENET")
	}
	return w
}

// checkHalfClosed and checkHTTPSRedirect enforce the protocol restrictions
// of those attributes.
func checkHalfClosed(v *validation, field string, halfClosed bool, protocol string) {
	if halfClosed && protocol != "TCP" && protocol != "TCP_CLIENT_FIRST" {
		v.add(field, "is only available for TCP and TCP_CLIENT_FIRST load balancers")
	}
}

func checkHTTPSRedirect(v *validation, field string, redirect bool, protocol string, port uint32, t *store.SSLTermination) {
	if redirect && !(protocol == "HTTPS" && port == 443) && !(protocol == "HTTP" && redirects(t)) {
		v.add(field, "requires protocol HTTPS on port 443, or HTTP with SSL termination enabled on securePort 443 with secureTrafficOnly true")
	}
}

// redirects tells whether an SSL termination is one an HTTP load balancer
// may redirect to (the reference: securePort 443, secureTrafficOnly).
func redirects(t *store.SSLTermination) bool {
	return t != nil && t.Enabled && t.SecurePort == 443 && t.SecureTrafficOnly
}

// ContentCachingRefused is why turning content caching on is refused: no
// cache the proxies offer keeps a load balancer's promises (see the README
// and docs/architecture.md, "Content caching ... Envoy behaviours").
const ContentCachingRefused = "content caching is not offered: Envoy's caches would fetch a miss " +
	"without the load balancer's session persistence, timeout and error page, and replay a node's " +
	"Set-Cookie to other clients; leave it disabled"

// checkContentCaching refuses content caching on (off is always accepted,
// so clients that send the reference's {"enabled": false} keep working).
func checkContentCaching(v *validation, field string, enabled bool) {
	if enabled {
		v.add(field, ContentCachingRefused)
	}
}
