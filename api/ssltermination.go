package api

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// Cipher profiles (reference: ciphers.rst).
const (
	CipherProfileDefault = "default"
	CipherProfile201708  = "CLBCipherPolicy2017-08"
	CipherProfile201905  = "CLBCipherPolicy2019-05"
)

// The cipher suites of the profiles, by the reference's names, in the
// order of its table: each profile is the next stricter one plus some.
var (
	ciphers201905 = []string{
		"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
		"SSL_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "SSL_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	}
	ciphers201708 = append(slices.Clone(ciphers201905),
		"SSL_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "SSL_ECDHE_RSA_WITH_AES_256_CBC_SHA",
		"SSL_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "SSL_ECDHE_RSA_WITH_AES_128_CBC_SHA",
		"SSL_RSA_WITH_AES_256_GCM_SHA384", "SSL_RSA_WITH_AES_256_CBC_SHA256", "SSL_RSA_WITH_AES_256_CBC_SHA",
		"SSL_RSA_WITH_AES_128_GCM_SHA256", "SSL_RSA_WITH_AES_128_CBC_SHA256", "SSL_RSA_WITH_AES_128_CBC_SHA",
	)
	ciphersDefault = append(slices.Clone(ciphers201708), "SSL_RSA_WITH_3DES_EDE_CBC_SHA")
)

// CipherProfiles are the cipher suites of each profile (reference: ciphers.rst).
var CipherProfiles = map[string][]string{
	CipherProfileDefault: ciphersDefault,
	CipherProfile201708:  ciphers201708,
	CipherProfile201905:  ciphers201905,
}

// Linode's cipher_suite values and the cipher profiles they stand for:
// "recommended" is the strictest profile (TLS 1.2+ forward-secret AEAD
// suites), "legacy" (which Linode calls insecure) the default profile,
// 3DES and all.
const (
	CipherSuiteRecommended = "recommended"
	CipherSuiteLegacy      = "legacy"
)

var cipherSuiteProfiles = map[string]string{
	CipherSuiteRecommended: CipherProfile201905,
	CipherSuiteLegacy:      CipherProfileDefault,
}

// cipherSuiteOf is the cipher suite a profile is ("": none of them).
func cipherSuiteOf(profile string) string {
	for suite, p := range cipherSuiteProfiles {
		if p == profile {
			return suite
		}
	}
	return ""
}

// Security protocols a termination can turn off, and their statuses.
const (
	SecurityProtocolTLS10 = "TLS_10"
	SecurityProtocolTLS11 = "TLS_11"
	ProtocolEnabled       = "ENABLED"
	ProtocolDisabled      = "DISABLED"
)

// MinRSABits is the smallest RSA key accepted.
const MinRSABits = 2048

// secureProtocols are the protocols that are TLS already: the reference
// refuses SSL termination on them ("SSL termination can be applied to an
// HTTP load balancer, but not to an HTTPS load balancer").
var secureProtocols = []string{"HTTPS", "IMAPS", "LDAPS", "POP3S"}

// IsSecureProtocol tells whether a protocol is TLS already.
func IsSecureProtocol(protocol string) bool { return slices.Contains(secureProtocols, protocol) }

// SSLTerminations implements SSLTerminationService.
type SSLTerminations struct {
	lbaasv1.UnimplementedSSLTerminationServiceServer
	keyedChild
}

// NewSSLTerminations returns the SSLTerminationService; cfg.Secrets seals
// the private keys it stores.
func NewSSLTerminations(st *store.Store, auth Authorizer, cfg Config) *SSLTerminations {
	return &SSLTerminations{keyedChild: newKeyedChild(st, auth, cfg)}
}

// noTermination is the fault of a load balancer without SSL termination.
func noTermination() error {
	return NotFound("No SSL termination configuration found for this load balancer")
}

