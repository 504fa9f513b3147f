// Package pki mints a trial certificate authority and the certificates
// lbaasd and its xDS clients use (ECDSA P-256, crypto/x509 only): a server
// certificate for the control plane's listeners and client certificates
// naming a fleet (and optionally a node) with the SPIFFE-style URI SAN of
// package xdsauth. Production deployments bring their own CA; this is for
// trials, tests and small installations.
//
// Files: a CA directory holds ca.crt and ca.key; an issued certificate
// directory holds tls.crt, tls.key and a copy of ca.crt, so that one
// directory is everything a client (or the server) needs. Keys are PKCS #8
// PEM, mode 0600; files are replaced atomically (rename), which lbaasd's
// reloading and grpc-go's file watcher rely on.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/openlbaas/lbaas/internal/xdsauth"
)

// File names.
const (
	CACert = "ca.crt"
	CAKey  = "ca.key"
	Cert   = "tls.crt"
	Key    = "tls.key"
)

// CA is a certificate authority that can issue certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA valid for the given duration.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"lbaas"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := sign(tmpl, nil, key, nil, validity)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

// Write stores the CA in dir (created if needed). It refuses to overwrite
// an existing CA key.
func (ca *CA) Write(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CAKey)); err == nil {
		return fmt.Errorf("%s already exists: not replacing a CA", filepath.Join(dir, CAKey))
	}
	keyPEM, err := keyPEM(ca.Key)
	if err != nil {
		return err
	}
	if err := writeFile(dir, CAKey, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(dir, CACert, certPEM(ca.Cert.Raw), 0o644)
}

// LoadCA reads a CA written by Write.
func LoadCA(dir string) (*CA, error) {
	certBytes, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, err
	}
	keyBytes, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certBytes)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", filepath.Join(dir, CACert))
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACert), err)
	}
	if !c.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, CACert))
	}
	kb, _ := pem.Decode(keyBytes)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM key", filepath.Join(dir, CAKey))
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKey), err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || !ek.PublicKey.Equal(c.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", filepath.Join(dir, CAKey), filepath.Join(dir, CACert))
	}
	return &CA{Cert: c, Key: ek}, nil
}

// CertPEM is the CA certificate, PEM.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert.Raw) }

// Pair is an issued certificate and its key, PEM.
type Pair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// IssueClient issues an xDS client certificate naming id.
func (ca *CA) IssueClient(id xdsauth.Identity, validity time.Duration) (*Pair, error) {
	if id.Fleet == "" {
		return nil, errors.New("pki: a client certificate needs a fleet")
	}
	u, err := id.URI()
	if err != nil {
		return nil, err
	}
	cn := id.Fleet
	if id.Node != "" {
		cn = id.Node + "." + id.Fleet
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"lbaas"}},
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, validity)
}

// IssueServer issues a server certificate for the host names and IP
// addresses in hosts.
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (*Pair, error) {
	if len(hosts) == 0 {
		return nil, errors.New("pki: a server certificate needs at least one host")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{"lbaas"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, validity)
}

// SelfSignedRSA is a self-signed certificate for host with an RSA 2048
// key: what SSL termination takes (it refuses ECDSA keys, as the
// reference does), for trials and tests.
func SelfSignedRSA(host string, validity time.Duration) (*Pair, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-5 * time.Minute), NotAfter: time.Now().Add(validity), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &Pair{CertPEM: certPEM(der), Cert: cert,
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})}, nil
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := sign(tmpl, ca.Cert, key, ca.Key, validity)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Pair{CertPEM: certPEM(der), KeyPEM: kp, Cert: c}, nil
}

// Write stores the pair as dir/tls.crt and dir/tls.key, and ca as
// dir/ca.crt.
func (p *Pair) Write(dir string, ca *CA) error {
	if err := writeFile(dir, Key, p.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(dir, Cert, p.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFile(dir, CACert, certPEM(ca.Cert.Raw), 0o644)
}

func sign(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey, validity time.Duration) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	// A little slack for clocks that are slightly behind.
	tmpl.NotBefore = time.Now().Add(-5 * time.Minute)
	tmpl.NotAfter = time.Now().Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile replaces dir/name atomically.
func writeFile(dir, name string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
