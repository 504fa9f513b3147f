package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/xdsauth"
)

func TestMintAndVerify(t *testing.T) {
	caDir, out := filepath.Join(t.TempDir(), "ca"), t.TempDir()
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(caDir); err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(caDir); err == nil || !strings.Contains(err.Error(), "not replacing") {
		t.Errorf("a second Write over the CA: %v, want a refusal", err)
	}
	if fi, err := os.Stat(filepath.Join(caDir, pki.CAKey)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode: %v, %v", fi, err)
	}
	loaded, err := pki.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Fatal("LoadCA read another certificate")
	}

	client, err := loaded.IssueClient(xdsauth.Identity{Fleet: "edge", Node: "n1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Write(out, loaded); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, pki.Cert), filepath.Join(out, pki.Key))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify as a client: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Error("a client certificate verifies as a server certificate")
	}
	if id, err := xdsauth.FromCertificate(leaf); err != nil || id != (xdsauth.Identity{Fleet: "edge", Node: "n1"}) {
		t.Errorf("identity %+v, %v", id, err)
	}

	srv, err := loaded.IssueServer([]string{"127.0.0.1", "::1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.2"}); err == nil {
		t.Error("server certificate verifies for a host it does not name")
	}

	if _, err := loaded.IssueClient(xdsauth.Identity{}, time.Hour); err == nil {
		t.Error("a client certificate without a fleet was issued")
	}
	if _, err := loaded.IssueClient(xdsauth.Identity{Fleet: "a/b"}, time.Hour); err == nil {
		t.Error("a client certificate for fleet a/b was issued")
	}
	if _, err := pki.LoadCA(out); err == nil {
		t.Error("LoadCA accepted a directory without a CA key")
	}
}