// sslTerminationOut is the answer: the configuration as stored, without
// the private key (the reference's answers never show it).
func sslTerminationOut(t *store.SSLTermination) *lbaasv1.SSLTermination {
	status := func(on bool) *string {
		if on {
			return proto.String(ProtocolEnabled)
		}
		return proto.String(ProtocolDisabled)
	}
	out := &lbaasv1.SSLTermination{
		Certificate: proto.String(t.Certificate), Enabled: proto.Bool(t.Enabled),
		SecurePort: proto.Uint32(t.SecurePort), SecureTrafficOnly: proto.Bool(t.SecureTrafficOnly),
		CipherProfile: proto.String(t.CipherProfile),
		SecurityProtocols: []*lbaasv1.SecurityProtocol{
			{SecurityProtocolName: proto.String(SecurityProtocolTLS10), SecurityProtocolStatus: status(t.TLS10)},
			{SecurityProtocolName: proto.String(SecurityProtocolTLS11), SecurityProtocolStatus: status(t.TLS11)},
		},
	}
	if t.Intermediate != "" {
		out.IntermediateCertificate = proto.String(t.Intermediate)
	}
	if suite := cipherSuiteOf(t.CipherProfile); suite != "" {
		out.CipherSuite = proto.String(suite)
	}
	out.SslFingerprint, out.SslCommonName = facts(t.Certificate)
	return out
}

// facts are certificateFacts as optional fields (unset when unknown).
func facts(certPEM string) (fingerprint, commonName *string) {
	fp, cn := certificateFacts(certPEM)
	if fp != "" {
		fingerprint = proto.String(fp)
	}
	if cn != "" {
		commonName = proto.String(cn)
	}
	return fingerprint, commonName
}

// GetSSLTermination shows the configuration (without the private key).
func (s *SSLTerminations) GetSSLTermination(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.SSLTerminationResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	if lb.SSLTermination == nil {
		return nil, noTermination()
	}
	return &lbaasv1.SSLTerminationResponse{SslTermination: sslTerminationOut(lb.SSLTermination)}, nil
}

