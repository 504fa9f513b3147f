package tlsreload_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/tlsreload"
	"github.com/openlbaas/lbaas/internal/xdsauth"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issueServer(t *testing.T, ca *pki.CA, dir string) *pki.Pair {
	t.Helper()
	p, err := ca.IssueServer([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(dir, ca); err != nil {
		t.Fatal(err)
	}
	return p
}

func clientCert(t *testing.T, ca *pki.CA) tls.Certificate {
	t.Helper()
	p, err := ca.IssueClient(xdsauth.Identity{Fleet: "f"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve accepts TLS connections on loopback and completes their handshake.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake connects trusting roots and returns the server's certificate.
func handshake(addr string, roots *x509.CertPool, cert *tls.Certificate) (*x509.Certificate, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 the client learns that its certificate was refused only
	// when it reads.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func pool(ca *pki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Replacing the certificate and key files changes what new handshakes
// present, without a restart.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	first := issueServer(t, ca, dir)
	src, err := tlsreload.New(tlsreload.Files{CertFile: filepath.Join(dir, pki.Cert), KeyFile: filepath.Join(dir, pki.Key),
		Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	addr := serve(t, src.ServerConfig())

	got, err := handshake(addr, pool(ca), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want the first certificate's %v", got.SerialNumber, first.Cert.SerialNumber)
	}

	second := issueServer(t, ca, dir)
	waitFor(t, "the new certificate to be served", func() bool {
		got, err := handshake(addr, pool(ca), nil)
		return err == nil && got.SerialNumber.Cmp(second.Cert.SerialNumber) == 0
	})
}

// Replacing the client CA file changes which client certificates are
// accepted.
func TestClientCAReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	issueServer(t, ca, dir)
	caFile := filepath.Join(t.TempDir(), "clients.crt")
	oldClients, newClients := newCA(t), newCA(t)
	writeCA := func(c *pki.CA) {
		t.Helper()
		// Replaced atomically, as a rotation should.
		tmp := caFile + ".new"
		if err := os.WriteFile(tmp, c.CertPEM(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, caFile); err != nil {
			t.Fatal(err)
		}
	}
	writeCA(oldClients)
	src, err := tlsreload.New(tlsreload.Files{CertFile: filepath.Join(dir, pki.Cert), KeyFile: filepath.Join(dir, pki.Key),
		ClientCAFile: caFile, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	addr := serve(t, src.MutualConfig())
	oldCert, newCert := clientCert(t, oldClients), clientCert(t, newClients)

	if _, err := handshake(addr, pool(ca), nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v, want certificate required", err)
	}
	if _, err := handshake(addr, pool(ca), &oldCert); err != nil {
		t.Fatalf("client of the configured CA: %v", err)
	}
	if _, err := handshake(addr, pool(ca), &newCert); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	writeCA(newClients)
	waitFor(t, "the new client CA to be used", func() bool {
		_, err := handshake(addr, pool(ca), &newCert)
		return err == nil
	})
	if _, err := handshake(addr, pool(ca), &oldCert); err == nil {
		t.Error("a client of the replaced CA is still accepted")
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	issueServer(t, ca, dir)
	cert, key := filepath.Join(dir, pki.Cert), filepath.Join(dir, pki.Key)
	for name, f := range map[string]tlsreload.Files{
		"no key":           {CertFile: cert},
		"missing cert":     {CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key},
		"key as cert":      {CertFile: key, KeyFile: key},
		"missing CA":       {CertFile: cert, KeyFile: key, ClientCAFile: filepath.Join(dir, "nope.crt")},
		"key as client CA": {CertFile: cert, KeyFile: key, ClientCAFile: key},
	} {
		if s, err := tlsreload.New(f); err == nil {
			s.Close()
			t.Errorf("%s: New(%+v) succeeded", name, f)
		}
	}
}
