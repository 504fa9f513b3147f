package translator

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// SSL termination (the reference's ssl-termination.rst and
// certificatemappings.rst) on Envoy:
//
//   - the secure port gets a listener of its own, lb_<id>_secure, on the
//     load balancer's virtual IPs, beside the plain one (lb_<id>) unless
//     secureTrafficOnly; with httpsRedirect the plain port answers every
//     request with a 301 to https on the secure port instead;
//   - its filter chains are the plain listener's serving chain (the same
//     throttle filters) ending in a proxy configuration of its own over
//     ECDS, lb_<id>_secure_http or lb_<id>_secure_tcp: the plain one's
//     (access log, error page, keep-alive, routes) with the stat prefix
//     lb_<id>_tls, so Envoy's metrics tell secure traffic apart (the
//     usage's SSL fields, internal/loadstats); each with a
//     DownstreamTlsContext: one chain per certificate mapping, chosen by
//     SNI (filter_chain_match.server_names), then the default chain;
//     each is preceded by its access list refusal chain, because Envoy
//     matches server names before source addresses (a chain naming the
//     client's SNI would otherwise take a refused client);
//   - the certificates come over SDS on the ADS stream, never inline in the
//     listener: secrets lb_<id>_tls (the termination's certificate) and
//     lb_<id>_tls_<mapping id> (each mapping's), which the xDS layer serves
//     only to authenticated clients of the load balancer's fleet;
//   - X-Forwarded-Proto: the HTTP connection manager, at the edge
//     (use_remote_address, no trusted hops), overwrites it with the
//     scheme of the client's connection (Envoy's
//     ConnectionManagerUtility::mutateRequestHeaders), so terminated
//     requests carry "https" and plain ones "http" through the one shared
//     configuration.
//
// Proxyless gRPC clients get none of this: TLS termination is a proxy's.

// Names of the resources of a termination.
const (
	tlsTransportSocket = "envoy.transport_sockets.tls"
	tlsInspector       = "envoy.filters.listener.tls_inspector"
)

// SecureListenerName names the listener on a terminating load balancer's
// secure port.
func SecureListenerName(id uint32) string { return ResourceName(id) + "_secure" }

// SecureStatPrefix is the stat prefix of a terminating load balancer's
// secure listener (its proxy filter's): lb_<id>_tls (internal/loadstats
// reads it as the secure twin of lb_<id>).
func SecureStatPrefix(id uint32) string { return ResourceName(id) + "_tls" }

// SecureProxyFilterName names the ECDS configuration of the secure
// listener's proxy filter: lb_<id>_secure_http or lb_<id>_secure_tcp.
func SecureProxyFilterName(id uint32, family string) string {
	return fmt.Sprintf("%s_secure_%s", ResourceName(id), family)
}

// SecretName names the SDS secret holding a terminating load balancer's
// certificate and key.
func SecretName(id uint32) string { return ResourceName(id) + "_tls" }

// MappingSecretName names the SDS secret of one certificate mapping.
func MappingSecretName(id, mapping uint32) string {
	return fmt.Sprintf("%s_tls_%d", ResourceName(id), mapping)
}

// Cipher is a cipher suite of the reference's profiles and what Envoy
// (BoringSSL) calls it; an empty BoringSSL name means it is not
// configured on Envoy, for Reason.
type Cipher struct {
	Reference string
	BoringSSL string
	Reason    string
}

// Reasons a reference cipher suite is not configured.
const (
	reasonTLS13     = "TLS 1.3 suite: Envoy's cipher_suites apply to TLS 1.0-1.2 only; BoringSSL always offers its TLS 1.3 suites (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305) and they cannot be configured"
	reasonBoringCBC = "BoringSSL does not offer the SHA-256/SHA-384 CBC suites (removed as weaker than the GCM ones of the same profile); clients negotiate another suite of the profile"
)

