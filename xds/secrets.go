package xds

import (
	"context"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Secrets (SDS: the certificates and private keys of TLS termination) are
// served over ADS like the other named types, with one more rule: a stream
// gets them only when the function given to ServeSecrets says its peer is
// entitled to its group's — with mutual TLS, a verified client certificate
// of that fleet. Without ServeSecrets no stream gets any: a watch for the
// secret type is refused with PermissionDenied, which ends the stream.
// That holds whatever the publisher does, so a plaintext xDS port (no
// authenticated peer) never sends a key, even one published by mistake.
//
// The group already confines a client to its fleet's resources (the
// node's cluster names the fleet, and the xDS authorizer checks it against
// the certificate): this check makes the secrets depend on the
// certificate itself, not on the authorizer being installed.

// ServeSecrets lets the cache send a group's secrets to the streams for
// which entitled returns true; entitled gets the stream's context (its
// gRPC peer) and the group its node claims. Set it before serving.
func (c *Cache) ServeSecrets(entitled func(ctx context.Context, g Group) bool) {
	c.mu.Lock()
	c.secretsFor = entitled
	c.mu.Unlock()
}

// entitled refuses a watch for secrets from a stream that may not have
// them. Callers hold c.mu.
func (c *Cache) entitled(id int64, bound bool, g Group, typeURL string) error {
	if typeURL != resource.SecretType {
		return nil
	}
	cn := c.conns[id]
	if c.secretsFor != nil && bound && cn != nil && c.secretsFor(cn.ctx, g) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied,
		"xds: secrets are sent only to clients authenticated as a proxy of fleet %q (mutual TLS on the xDS port)", g.Fleet)
}
