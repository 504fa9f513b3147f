package controlplane

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/store"
	"github.com/openlbaas/lbaas/translator"
	"github.com/openlbaas/lbaas/xds"
)

// SSL termination reaches the proxies as SDS secrets holding the private
// key in clear, so the publisher publishes a terminating load balancer
// only when the xDS port can tell who it sends the key to: with mutual TLS
// (Options.SecretsEntitled, which the cache asks for every stream that
// watches secrets). On a control plane whose xDS port does not
// authenticate its clients, such a load balancer is not published (its
// previous configuration, if any, stays in force) and goes to ERROR with
// errPlaintextXDS as its status description: fail closed, never a key
// on an unauthenticated channel, never a load balancer stuck pending.

// errPlaintextXDS is the status description of a terminating load
// balancer on a control plane without mutual TLS on its xDS port.
var errPlaintextXDS = errors.New("SSL termination is not published: the xDS port does not authenticate its clients, " +
	"and private keys are sent only to proxies authenticated as the load balancer's fleet. " +
	"Start lbaasd with mutual TLS on xDS (--xds-client-ca with --tls-cert and --tls-key; see docs/security.md), " +
	"or disable or delete the SSL termination")

// notPublished is a load balancer the publisher keeps from the data
// plane; its message is the status description as is.
type notPublished struct{ error }

// termination is the translator's view of a load balancer's SSL
// termination, its private key opened; nil when it has none or it is
// disabled.
func (p *Publisher) termination(lb *store.LoadBalancer) (*translator.TLSTermination, error) {
	t := lb.SSLTermination
	if t == nil || !t.Enabled {
		return nil, nil
	}
	if p.secretsEntitled == nil {
		return nil, notPublished{errPlaintextXDS}
	}
	if p.keys == nil {
		return nil, notPublished{errors.New("SSL termination is not published: this control plane has no secrets key (--secrets-key-file)")}
	}
	der, err := p.keys.Open(t.SealedKey, store.SecretContext(lb.ID))
	if err != nil {
		// The error names the key-encryption key's id, never the secret.
		return nil, notPublished{fmt.Errorf("SSL termination is not published: its private key does not open: %w", err)}
	}
	// The API seals the key's PKCS #8 encoding; Envoy reads PEM.
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	ciphers, ok := api.CipherProfiles[t.CipherProfile]
	if !ok {
		return nil, fmt.Errorf("SSL termination: unknown cipher profile %q", t.CipherProfile)
	}
	mappings, err := tlsMappings(lb.ID, t, p.keys)
	if err != nil {
		return nil, notPublished{fmt.Errorf("SSL termination is not published: %w", err)}
	}
	return &translator.TLSTermination{
		SecurePort: t.SecurePort, SecureTrafficOnly: t.SecureTrafficOnly, Ciphers: ciphers,
		TLS10: t.TLS10, TLS11: t.TLS11,
		Default:  translator.Certificate{Chain: pemChain(t.Certificate, t.Intermediate), PrivateKey: string(key)},
		Mappings: mappings,
	}, nil
}

// withoutSecrets is a load balancer's resources less its secrets: what may
// be written to the database (accepted_configs), which never holds a key.
func withoutSecrets(m map[xds.Key]*anypb.Any) map[xds.Key]*anypb.Any {
	out := make(map[xds.Key]*anypb.Any, len(m))
	for k, r := range m {
		if k.TypeURL != resource.SecretType {
			out[k] = r
		}
	}
	return out
}

// keptWithSecrets is what a kind keeps running of a load balancer in
// ERROR: the kept copy read back from the database holds no secret, so a
// kept secure listener takes the termination's current ones.
func keptWithSecrets(id uint32, keep, current map[xds.Key]*anypb.Any) map[xds.Key]*anypb.Any {
	if _, secure := keep[xds.Key{TypeURL: resource.ListenerType, Name: translator.SecureListenerName(id)}]; !secure {
		return keep
	}
	for k := range keep {
		if k.TypeURL == resource.SecretType {
			return keep // the in-memory copy, secrets included
		}
	}
	out := make(map[xds.Key]*anypb.Any, len(keep))
	for k, r := range keep {
		out[k] = r
	}
	for k, r := range current {
		if k.TypeURL == resource.SecretType {
			out[k] = r
		}
	}
	return out
}

// entitledStreams wires the cache's secret check.
func (p *Publisher) entitledStreams() {
	if p.secretsEntitled == nil {
		return
	}
	f := p.secretsEntitled
	p.cache.ServeSecrets(func(ctx context.Context, g xds.Group) bool { return f(ctx, g.Fleet) })
}
