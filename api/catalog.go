package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/protobuf/proto"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/ratelimit"
)

// Protocol is a load-balancing protocol and its default port (0: none).
type Protocol struct {
	Name string
	Port uint32
}

// Protocols are the supported protocols, as the reference lists them.
var Protocols = []Protocol{
	{"DNS_TCP", 53}, {"DNS_UDP", 53}, {"FTP", 21}, {"HTTP", 80}, {"HTTPS", 443},
	{"IMAPS", 993}, {"IMAPv2", 143}, {"IMAPv3", 220}, {"IMAPv4", 143},
	{"LDAP", 389}, {"LDAPS", 636}, {"MYSQL", 3306}, {"POP3", 110}, {"POP3S", 995},
	{"SMTP", 25}, {"TCP", 0}, {"TCP_CLIENT_FIRST", 0}, {"UDP", 0}, {"UDP_STREAM", 0},
	{"SFTP", 22}, {"TCP_STREAM", 0},
}

// Algorithms are the supported load-balancing algorithms.
var Algorithms = []string{
	"LEAST_CONNECTIONS", "RANDOM", "ROUND_ROBIN", "WEIGHTED_LEAST_CONNECTIONS", "WEIGHTED_ROUND_ROBIN",
}

func lookupProtocol(name string) (Protocol, bool) {
	for _, p := range Protocols {
		if p.Name == name {
			return p, true
		}
	}
	return Protocol{}, false
}

func knownAlgorithm(name string) bool {
	for _, a := range Algorithms {
		if a == name {
			return true
		}
	}
	return false
}

// IsUDP tells whether a protocol carries datagrams.
func IsUDP(protocol string) bool {
	return protocol == "UDP" || protocol == "UDP_STREAM" || protocol == "DNS_UDP"
}

// sharePort tells whether two load balancers with these protocols may use
// the same port of a shared virtual IP: only a TCP and a UDP protocol of
// the same compatible group can (reference: compatible shared protocols).
func sharePort(a, b string) bool {
	group := func(p string) (string, bool) {
		switch p {
		case "DNS_TCP":
			return "dns", false
		case "DNS_UDP":
			return "dns", true
		case "TCP", "TCP_CLIENT_FIRST":
			return "tcp", false
		case "UDP", "UDP_STREAM":
			return "tcp", true
		}
		return p, false
	}
	ga, ua := group(a)
	gb, ub := group(b)
	return ga == gb && ua != ub && (ga == "dns" || ga == "tcp")
}

// Limits are an account's absolute limits.
type Limits struct {
	LoadBalancers       uint32
	Nodes               uint32
	IPv6                uint32
	BatchDelete         uint32
	AccessList          uint32
	NodeMeta            uint32
	CertificateMappings uint32
	LoadBalancerMeta    uint32
}

// DefaultLimits are the reference's defaults.
var DefaultLimits = Limits{
	LoadBalancers: 25, Nodes: 25, IPv6: 25, BatchDelete: 10, AccessList: 100,
	NodeMeta: 25, CertificateMappings: 20, LoadBalancerMeta: 25,
}

// Catalog serves the account-wide read-only lists.
type Catalog struct {
	lbaasv1.UnimplementedCatalogServiceServer
	auth           Authorizer
	limits         Limits
	allowedDomains []string
	rates          *ratelimit.Limiter
	sources        *lbaasv1.SourceAddresses
	log            *slog.Logger
}

// NewCatalog returns the CatalogService.
func NewCatalog(auth Authorizer, cfg Config) *Catalog {
	return &Catalog{auth: auth, limits: cfg.Limits, allowedDomains: normalDomains(cfg.AllowedDomains),
		rates: cfg.RateLimits, sources: cfg.SourceAddresses, log: cfg.Logger}
}

// ListProtocols lists the supported protocols and their default ports.
func (c *Catalog) ListProtocols(ctx context.Context, req *lbaasv1.ListProtocolsRequest) (*lbaasv1.ListProtocolsResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	out := &lbaasv1.ListProtocolsResponse{}
	for _, p := range Protocols {
		out.Protocols = append(out.Protocols, &lbaasv1.Protocol{Name: p.Name, Port: proto.Uint32(p.Port)})
	}
	return out, nil
}

// ListAlgorithms lists the supported algorithms.
func (c *Catalog) ListAlgorithms(ctx context.Context, req *lbaasv1.ListAlgorithmsRequest) (*lbaasv1.ListAlgorithmsResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	out := &lbaasv1.ListAlgorithmsResponse{}
	for _, a := range Algorithms {
		out.Algorithms = append(out.Algorithms, &lbaasv1.Algorithm{Name: a})
	}
	return out, nil
}

