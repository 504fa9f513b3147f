package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/secrets"
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
	lbChild
	keys *secrets.Keyring
	now  func() time.Time
}

// NewSSLTerminations returns the SSLTerminationService; keys seals the
// private keys it stores.
func NewSSLTerminations(st *store.Store, auth Authorizer, cfg Config) *SSLTerminations {
	return &SSLTerminations{lbChild: newLBChild(st, auth, cfg), keys: cfg.Secrets, now: time.Now}
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
	return out
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
			pair, errs = parseKeyPair("sslTermination", in.GetCertificate(), in.GetPrivatekey(), in.GetIntermediateCertificate(), s.now())
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
			if s.keys == nil {
				return Unavailable()
			}
			sealed, err := s.keys.Seal(pair.key, store.SecretContext(lb.ID))
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
		lb.SSLTermination = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// keyPair is a validated certificate and its private key (PKCS #8 DER).
type keyPair struct {
	leaf *x509.Certificate
	key  []byte
}

// parseKeyPair validates a certificate, its private key and intermediates:
// each parses; the key is RSA of at least MinRSABits bits and matches the
// certificate; each intermediate signs the certificate before it (the first
// signs the certificate); every certificate is valid at now. An expired or
// not-yet-valid certificate is refused: clients would refuse it anyway,
// and the load balancer would serve a certificate no client accepts. The
// messages name the fields and never contain the key.
func parseKeyPair(field, certPEM, keyPEM, chainPEM string, now time.Time) (*keyPair, []string) {
	var v validation
	certs, err := parseCertificates(certPEM)
	switch {
	case err != nil:
		v.add(field+".certificate", "%v", err)
	case len(certs) != 1:
		v.add(field+".certificate", "must be one PEM certificate (got %d)", len(certs))
		certs = nil
	}
	var chain []*x509.Certificate
	if strings.TrimSpace(chainPEM) != "" {
		if chain, err = parseCertificates(chainPEM); err != nil {
			v.add(field+".intermediateCertificate", "%v", err)
		}
	}
	key, der, err := parsePrivateKey(keyPEM)
	if err != nil {
		v.add(field+".privatekey", "%v", err)
	}
	if len(certs) == 0 {
		return nil, v
	}
	leaf := certs[0]
	if key != nil {
		if rsaKey, ok := key.(*rsa.PrivateKey); ok && rsaKey.N.BitLen() < MinRSABits {
			v.add(field+".privatekey", "an RSA key must have at least %d bits (got %d)", MinRSABits, rsaKey.N.BitLen())
		} else if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
			v.add(field+".privatekey", "does not match the certificate's public key")
		}
	}
	validAt(&v, field+".certificate", leaf, now)
	prev := leaf
	for i, c := range chain {
		f := fmt.Sprintf("%s.intermediateCertificate[%d]", field, i)
		if err := prev.CheckSignatureFrom(c); err != nil {
			v.add(f, "does not sign the certificate before it (%q): intermediates go in order, the one that signs the certificate first", prev.Subject.CommonName)
			break
		}
		validAt(&v, f, c, now)
		prev = c
	}
	if len(v) > 0 {
		return nil, v
	}
	return &keyPair{leaf: leaf, key: der}, nil
}

func validAt(v *validation, field string, c *x509.Certificate, now time.Time) {
	switch {
	case now.After(c.NotAfter):
		v.add(field, "expired on %s", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		v.add(field, "is not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
}

// parseCertificates parses PEM CERTIFICATE blocks (at least one, nothing else).
func parseCertificates(text string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(strings.TrimSpace(text))
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("is not PEM (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a PEM %q block, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a certificate does not parse: %v", err)
		}
		out = append(out, c)
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	if len(out) == 0 {
		return nil, errors.New("is empty")
	}
	return out, nil
}

// parsePrivateKey parses one PEM RSA private key (PKCS #1 or #8) and
// returns it with its PKCS #8 encoding. Its errors never quote the key.
func parsePrivateKey(text string) (crypto.Signer, []byte, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(text)))
	if block == nil || len(strings.TrimSpace(string(rest))) > 0 {
		return nil, nil, errors.New("must be one PEM private key (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return nil, nil, errors.New("ECDSA keys are not accepted for SSL termination: use RSA")
	default:
		return nil, nil, fmt.Errorf("holds a PEM %q block, want RSA PRIVATE KEY or PRIVATE KEY (an encrypted key must be decrypted first)", block.Type)
	}
	if err != nil {
		return nil, nil, errors.New("the private key does not parse")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, errors.New("the private key does not parse")
		}
		return k, der, nil
	case *ecdsa.PrivateKey:
		return nil, nil, errors.New("ECDSA keys are not accepted for SSL termination: use RSA")
	}
	return nil, nil, errors.New("only RSA keys are accepted for SSL termination")
}
