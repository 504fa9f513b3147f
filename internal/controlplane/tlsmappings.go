package controlplane

import (
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
)

// tlsMappings are the certificate mappings of load balancer lbID's SSL
// termination as the translator takes them (TLSTermination.Mappings): each
// certificate followed by its intermediates, and its private key opened
// with keys, in PEM. The keys exist in clear only in the translator's
// input and the SDS secrets made from it.
func tlsMappings(lbID uint32, t *store.SSLTermination, keys *secrets.Keyring) ([]translator.CertificateMapping, error) {
	if t == nil || len(t.Mappings) == 0 {
		return nil, nil
	}
	if keys == nil {
		return nil, fmt.Errorf("load balancer %d: no secrets keyring to open its certificate mappings' keys", lbID)
	}
	out := make([]translator.CertificateMapping, 0, len(t.Mappings))
	for _, m := range t.Mappings {
		der, err := keys.Open(m.SealedKey, store.MappingSecretContext(lbID, m.ID))
		if err != nil {
			return nil, fmt.Errorf("load balancer %d, certificate mapping %d: %w", lbID, m.ID, err)
		}
		out = append(out, translator.CertificateMapping{ID: m.ID, HostName: m.HostName, Certificate: translator.Certificate{
			Chain:      pemChain(m.Certificate, m.Intermediate),
			PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		}})
	}
	return out, nil
}

// pemChain is a certificate followed by its intermediates, one PEM block
// after another.
func pemChain(cert, intermediates string) string {
	chain := strings.TrimSpace(cert) + "\n"
	if strings.TrimSpace(intermediates) != "" {
		chain += strings.TrimSpace(intermediates) + "\n"
	}
	return chain
}
