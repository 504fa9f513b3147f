package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// Every cipher profile the API offers maps onto suites Envoy offers.
func TestCipherProfilesTranslate(t *testing.T) {
	for name, ciphers := range api.CipherProfiles {
		lb := &translator.LoadBalancer{ID: 1, Protocol: "HTTP", Port: 80, Algorithm: "RANDOM", VIPs: []translator.VIP{{Address: "127.1.0.1"}},
			TLS: &translator.TLSTermination{SecurePort: 443, Ciphers: ciphers, Default: translator.Certificate{Chain: "c", PrivateKey: "k"}}}
		out, err := translator.Translate(lb)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := out.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// testKey is what the API seals: a key's PKCS #8 encoding (here not a
// real key: nothing parses it on the way). testKeyPEM is what proxies get.
const (
	testKey    = "TESTKEYMATERIAL"
	testKeyPEM = "-----BEGIN PRIVATE KEY-----\nVEVTVEtFWU1BVEVSSUFM\n-----END PRIVATE KEY-----\n"
)

func testKeyring(t *testing.T) *secrets.Keyring {
	k, err := secrets.New(make([]byte, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// terminate gives a stored load balancer an enabled SSL termination (a
// change waiting for the data plane), its key sealed as the API seals it.
func terminate(t *testing.T, st *store.Store, keys *secrets.Keyring, id uint32) {
	t.Helper()
	sealed, err := keys.Seal([]byte(testKey), store.SecretContext(id))
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := keys.Seal([]byte(testKey), store.MappingSecretContext(id, 5))
	if err != nil {
		t.Fatal(err)
	}
	editStored(t, st, id, func(lb *store.LoadBalancer) {
		lb.Status = store.StatusPendingUpdate
		lb.SSLTermination = &store.SSLTermination{Certificate: "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n",
			Intermediate: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n", SealedKey: sealed, Enabled: true,
			SecurePort: 443, CipherProfile: api.CipherProfileDefault, TLS10: true, TLS11: true,
			Mappings: []store.CertificateMapping{{ID: 5, HostName: "api.example.com",
				Certificate: "-----BEGIN CERTIFICATE-----\nAPI\n-----END CERTIFICATE-----\n", SealedKey: mapped}}}
	})
}

// startPublisher runs a publisher; logged returns what it logged.
func startPublisher(t *testing.T, st *store.Store, opts Options) (p *Publisher, logged func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var b strings.Builder
	var mu sync.Mutex
	opts.DefaultFleet = "default"
	p, err := New(ctx, st, opts, slog.New(slog.NewTextHandler(lockedWriter{&mu, &b}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	return p, func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

// A control plane whose xDS port does not authenticate its clients never
// publishes a key: the terminating load balancer goes to ERROR saying
// how to fix it, and its previous configuration stays.
func TestPlaintextXDSHoldsTerminationBack(t *testing.T) {
	st := openStore(t)
	keys := testKeyring(t)
	id := insert(t, st, store.StatusActive, 80)
	p, logged := startPublisher(t, st, Options{Keys: keys})
	terminate(t, st, keys, id)
	lb := waitStatus(t, st, id, store.StatusError)
	if !strings.Contains(lb.StatusDescription, "--xds-client-ca") || strings.Contains(lb.StatusDescription, "rejected by the data plane") {
		t.Errorf("status description %q", lb.StatusDescription)
	}
	g := xds.Group{Fleet: "default", Kind: xds.KindEnvoy}
	if s := p.Cache().Resources(g, resource.SecretType); len(s) > 0 {
		t.Errorf("secrets published: %v", s)
	}
	if _, ok := p.Cache().Resources(g, resource.ListenerType)[translator.SecureListenerName(id)]; ok {
		t.Error("the secure listener is published")
	}
	if _, ok := p.Cache().Resources(g, resource.ListenerType)[translator.ResourceName(id)]; !ok {
		t.Error("the previous (plain) listener is gone")
	}
	if l := logged(); strings.Contains(l, testKey) || strings.Contains(l, "VEVTVEtFWU1BVEVSSUFM") {
		t.Error("the log holds the key")
	}
}

// With authenticated clients, the termination is published: the secure
// listener and its secret (key opened, certificate chain with the
// intermediate) in the load balancer's fleet only; disabling it removes
// the secret. The key is never logged nor kept in the database.
func TestTerminationPublishesSecrets(t *testing.T) {
	st := openStore(t)
	keys := testKeyring(t)
	id := insert(t, st, store.StatusActive, 80)
	p, logged := startPublisher(t, st, Options{Keys: keys, SecretsEntitled: func(context.Context, string) bool { return true }})
	terminate(t, st, keys, id)
	waitStatus(t, st, id, store.StatusActive)
	g := xds.Group{Fleet: "default", Kind: xds.KindEnvoy}
	sec, ok := p.Cache().Resources(g, resource.SecretType)[translator.SecretName(id)].(*tlsv3.Secret)
	if !ok {
		t.Fatalf("no secret %s", translator.SecretName(id))
	}
	c := sec.GetTlsCertificate()
	if c.GetPrivateKey().GetInlineString() != testKeyPEM || !strings.Contains(c.GetCertificateChain().GetInlineString(), "LEAF\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCA") {
		t.Errorf("secret %v", sec)
	}
	if _, ok := p.Cache().Resources(g, resource.ListenerType)[translator.SecureListenerName(id)].(*listenerv3.Listener); !ok {
		t.Error("no secure listener")
	}
	// The certificate mapping is a secret of its own.
	m, ok := p.Cache().Resources(g, resource.SecretType)[translator.MappingSecretName(id, 5)].(*tlsv3.Secret)
	if !ok || m.GetTlsCertificate().GetPrivateKey().GetInlineString() != testKeyPEM {
		t.Errorf("mapping secret %v", m)
	}
	if s := p.Cache().Resources(xds.Group{Fleet: "default", Kind: xds.KindGRPC}, resource.SecretType); len(s) > 0 {
		t.Errorf("proxyless clients get secrets: %v", s)
	}
	editStored(t, st, id, func(lb *store.LoadBalancer) { lb.Status, lb.SSLTermination.Enabled = store.StatusPendingUpdate, false })
	waitStatus(t, st, id, store.StatusActive)
	if s := p.Cache().Resources(g, resource.SecretType); len(s) > 0 {
		t.Errorf("secrets left after disabling: %v", s)
	}
	if l := logged(); strings.Contains(l, testKey) || strings.Contains(l, "VEVTVEtFWU1BVEVSSUFM") {
		t.Error("the log holds the key")
	}
}

// The copy of what a kind keeps running that goes to the database
// (accepted_configs) never holds a secret.
func TestKeptConfigurationHoldsNoSecret(t *testing.T) {
	lb := &translator.LoadBalancer{ID: 3, Protocol: "HTTP", Port: 80, Algorithm: "RANDOM", VIPs: []translator.VIP{{Address: "127.1.0.1"}},
		TLS: &translator.TLSTermination{SecurePort: 443, Ciphers: api.CipherProfiles[api.CipherProfileDefault],
			Default: translator.Certificate{Chain: "c", PrivateKey: testKeyPEM}}}
	out, err := translator.Translate(lb)
	if err != nil {
		t.Fatal(err)
	}
	all, err := keyed(out.Envoy)
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeResources(withoutSecrets(all))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "VEVTVEtFWU1BVEVSSUFM") {
		t.Error("the encoded copy holds the key")
	}
	back, err := decodeResources(b)
	if err != nil {
		t.Fatal(err)
	}
	// Read back, the kept secure listener takes the current secrets.
	restored := keptWithSecrets(3, back, all)
	if _, ok := restored[xds.Key{TypeURL: resource.SecretType, Name: translator.SecretName(3)}]; !ok || len(restored) != len(all) {
		t.Errorf("restored %d of %d resources", len(restored), len(all))
	}
}

// The usage's metrics sink reads the secure listener's stats under the
// prefix the translator gives it.
func TestSecureStatPrefixIsTheSinks(t *testing.T) {
	if got, want := translator.SecureStatPrefix(7), translator.ResourceName(7)+loadstats.SecureSuffix; got != want {
		t.Errorf("translator %q, loadstats %q", got, want)
	}
}