// GetAbsoluteLimits lists the account's absolute limits.
func (c *Catalog) GetAbsoluteLimits(ctx context.Context, req *lbaasv1.GetAbsoluteLimitsRequest) (*lbaasv1.GetAbsoluteLimitsResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	return &lbaasv1.GetAbsoluteLimitsResponse{Absolute: c.limits.absolute()}, nil
}

// absolute lists the limits the services enforce, as the reference names them.
func (l Limits) absolute() []*lbaasv1.AbsoluteLimit {
	return []*lbaasv1.AbsoluteLimit{
		{Name: "IPV6_LIMIT", Value: l.IPv6},
		{Name: "LOADBALANCER_LIMIT", Value: l.LoadBalancers},
		{Name: "BATCH_DELETE_LIMIT", Value: l.BatchDelete},
		{Name: "ACCESS_LIST_LIMIT", Value: l.AccessList},
		{Name: "NODE_LIMIT", Value: l.Nodes},
		{Name: "NODE_META_LIMIT", Value: l.NodeMeta},
		{Name: "CERTIFICATE_MAPPING_LIMIT", Value: l.CertificateMappings},
		{Name: "LOADBALANCER_META_LIMIT", Value: l.LoadBalancerMeta},
	}
}

// RateLimitURI and RateLimitRegex name the requests the rate limits
// count: every request of the API.
const RateLimitURI, RateLimitRegex = "/v1.0/*", "^/v1.0/.*"

// GetLimits shows the account's rate limits, with what is left of each
// now (none when rate limiting is off), and its absolute limits: the same
// ones the services enforce.
func (c *Catalog) GetLimits(ctx context.Context, req *lbaasv1.GetLimitsRequest) (*lbaasv1.GetLimitsResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	out := &lbaasv1.Limits{Rate: []*lbaasv1.RateLimits{}, Absolute: c.limits.absolute()}
	if c.rates != nil {
		rates := &lbaasv1.RateLimits{Uri: RateLimitURI, Regex: RateLimitRegex}
		for _, s := range c.rates.Status(req.GetAccount()) {
			rates.Limit = append(rates.Limit, &lbaasv1.RateLimit{
				Verb: s.Verb, Unit: s.Unit, Value: proto.Uint32(s.Value), Remaining: proto.Uint32(s.Remaining),
				NextAvailable: s.NextAvailable.UTC().Format("2006-01-02T15:04:05.000Z"),
			})
		}
		out.Rate = append(out.Rate, rates)
	}
	return &lbaasv1.GetLimitsResponse{Limits: out}, nil
}

// ListAllowedDomains lists the domains whose names nodes may use as their
// address (an empty list: any domain name).
func (c *Catalog) ListAllowedDomains(ctx context.Context, req *lbaasv1.ListAllowedDomainsRequest) (*lbaasv1.ListAllowedDomainsResponse, error) {
	if err := c.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	out := &lbaasv1.ListAllowedDomainsResponse{}
	for _, d := range c.allowedDomains {
		out.AllowedDomains = append(out.AllowedDomains, &lbaasv1.AllowedDomainEntry{
			AllowedDomain: &lbaasv1.AllowedDomain{Name: proto.String(d)},
		})
	}
	return out, nil
}

// ParseAllowedDomains parses a comma-separated list of allowed domains
// (the --allowed-domains flag): each one a domain name such as
// rackspace.com or org. Spaces and empty entries are ignored; an empty
// list allows every domain name.
func ParseAllowedDomains(list string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(list, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name := strings.Trim(strings.ToLower(d), ".")
		if name == "" || len(name) > 253 || !hostnameRE.MatchString(name) || looksNumeric(name) {
			return nil, fmt.Errorf("%q is not a domain name", d)
		}
		out = append(out, name)
	}
	return normalDomains(out), nil
}

// normalDomains lowercases domains, drops their leading and trailing dots,
// empty entries and repeats.
func normalDomains(domains []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range domains {
		d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
		if d != "" && !seen[d] {
			out = append(out, d)
			seen[d] = true
		}
	}
	return out
}

// domainAllowed tells whether a domain name (lowercase) is one of the
// allowed domains or a name under one; with no allowed domains, every name is.
func domainAllowed(name string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	name = strings.TrimSuffix(name, ".")
	for _, d := range allowed {
		d = strings.Trim(strings.ToLower(d), ".")
		if d != "" && (name == d || strings.HasSuffix(name, "."+d)) {
			return true
		}
	}
	return false
}

// Authorizer checks that the caller's token belongs to the account.
type Authorizer interface {
	Authorize(ctx context.Context, account string) error
}
