package controlplane

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/xds"
)

// benchmarkCertificateChange measures what replacing one load balancer's
// certificate and key costs the publisher among n load balancers, every
// fifth terminating TLS: translation, diff and the cache update. It
// reports the marshalled bytes the change publishes and the resources it
// touches: the secret alone (the listener names it, unchanged), whatever n.
func benchmarkCertificateChange(b *testing.B, n int) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := secrets.New(make([]byte, secrets.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	p := newPublisher(nil, Options{Keys: keys, SecretsEntitled: func(_ context.Context, _ string) bool { return true }}, log)
	p.cache = xds.NewCache("default", 1)
	p.tracker = xds.NewTracker(p.cache, p, xds.DefaultLimits, log, nil)
	// A 2048-bit RSA key's PKCS #8 encoding is about 1,200 bytes, its
	// certificate about 1,100 in PEM; the content does not matter here.
	key := func(lb uint32) []byte {
		der := make([]byte, 1200)
		_, _ = rand.Read(der)
		sealed, err := keys.Seal(der, store.SecretContext(lb))
		if err != nil {
			b.Fatal(err)
		}
		return sealed
	}
	cert := "-----BEGIN CERTIFICATE-----\n" + randomPEMBody(1100) + "-----END CERTIFICATE-----\n"
	lbs := storedFleet(n)
	for i, lb := range lbs {
		if i%5 == 0 {
			lb.SSLTermination = &store.SSLTermination{Certificate: cert, SealedKey: key(lb.ID), Enabled: true, SecurePort: 443,
				CipherProfile: api.CipherProfileDefault, TLS11: true}
		}
	}
	updates := map[xds.Group]*xds.Update{}
	for _, lb := range lbs {
		p.stage(lb, updates)
	}
	if err := p.cache.Apply(1, updates); err != nil {
		b.Fatal(err)
	}
	lb := lbs[0]
	sealed := [2][]byte{key(lb.ID), key(lb.ID)}
	rev := int64(1)
	var bytes, changed int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rev++
		lb.SSLTermination.SealedKey = sealed[rev%2]
		lb.Revision, lb.Status = rev, store.StatusPendingUpdate
		updates := map[xds.Group]*xds.Update{}
		p.stage(lb, updates)
		if err := p.cache.Apply(rev, updates); err != nil {
			b.Fatal(err)
		}
		bytes, changed = 0, 0
		for _, u := range updates {
			for typeURL, m := range u.Upsert {
				for _, a := range m {
					bytes += len(a.GetValue())
					changed++
					if typeURL != resource.SecretType {
						b.Fatalf("a certificate change touches a %s", typeURL)
					}
				}
			}
		}
	}
	b.ReportMetric(float64(bytes), "bytes/change")
	b.ReportMetric(float64(changed), "resources/change")
}

func randomPEMBody(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	out := make([]byte, 0, n+n/64)
	for i := range n {
		out = append(out, alphabet[i*7%64])
		if i%64 == 63 {
			out = append(out, '\n')
		}
	}
	return string(out) + "\n"
}

func BenchmarkCertificateChangeAmong10(b *testing.B)    { benchmarkCertificateChange(b, 10) }
func BenchmarkCertificateChangeAmong10000(b *testing.B) { benchmarkCertificateChange(b, 10_000) }
