package controlplane

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
)

func newKeyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	kek := make([]byte, secrets.KeySize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	k, err := secrets.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A mapping's stored certificate and sealed key become a chain and key
// that pair (crypto/tls reads them as a server certificate would be), and
// a key another keyring sealed is an error naming the mapping.
func TestTLSMappings(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api.example.com"},
		DNSNames: []string{"api.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	keys := newKeyring(t)
	sealed, err := keys.Seal(pkcs8, store.MappingSecretContext(7, 3))
	if err != nil {
		t.Fatal(err)
	}
	term := &store.SSLTermination{Mappings: []store.CertificateMapping{
		{ID: 3, HostName: "api.example.com", Certificate: certPEM, Intermediate: certPEM, SealedKey: sealed}}}

	got, err := tlsMappings(7, term, keys)
	if err != nil || len(got) != 1 {
		t.Fatalf("tlsMappings: %v, %v", got, err)
	}
	m := got[0]
	if m.ID != 3 || m.HostName != "api.example.com" || strings.Count(m.Chain, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("mapping %+v", m)
	}
	if _, err := tls.X509KeyPair([]byte(m.Chain), []byte(m.PrivateKey)); err != nil {
		t.Errorf("the chain and key do not pair: %v", err)
	}
	// The key is bound to its load balancer and mapping.
	if _, err := tlsMappings(8, term, keys); err == nil || !strings.Contains(err.Error(), "load balancer 8, certificate mapping 3") {
		t.Errorf("another load balancer's context: %v", err)
	}
	if _, err := tlsMappings(7, term, newKeyring(t)); err == nil || !strings.Contains(err.Error(), "certificate mapping 3") {
		t.Errorf("another keyring: %v", err)
	}
	if got, err := tlsMappings(7, &store.SSLTermination{}, nil); got != nil || err != nil {
		t.Errorf("no mappings: %v, %v", got, err)
	}
}
