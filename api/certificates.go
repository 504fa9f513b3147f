package api

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
)

// What SSL termination and certificate mappings share: reading and
// validating a certificate with its key and intermediates, sealing the
// key, and the read-only facts (fingerprint, common name) answered about
// a stored certificate.

// keyedChild is what the services storing private keys share: keys seals
// them, now is the time certificates must be valid at.
type keyedChild struct {
	lbChild
	keys *secrets.Keyring
	now  func() time.Time
}

func newKeyedChild(st *store.Store, auth Authorizer, cfg Config) keyedChild {
	return keyedChild{lbChild: newLBChild(st, auth, cfg), keys: cfg.Secrets, now: time.Now}
}

// pemInput is a certificate, its private key and intermediates as a
// request gives them. field prefixes the names its faults give
// ("sslTermination"); keyField is the key's name there (the reference
// spells it privatekey in SSL termination, privateKey in mappings).
type pemInput struct {
	field, keyField  string
	cert, key, chain string
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
func parseKeyPair(in pemInput, now time.Time) (*keyPair, []string) {
	field, certPEM, keyPEM, chainPEM := in.field, in.cert, in.key, in.chain
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
		v.add(field+"."+in.keyField, "%v", err)
	}
	if len(certs) == 0 {
		return nil, v
	}
	leaf := certs[0]
	if key != nil {
		if rsaKey, ok := key.(*rsa.PrivateKey); ok && rsaKey.N.BitLen() < MinRSABits {
			v.add(field+"."+in.keyField, "an RSA key must have at least %d bits (got %d)", MinRSABits, rsaKey.N.BitLen())
		} else if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
			v.add(field+"."+in.keyField, "does not match the certificate's public key")
		}
	}
	validAt(&v, field+".certificate", leaf, now)
	weakSignature(&v, field+".certificate", leaf)
	prev := leaf
	for i, c := range chain {
		f := fmt.Sprintf("%s.intermediateCertificate[%d]", field, i)
		// (A weak signature cannot be checked; weakSignature reported it.)
		if err := prev.CheckSignatureFrom(c); err != nil && !errors.As(err, new(x509.InsecureAlgorithmError)) {
			v.add(f, "does not sign the certificate before it (%q): intermediates go in order, the one that signs the certificate first", prev.Subject.CommonName)
			break
		}
		validAt(&v, f, c, now)
		if !bytes.Equal(c.RawIssuer, c.RawSubject) { // a root's own signature is not checked by clients
			weakSignature(&v, f, c)
		}
		prev = c
	}
	if len(v) > 0 {
		return nil, v
	}
	return &keyPair{leaf: leaf, key: der}, nil
}

// weakSignature refuses a certificate signed with an algorithm TLS
// clients refuse (MD5, SHA-1): Go's crypto/x509 cannot even check it.
func weakSignature(v *validation, field string, c *x509.Certificate) {
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		v.add(field, "is signed with %s, which TLS clients refuse: it needs a SHA-256 (or stronger) signature", c.SignatureAlgorithm)
	}
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

// sealKey seals a validated key, bound to context. Without a keyring the
// server cannot store keys: 503.
func sealKey(keys *secrets.Keyring, pair *keyPair, context []byte) ([]byte, error) {
	if keys == nil {
		return nil, Unavailable()
	}
	return keys.Seal(pair.key, context)
}

// openKeyPEM opens a stored key and returns it in PEM (PKCS #8), to
// validate it again with a new certificate.
func openKeyPEM(keys *secrets.Keyring, sealed, context []byte) (string, error) {
	if keys == nil {
		return "", Unavailable()
	}
	der, err := keys.Open(sealed, context)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// certificateFacts are the read-only facts answered about a stored
// certificate (Linode's ssl_fingerprint and ssl_commonname): the SHA-256
// fingerprint of its DER, in colon-separated upper-case hex, and its
// subject's common name. Both are empty if it does not parse (it did when
// it was stored).
func certificateFacts(certPEM string) (fingerprint, commonName string) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return "", ""
	}
	sum := sha256.Sum256(certs[0].Raw)
	hexSum := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, len(sum))
	for i := 0; i < len(hexSum); i += 2 {
		pairs = append(pairs, hexSum[i:i+2])
	}
	return strings.Join(pairs, ":"), certs[0].Subject.CommonName
}