// Ciphers maps every cipher suite of the reference's profiles
// (ciphers.rst) to BoringSSL's name, in the reference's order.
var Ciphers = []Cipher{
	{"TLS_AES_256_GCM_SHA384", "", reasonTLS13},
	{"TLS_AES_128_GCM_SHA256", "", reasonTLS13},
	{"SSL_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", ""},
	{"SSL_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", ""},
	{"SSL_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "", reasonBoringCBC},
	{"SSL_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", ""},
	{"SSL_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "", reasonBoringCBC},
	{"SSL_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", ""},
	{"SSL_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", ""},
	{"SSL_RSA_WITH_AES_256_CBC_SHA256", "", reasonBoringCBC},
	{"SSL_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", ""},
	{"SSL_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", ""},
	{"SSL_RSA_WITH_AES_128_CBC_SHA256", "", reasonBoringCBC},
	{"SSL_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", ""},
	{"SSL_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA", ""},
}

// boringCiphers maps a profile's suites (the reference's names) to the
// BoringSSL names Envoy is given, in the profile's order (BoringSSL
// prefers earlier ones).
func boringCiphers(names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		i := slices.IndexFunc(Ciphers, func(c Cipher) bool { return c.Reference == name })
		if i < 0 {
			return nil, fmt.Errorf("cipher suite %q is in no profile of the reference", name)
		}
		if b := Ciphers[i].BoringSSL; b != "" && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the cipher profile has no TLS 1.2 suite Envoy offers")
	}
	return out, nil
}

func checkTLS(lb *LoadBalancer) error {
	t := lb.TLS
	if t == nil {
		return nil
	}
	if Family(lb.Protocol) == FamilyUDP {
		return fmt.Errorf("load balancer %d: TLS termination on %s", lb.ID, lb.Protocol)
	}
	if t.SecurePort == 0 || t.SecurePort > 65535 || t.SecurePort == lb.Port {
		return fmt.Errorf("load balancer %d: secure port %d", lb.ID, t.SecurePort)
	}
	if !utf8.ValidString(t.Default.Chain + t.Default.PrivateKey) {
		return fmt.Errorf("load balancer %d: certificate or key is not UTF-8", lb.ID)
	}
	if t.Default.Chain == "" || t.Default.PrivateKey == "" {
		return fmt.Errorf("load balancer %d: TLS termination without a certificate and key", lb.ID)
	}
	seen := map[string]bool{}
	for _, m := range t.Mappings {
		if m.ID == 0 || !utf8.ValidString(m.HostName+m.Chain+m.PrivateKey) || m.HostName == "" || m.Chain == "" || m.PrivateKey == "" || seen[m.HostName] {
			return fmt.Errorf("load balancer %d: certificate mapping %d (%q) is incomplete or repeats a host name", lb.ID, m.ID, m.HostName)
		}
		seen[m.HostName] = true
	}
	if _, err := boringCiphers(t.Ciphers); err != nil {
		return fmt.Errorf("load balancer %d: %w", lb.ID, err)
	}
	return nil
}

// terminating returns the listeners of a terminating load balancer: the
// plain one (or the redirect in its place, or none), and the secure one;
// and the secure listener's proxy configuration (ECDS). proxy is the
// plain listener's proxy configuration (an HTTP connection manager or a
// TCP proxy).
func terminating(lb *LoadBalancer, plain *listenerv3.Listener, proxy proto.Message) ([]*listenerv3.Listener, *corev3.TypedExtensionConfig) {
	family := Family(lb.Protocol)
	secureProxy := proto.Clone(proxy)
	switch m := secureProxy.(type) {
	case *hcmv3.HttpConnectionManager:
		m.StatPrefix = SecureStatPrefix(lb.ID)
	case *tcpproxyv3.TcpProxy:
		m.StatPrefix = SecureStatPrefix(lb.ID)
	}
	serving, config := proxyChain(lb, SecureProxyFilterName(lb.ID, family), secureProxy)
	secure := secureListener(lb, serving)
	switch {
	case lb.HTTPSRedirect && family == FamilyHTTP:
		return []*listenerv3.Listener{redirectOn(lb, ResourceName(lb.ID), lb.Port, lb.TLS.SecurePort), secure}, config
	case lb.TLS.SecureTrafficOnly:
		return []*listenerv3.Listener{secure}, config
	}
	return []*listenerv3.Listener{plain, secure}, config
}

// secureListener listens on the secure port: per mapping (in the order
// given) a chain for its host name, then the default chain, each behind
// the access list's refusal chain for the same server names. serving is
// the secure listener's serving chain (without TLS).
func secureListener(lb *LoadBalancer, serving *listenerv3.FilterChain) *listenerv3.Listener {
	t := lb.TLS
	ciphers, _ := boringCiphers(t.Ciphers) // checked by checkTLS
	var fcs []*listenerv3.FilterChain
	add := func(name string, serverNames []string, secret string) {
		if deny := accessListChain(lb); deny != nil {
			deny.Name = name + "_access_list_deny"
			deny.FilterChainMatch.ServerNames = serverNames
			fcs = append(fcs, deny)
		}
		fc := proto.Clone(serving).(*listenerv3.FilterChain)
		fc.Name = name
		if len(serverNames) > 0 {
			fc.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: serverNames}
		}
		fc.TransportSocket = &corev3.TransportSocket{
			Name:       tlsTransportSocket,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(downstreamTLS(lb, secret, ciphers))},
		}
		fcs = append(fcs, fc)
	}
	for _, m := range t.Mappings {
		name := MappingSecretName(lb.ID, m.ID)
		add(name, []string{m.HostName}, name)
	}
	add(SecretName(lb.ID), nil, SecretName(lb.ID))
	l := tcpListener(SecureListenerName(lb.ID), lb.VIPs, t.SecurePort, fcs...)
	// The TLS inspector reads the client hello's SNI (and ALPN) before a
	// chain is chosen.
	l.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       tlsInspector,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
	}}
	return l
}

