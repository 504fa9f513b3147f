package translator

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// LoadBalancer is the translator's input: one load balancer as the data
// plane needs to know it. It is a plain value, independent of storage.
type LoadBalancer struct {
	ID        uint32
	Name      string
	Protocol  string // Rackspace protocol name: HTTP, HTTPS, TCP, UDP, ...
	Port      uint32
	Algorithm string // RANDOM, ROUND_ROBIN, WEIGHTED_ROUND_ROBIN, LEAST_CONNECTIONS, WEIGHTED_LEAST_CONNECTIONS
	// TimeoutSeconds bounds requests (HTTP) or idle connections (TCP, UDP).
	TimeoutSeconds uint32
	HalfClosed     bool
	HTTPSRedirect  bool
	VIPs           []VIP
	Nodes          []Node

	// AccessList holds ALLOW and DENY networks; ALLOW wins.
	AccessList []NetworkItem
	// Throttle is nil when connections are not throttled.
	Throttle *Throttle
	// Persistence is "", HTTP_COOKIE, SOURCE_IP or SSL_ID.
	Persistence       string
	ConnectionLogging bool
	ContentCaching    bool
	// ErrorPage is served for the load balancer's own 5xx replies; empty
	// means the default page.
	ErrorPage string
	// CheckPassive takes a node answering 5xx out of rotation at once.
	CheckPassive bool
	// ClientKeepAliveSeconds closes idle client connections (HTTP).
	ClientKeepAliveSeconds uint32
	// BackendKeepAlive reuses connections to the nodes; without it each
	// request gets its own connection.
	BackendKeepAlive bool
	// AccessLogPath is where connection logs go: AccessLogGRPC,
	// AccessLogStdout or a file path on the proxies ("{lb}" is replaced by
	// the resource name); empty means DefaultAccessLogPath.
	AccessLogPath string
	// TLS is nil unless the load balancer terminates TLS (the reference's
	// SSL termination, enabled).
	TLS *TLSTermination
}

// TLSTermination is what a terminating load balancer presents on its
// secure port. It carries private keys in clear: the translator turns them
// into SDS secrets, which the xDS layer serves only to authenticated
// clients of the load balancer's fleet.
type TLSTermination struct {
	SecurePort uint32
	// SecureTrafficOnly closes the plain port: only SecurePort listens.
	SecureTrafficOnly bool
	// Ciphers are the cipher suites by the reference's names
	// (ciphers.rst), in its order; the translator maps them to BoringSSL's.
	Ciphers []string
	// TLS10 and TLS11 tell whether those protocol versions are enabled
	// (the reference's securityProtocols); TLS 1.2 and 1.3 always are.
	TLS10, TLS11 bool
	// Default is presented when no mapping's host name matches the SNI.
	Default Certificate
	// Mappings are the certificate mappings (certificatemappings.rst):
	// a certificate per host name, chosen by SNI.
	Mappings []CertificateMapping
}

// Certificate is a certificate chain and its private key, in PEM.
type Certificate struct {
	// Chain is the certificate followed by its intermediates.
	Chain      string
	PrivateKey string
}

// CertificateMapping presents Certificate to clients asking for HostName.
type CertificateMapping struct {
	ID       uint32
	HostName string
	Certificate
}

// NetworkItem is an access list entry: an address or CIDR network.
type NetworkItem struct {
	Address string
	Type    string // ALLOW or DENY
}

// Throttle limits connections (reference: connectionThrottle).
type Throttle struct {
	MaxConnections    uint32
	MinConnections    uint32
	MaxConnectionRate uint32
	RateInterval      uint32
}

// VIP is an address the load balancer listens on.
type VIP struct {
	Address string
}

// Node is a back-end server.
type Node struct {
	ID      uint32
	Address string // what the customer gave: an IP address or a domain name
	// Addresses are the IP addresses the node's traffic goes to: Address
	// itself, or what the control plane resolved the name to (and allowed).
	// Each is an endpoint; none means the node gets no traffic. Proxies
	// never resolve names themselves.
	Addresses []netip.Addr
	Port      uint32
	Condition string // ENABLED, DISABLED, DRAINING
	Type      string // PRIMARY, SECONDARY
	Weight    uint32
	// Online is the node's health as measured; an offline node gets no traffic.
	Online bool
}

// ResourceName is the stable name of every resource of a load balancer:
// its listener, route configuration, cluster and endpoints are all
// "lb_<id>". Proxyless gRPC clients dial xds:///lb_<id>.
func ResourceName(id uint32) string { return fmt.Sprintf("lb_%d", id) }

// LoadBalancerID is the id in a ResourceName ("lb_<id>"); false for any
// other name.
func LoadBalancerID(name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(name, "lb_")
	if !ok || digits == "" || digits[0] == '0' || len(digits) > 10 {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 32)
	return uint32(id), err == nil
}

// RedirectListenerName names the extra port-80 listener of an HTTPS load
// balancer with httpsRedirect.
func RedirectListenerName(id uint32) string { return fmt.Sprintf("lb_%d_redirect", id) }

// Protocol families, which decide the listener's shape.
const (
	FamilyHTTP = "http" // HTTP connection manager
	FamilyTCP  = "tcp"  // TCP proxy (includes HTTPS passthrough)
	FamilyUDP  = "udp"  // UDP proxy
)

// Family returns the protocol family of a Rackspace protocol.
func Family(protocol string) string {
	switch protocol {
	case "HTTP":
		return FamilyHTTP
	case "UDP", "UDP_STREAM", "DNS_UDP":
		return FamilyUDP
	}
	return FamilyTCP
}