// ListCiphers lists the ciphers of the load balancer's cipher profile (the
// default profile's while it has no SSL termination: the profile a new
// termination gets).
func (s *SSLTerminations) ListCiphers(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.CiphersResponse, error) {
	lb, err := s.read(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	profile := CipherProfileDefault
	if lb.SSLTermination != nil {
		profile = lb.SSLTermination.CipherProfile
	}
	out := &lbaasv1.CiphersResponse{}
	for _, name := range CipherProfiles[profile] {
		out.Ciphers = append(out.Ciphers, &lbaasv1.Cipher{Name: proto.String(name)})
	}
	return out, nil
}

// UpdateSSLTermination creates or changes the configuration. A request
// with a certificate replaces the certificate, key and intermediates (all
// validated together); one without changes only the attributes it gives.
func (s *SSLTerminations) UpdateSSLTermination(ctx context.Context, req *lbaasv1.UpdateSSLTerminationRequest) (*lbaasv1.SSLTerminationResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetSslTermination()
	if in == nil {
		return nil, BadRequest("sslTermination: is required")
	}
	var v validation
	if in.CipherProfile != nil {
		if _, ok := CipherProfiles[in.GetCipherProfile()]; !ok {
			v.add("sslTermination.cipherProfile", "must be one of %s, %s, %s (got %q)",
				CipherProfileDefault, CipherProfile201708, CipherProfile201905, in.GetCipherProfile())
		}
	}
	if in.CipherSuite != nil {
		profile, ok := cipherSuiteProfiles[in.GetCipherSuite()]
		switch {
		case !ok:
			v.add("sslTermination.cipherSuite", "must be %s or %s (got %q)", CipherSuiteRecommended, CipherSuiteLegacy, in.GetCipherSuite())
		case in.CipherProfile != nil && in.GetCipherProfile() != profile:
			v.add("sslTermination.cipherSuite", "%q is the cipher profile %s, which contradicts cipherProfile %q: give one of them",
				in.GetCipherSuite(), profile, in.GetCipherProfile())
		default:
			in.CipherProfile = proto.String(profile)
		}
	}
	for i, p := range in.GetSecurityProtocols() {
		field := fmt.Sprintf("sslTermination.securityProtocols[%d]", i)
		if !oneOf(p.GetSecurityProtocolName(), SecurityProtocolTLS10, SecurityProtocolTLS11) {
			v.add(field+".securityProtocolName", "must be %s or %s (got %q)", SecurityProtocolTLS10, SecurityProtocolTLS11, p.GetSecurityProtocolName())
		}
		if p.SecurityProtocolStatus != nil && !oneOf(p.GetSecurityProtocolStatus(), ProtocolEnabled, ProtocolDisabled) {
			v.add(field+".securityProtocolStatus", "must be %s or %s (got %q)", ProtocolEnabled, ProtocolDisabled, p.GetSecurityProtocolStatus())
		}
	}
	if in.SecurePort != nil {
		validPort(&v, "sslTermination.securePort", in.GetSecurePort())
	}
	replace := in.Certificate != nil || in.Privatekey != nil || in.IntermediateCertificate != nil
	var pair *keyPair
	if replace {
		switch {
		case in.GetCertificate() == "" || in.GetPrivatekey() == "":
			v.add("sslTermination", "a new certificate needs certificate and privatekey together (intermediateCertificate may only come with them)")
		default:
			var errs []string
			pair, errs = parseKeyPair(pemInput{field: "sslTermination", keyField: "privatekey",
				cert: in.GetCertificate(), key: in.GetPrivatekey(), chain: in.GetIntermediateCertificate()}, s.now())
			v = append(v, errs...)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var out *store.SSLTermination
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(tx *store.Tx, lb *store.LoadBalancer) error {
		if IsSecureProtocol(lb.Protocol) {
			return BadRequest(fmt.Sprintf("sslTermination: SSL termination is only available for load balancers of a non-secure protocol (this one is %s)", lb.Protocol))
		}
		if IsUDP(lb.Protocol) {
			return BadRequest(fmt.Sprintf("sslTermination: TLS runs over TCP: SSL termination is not available for %s load balancers", lb.Protocol))
		}
		t := lb.SSLTermination
		if t == nil {
			if !replace || in.SecurePort == nil {
				return BadRequest("sslTermination: a new SSL termination needs certificate, privatekey and securePort")
			}
			t = &store.SSLTermination{Enabled: true, CipherProfile: CipherProfileDefault, TLS10: true, TLS11: true}
		} else {
			t = new(*t)
		}
		if replace {
			sealed, err := sealKey(s.keys, pair, store.SecretContext(lb.ID))
			if err != nil {
				return err
			}
			t.Certificate, t.Intermediate, t.SealedKey = in.GetCertificate(), in.GetIntermediateCertificate(), sealed
		}
		if in.SecurePort != nil {
			t.SecurePort = in.GetSecurePort()
		}
		if in.Enabled != nil {
			t.Enabled = in.GetEnabled()
		}
		if in.SecureTrafficOnly != nil {
			t.SecureTrafficOnly = in.GetSecureTrafficOnly()
		}
		if in.CipherProfile != nil {
			t.CipherProfile = in.GetCipherProfile()
		}
		for _, p := range in.GetSecurityProtocols() {
			on := p.GetSecurityProtocolStatus() != ProtocolDisabled
			if p.GetSecurityProtocolName() == SecurityProtocolTLS10 {
				t.TLS10 = on
			} else {
				t.TLS11 = on
			}
		}
		if err := checkSecurePort(tx, lb, t.SecurePort); err != nil {
			return err
		}
		if lb.HTTPSRedirect && lb.Protocol == "HTTP" && !redirects(t) {
			return BadRequest("sslTermination: the load balancer redirects to HTTPS (httpsRedirect), which needs SSL termination enabled on securePort 443 with secureTrafficOnly true: turn httpsRedirect off first")
		}
		lb.SSLTermination, out = t, t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.SSLTerminationResponse{SslTermination: sslTerminationOut(out)}, nil
}

// checkSecurePort refuses a secure port the load balancer or another one
// sharing one of its virtual IPs listens on already.
func checkSecurePort(tx *store.Tx, lb *store.LoadBalancer, port uint32) error {
	if slices.Contains(ports(lb.Port, lb.Protocol, lb.HTTPSRedirect), port) {
		return BadRequest(fmt.Sprintf("sslTermination.securePort: must differ from the load balancer's port %d", lb.Port))
	}
	for _, vip := range lb.VirtualIPs {
		listeners, err := tx.Listeners(vip.ID)
		if err != nil {
			return err
		}
		for _, l := range listeners {
			if l.LoadBalancerID != lb.ID && slices.Contains(ports(l.Port, l.Protocol, l.HTTPSRedirect), port) {
				return BadRequest(fmt.Sprintf("sslTermination.securePort: port %d of virtual IP %d (%s) is already used by load balancer %d",
					port, vip.ID, vip.Address, l.LoadBalancerID))
			}
		}
	}
	return nil
}

// DeleteSSLTermination removes the configuration and its key.
func (s *SSLTerminations) DeleteSSLTermination(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		if lb.SSLTermination == nil {
			return noTermination()
		}
		if lb.HTTPSRedirect && lb.Protocol == "HTTP" {
			return BadRequest("sslTermination: the load balancer redirects to HTTPS (httpsRedirect): turn httpsRedirect off first")
		}
		lb.SSLTermination = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