// downstreamTLS is a chain's TLS context: its certificate by SDS name,
// the profile's suites and the enabled protocol versions.
func downstreamTLS(lb *LoadBalancer, secret string, ciphers []string) *tlsv3.DownstreamTlsContext {
	common := &tlsv3.CommonTlsContext{
		TlsParams: &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: minimumVersion(lb.TLS),
			TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
			CipherSuites:              ciphers,
		},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: secret, SdsConfig: ads()}},
	}
	if Family(lb.Protocol) == FamilyHTTP {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
}

// minimumVersion is the lowest enabled version: BoringSSL takes a range,
// so TLS 1.0 enabled with TLS 1.1 disabled still allows 1.1 (which is
// stronger than what the customer allowed).
func minimumVersion(t *TLSTermination) tlsv3.TlsParameters_TlsProtocol {
	switch {
	case t.TLS10:
		return tlsv3.TlsParameters_TLSv1_0
	case t.TLS11:
		return tlsv3.TlsParameters_TLSv1_1
	}
	return tlsv3.TlsParameters_TLSv1_2
}

// tlsSecrets are the SDS secrets of a terminating load balancer: its
// certificate, then each mapping's.
func tlsSecrets(lb *LoadBalancer) []*tlsv3.Secret {
	if lb.TLS == nil {
		return nil
	}
	out := []*tlsv3.Secret{secret(SecretName(lb.ID), lb.TLS.Default)}
	for _, m := range lb.TLS.Mappings {
		out = append(out, secret(MappingSecretName(lb.ID, m.ID), m.Certificate))
	}
	return out
}

func secret(name string, c Certificate) *tlsv3.Secret {
	inline := func(s string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(c.Chain),
		PrivateKey:       inline(c.PrivateKey),
	}}}
}
