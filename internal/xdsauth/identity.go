// Package xdsauth authorizes xDS clients by their client certificate.
//
// Identity scheme. A client certificate of the xDS port names its holder
// with one SPIFFE-style URI SAN in the trust domain "lbaas":
//
//	spiffe://lbaas/fleet/<fleet>               any node of the fleet
//	spiffe://lbaas/fleet/<fleet>/node/<node>   one node of the fleet
//
// <fleet> is the fleet (the xDS node's cluster field) and <node> the xDS
// node id; both are SPIFFE path segments (letters, digits, '.', '-', '_').
//
// Authorization. Over mutual TLS, every DiscoveryRequest and
// DeltaDiscoveryRequest a client sends is checked against its certificate:
// the xDS node (sent in the first request, remembered for the stream) must
// claim the certificate's fleet — an empty cluster means the default fleet
// and is checked as such — and, when the certificate names a node, that
// node id. A request that claims anything else ends the stream with
// PermissionDenied before the xDS server sees it. Without a verified
// client certificate (plaintext on loopback) nothing is enforced: the
// interceptors are installed only when the xDS port requires mutual TLS.
package xdsauth

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// TrustDomain is the SPIFFE trust domain of lbaas identities.
var TrustDomain = spiffeid.RequireTrustDomainFromString("lbaas")

// Identity is who a client certificate speaks for.
type Identity struct {
	Fleet string
	// Node is the xDS node id the certificate is bound to; empty for a
	// fleet-wide certificate.
	Node string
}

// URI is the identity's SPIFFE ID, for the certificate's URI SAN.
func (id Identity) URI() (*url.URL, error) {
	segs := []string{"fleet", id.Fleet}
	if id.Node != "" {
		segs = append(segs, "node", id.Node)
	}
	sid, err := spiffeid.FromSegments(TrustDomain, segs...)
	if err != nil {
		return nil, fmt.Errorf("xdsauth: fleet %q node %q: %w", id.Fleet, id.Node, err)
	}
	return sid.URL(), nil
}

func (id Identity) String() string {
	if u, err := id.URI(); err == nil {
		return u.String()
	}
	return fmt.Sprintf("fleet %q node %q", id.Fleet, id.Node)
}

// Parse reads an identity from a SPIFFE ID of the scheme above.
func Parse(u *url.URL) (Identity, error) {
	sid, err := spiffeid.FromURI(u)
	if err != nil {
		return Identity{}, err
	}
	if !sid.MemberOf(TrustDomain) {
		return Identity{}, fmt.Errorf("%s is not in trust domain %s", sid, TrustDomain)
	}
	// A valid SPIFFE ID's path is empty or "/seg/seg..." with no empty,
	// "." or ".." segment.
	segs := strings.Split(strings.TrimPrefix(sid.Path(), "/"), "/")
	switch {
	case len(segs) == 2 && segs[0] == "fleet":
		return Identity{Fleet: segs[1]}, nil
	case len(segs) == 4 && segs[0] == "fleet" && segs[2] == "node":
		return Identity{Fleet: segs[1], Node: segs[3]}, nil
	}
	return Identity{}, fmt.Errorf("%s is not /fleet/<fleet> or /fleet/<fleet>/node/<node>", sid)
}

// FromCertificate returns the identity a (verified) client certificate
// names: exactly one URI SAN of the lbaas trust domain.
func FromCertificate(c *x509.Certificate) (Identity, error) {
	var found []Identity
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" || u.Host != TrustDomain.Name() {
			continue
		}
		id, err := Parse(u)
		if err != nil {
			return Identity{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("the certificate (subject %q) has no %s URI SAN", c.Subject, "spiffe://"+TrustDomain.Name()+"/fleet/...")
	case 1:
		return found[0], nil
	}
	return Identity{}, fmt.Errorf("the certificate (subject %q) names %d lbaas identities, want one", c.Subject, len(found))
}

// Entitled tells whether the peer of a gRPC call (its context) presented
// a verified client certificate naming fleet: such a client may be sent
// the fleet's secrets (xds.Cache.ServeSecrets).
func Entitled(ctx context.Context, fleet string) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return false
	}
	id, err := FromCertificate(ti.State.VerifiedChains[0][0])
	return err == nil && id.Fleet == fleet
}
