// Package tlsreload serves TLS from PEM files that may be replaced while
// the process runs: the certificate, its key and the client CA bundle are
// re-read every interval (grpc-go's pemfile certificate provider does the
// watching) and each new handshake uses the latest valid files. A
// replacement that does not parse (a half-written file, a key that does
// not match) is ignored until it does; the previous files stay in use.
package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/credentials/tls/certprovider"
	"google.golang.org/grpc/credentials/tls/certprovider/pemfile"
)

// DefaultInterval is how often the files are re-read.
const DefaultInterval = 10 * time.Second

// Files names the PEM files.
type Files struct {
	// CertFile and KeyFile are the server certificate (chain) and key.
	// grpc-go's watcher wants them in one directory, so that a rotation
	// replacing both is seen whole.
	CertFile, KeyFile string
	// ClientCAFile, when set, holds the CA certificates client
	// certificates are verified against (mutual TLS).
	ClientCAFile string
	// Interval between re-reads; DefaultInterval when zero.
	Interval time.Duration
}

// Source hands out the current certificate and client CAs.
type Source struct {
	identity certprovider.Provider
	roots    certprovider.Provider // nil without a client CA
}

// New checks the files (so that a bad flag fails at startup, not at the
// first handshake) and starts watching them.
func New(f Files) (*Source, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tlsreload: a certificate and a key file are required")
	}
	if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
		return nil, fmt.Errorf("certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
	}
	if f.ClientCAFile != "" {
		pem, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", f.ClientCAFile)
		}
	}
	interval := f.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	id, err := pemfile.NewProvider(pemfile.Options{CertFile: f.CertFile, KeyFile: f.KeyFile, RefreshDuration: interval})
	if err != nil {
		return nil, err
	}
	s := &Source{identity: id}
	if f.ClientCAFile != "" {
		if s.roots, err = pemfile.NewProvider(pemfile.Options{RootFile: f.ClientCAFile, RefreshDuration: interval}); err != nil {
			id.Close()
			return nil, err
		}
	}
	// The watchers read the files in the background: make sure they have
	// (a file replaced by a bad one since the check above would otherwise
	// hold every handshake until its timeout).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range []certprovider.Provider{s.identity, s.roots} {
		if p == nil {
			continue
		}
		if _, err := p.KeyMaterial(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("tlsreload: reading %s, %s, %s: %w", f.CertFile, f.KeyFile, f.ClientCAFile, err)
		}
	}
	return s, nil
}

// Close stops watching the files.
func (s *Source) Close() {
	s.identity.Close()
	if s.roots != nil {
		s.roots.Close()
	}
}

func (s *Source) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	km, err := s.identity.KeyMaterial(hello.Context())
	if err != nil {
		return nil, err
	}
	if len(km.Certs) == 0 {
		return nil, errors.New("tlsreload: no certificate")
	}
	return &km.Certs[0], nil
}

// ServerConfig is a server TLS configuration with the current
// certificate; no client certificate is asked for. nextProtos are the
// ALPN protocols offered (empty lets net/http and grpc-go add theirs).
func (s *Source) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certificate,
		NextProtos:     nextProtos,
	}
}

// MutualConfig is ServerConfig with client certificates required and
// verified against the current client CAs; it needs a ClientCAFile.
// The configuration is chosen per handshake (GetConfigForClient), which
// bypasses what grpc-go adds to the outer one: give "h2" for gRPC.
func (s *Source) MutualConfig(nextProtos ...string) *tls.Config {
	base := s.ServerConfig(nextProtos...)
	if s.roots == nil {
		// Fail closed: no CA verifies nobody.
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return nil, errors.New("tlsreload: mutual TLS without a client CA")
		}
		return base
	}
	base.ClientAuth = tls.RequireAndVerifyClientCert
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		km, err := s.roots.KeyMaterial(hello.Context())
		if err != nil {
			return nil, err
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = km.Roots
		return c, nil
	}
	return base
}
