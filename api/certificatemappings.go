package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/store"
)

// CertificateMappings implements CertificateMappingService: the
// certificates an SSL-terminated load balancer presents by host name
// (reference: certificatemappings.rst). The mappings belong to the SSL
// termination, whose certificate is the catch-all for host names no
// mapping matches: without a termination there are none (404), and
// deleting the termination deletes them with their keys.
//
// Host names are unique per load balancer (compared in lower case, and
// stored so). Overlapping names are allowed, as the reference's own
// examples (rackspace.com and *.rackspace.com): the proxy honours the most
// specific match, an exact name before the longest wildcard suffix
// (Envoy's filter chain match on server_names). A wildcard is "*." and a
// host name; "*.example.com" does not match "example.com".
type CertificateMappings struct {
	lbaasv1.UnimplementedCertificateMappingServiceServer
	keyedChild
}

// NewCertificateMappings returns the CertificateMappingService; cfg.Secrets
// seals the private keys it stores.
func NewCertificateMappings(st *store.Store, auth Authorizer, cfg Config) *CertificateMappings {
	return &CertificateMappings{keyedChild: newKeyedChild(st, auth, cfg)}
}

func noMapping(id uint32) error {
	return NotFound(fmt.Sprintf("Certificate mapping %d not found", id))
}

// mappingOut is a mapping as answered: as stored, without the key.
func mappingOut(m *store.CertificateMapping) *lbaasv1.CertificateMapping {
	out := &lbaasv1.CertificateMapping{Id: proto.Uint32(m.ID), HostName: proto.String(m.HostName), Certificate: proto.String(m.Certificate)}
	if m.Intermediate != "" {
		out.IntermediateCertificate = proto.String(m.Intermediate)
	}
	out.SslFingerprint, out.SslCommonName = facts(m.Certificate)
	return out
}

// termination reads a load balancer and its SSL termination (404 without one).
func (s *CertificateMappings) termination(ctx context.Context, account string, lbID uint32) (*store.SSLTermination, error) {
	lb, err := s.read(ctx, account, lbID)
	if err != nil {
		return nil, err
	}
	if lb.SSLTermination == nil {
		return nil, noTermination()
	}
	return lb.SSLTermination, nil
}

// ListCertificateMappings lists the mappings: id and host name only (reference).
func (s *CertificateMappings) ListCertificateMappings(ctx context.Context, req *lbaasv1.LoadBalancerRef) (*lbaasv1.CertificateMappingsResponse, error) {
	t, err := s.termination(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	out := &lbaasv1.CertificateMappingsResponse{}
	for _, m := range t.Mappings {
		out.CertificateMappings = append(out.CertificateMappings, &lbaasv1.CertificateMappingItem{
			CertificateMapping: &lbaasv1.CertificateMapping{Id: proto.Uint32(m.ID), HostName: proto.String(m.HostName)}})
	}
	return out, nil
}

// GetCertificateMapping shows a mapping (without its key).
func (s *CertificateMappings) GetCertificateMapping(ctx context.Context, req *lbaasv1.CertificateMappingRef) (*lbaasv1.CertificateMappingResponse, error) {
	t, err := s.termination(ctx, req.GetAccount(), req.GetLoadBalancerId())
	if err != nil {
		return nil, err
	}
	m := t.Mapping(req.GetCertificateMappingId())
	if m == nil {
		return nil, noMapping(req.GetCertificateMappingId())
	}
	return &lbaasv1.CertificateMappingResponse{CertificateMapping: mappingOut(m)}, nil
}

// AddCertificateMapping adds a mapping: hostName, certificate and
// privateKey are required, intermediateCertificate optional; all are
// validated together (as an SSL termination's). At most
// CERTIFICATE_MAPPING_LIMIT per load balancer.
func (s *CertificateMappings) AddCertificateMapping(ctx context.Context, req *lbaasv1.AddCertificateMappingRequest) (*lbaasv1.CertificateMappingResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetCertificateMapping()
	if in == nil {
		return nil, BadRequest("certificateMapping: is required")
	}
	var v validation
	host := mappingHostName(&v, in)
	var pair *keyPair
	if in.Certificate == nil || in.PrivateKey == nil {
		v.add("certificateMapping", "hostName, certificate and privateKey are required (intermediateCertificate may come with them)")
	} else {
		var errs []string
		pair, errs = parseKeyPair(mappingPEM(in.GetCertificate(), in.GetPrivateKey(), in.GetIntermediateCertificate()), s.now())
		v = append(v, errs...)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var out store.CertificateMapping
	err := s.commitChange(ctx, req.GetAccount(), req.GetLoadBalancerId(), func(_ *store.Tx, lb *store.LoadBalancer) error {
		t := lb.SSLTermination
		if t == nil {
			return noTermination()
		}
		if n := len(t.Mappings); n >= int(s.limits.CertificateMappings) {
			return OverLimit(fmt.Sprintf("CERTIFICATE_MAPPING_LIMIT: a load balancer may have at most %d certificate mappings", s.limits.CertificateMappings))
		}
		if err := uniqueHost(t, host, 0); err != nil {
			return err
		}
		id := t.LastMappingID + 1
		sealed, err := sealKey(s.keys, pair, store.MappingSecretContext(lb.ID, id))
		if err != nil {
			return err
		}
		out = store.CertificateMapping{ID: id, HostName: host, Certificate: in.GetCertificate(),
			Intermediate: in.GetIntermediateCertificate(), SealedKey: sealed}
		t.Mappings = append(t.Mappings, out)
		t.LastMappingID = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &lbaasv1.CertificateMappingResponse{CertificateMapping: mappingOut(&out)}, nil
}

// UpdateCertificateMapping changes the attributes given. A new
// certificate, key or intermediates is validated with the stored ones it
// does not replace: a certificate alone must match the stored key, a key
// alone the stored certificate, intermediates alone must sign it.
func (s *CertificateMappings) UpdateCertificateMapping(ctx context.Context, req *lbaasv1.UpdateCertificateMappingRequest) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	in := req.GetCertificateMapping()
	if in == nil || (in.HostName == nil && in.Certificate == nil && in.PrivateKey == nil && in.IntermediateCertificate == nil) {
		return nil, BadRequest("certificateMapping: give at least one of hostName, certificate, privateKey, intermediateCertificate")
	}
	var v validation
	var host string
	if in.HostName != nil {
		host = mappingHostName(&v, in)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	id := req.GetCertificateMappingId()
	err := s.changeMapping(ctx, req.GetAccount(), req.GetLoadBalancerId(), id, func(lb *store.LoadBalancer, m *store.CertificateMapping) error {
		t := lb.SSLTermination
		if in.HostName != nil {
			if err := uniqueHost(t, host, id); err != nil {
				return err
			}
			m.HostName = host
		}
		if in.Certificate == nil && in.PrivateKey == nil && in.IntermediateCertificate == nil {
			return nil
		}
		ctxt := store.MappingSecretContext(lb.ID, id)
		next := mappingPEM(m.Certificate, in.GetPrivateKey(), m.Intermediate)
		if in.Certificate != nil {
			next.cert = in.GetCertificate()
		}
		if in.IntermediateCertificate != nil {
			next.chain = in.GetIntermediateCertificate()
		}
		if in.PrivateKey == nil {
			stored, err := openKeyPEM(s.keys, m.SealedKey, ctxt)
			if err != nil {
				return err
			}
			next.key, next.keyField = stored, "privateKey (the stored one)"
		}
		pair, errs := parseKeyPair(next, s.now())
		if len(errs) > 0 {
			return BadRequest(errs...)
		}
		if in.PrivateKey != nil {
			sealed, err := sealKey(s.keys, pair, ctxt)
			if err != nil {
				return err
			}
			m.SealedKey = sealed
		}
		m.Certificate, m.Intermediate = next.cert, next.chain
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteCertificateMapping removes a mapping and its key.
func (s *CertificateMappings) DeleteCertificateMapping(ctx context.Context, req *lbaasv1.CertificateMappingRef) (*emptypb.Empty, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	id := req.GetCertificateMappingId()
	err := s.changeMapping(ctx, req.GetAccount(), req.GetLoadBalancerId(), id, func(lb *store.LoadBalancer, _ *store.CertificateMapping) error {
		t := lb.SSLTermination
		t.Mappings = slices.DeleteFunc(t.Mappings, func(m store.CertificateMapping) bool { return m.ID == id })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// changeMapping changes mapping id of a load balancer (commitChange): 404
// without SSL termination or without the mapping.
func (s *CertificateMappings) changeMapping(ctx context.Context, account string, lbID, id uint32,
	change func(lb *store.LoadBalancer, m *store.CertificateMapping) error) error {
	return s.commitChange(ctx, account, lbID, func(_ *store.Tx, lb *store.LoadBalancer) error {
		if lb.SSLTermination == nil {
			return noTermination()
		}
		m := lb.SSLTermination.Mapping(id)
		if m == nil {
			return noMapping(id)
		}
		return change(lb, m)
	})
}

// mappingPEM is a mapping's certificate, key and intermediates to validate.
func mappingPEM(cert, key, chain string) pemInput {
	return pemInput{field: "certificateMapping", keyField: "privateKey", cert: cert, key: key, chain: chain}
}

// uniqueHost refuses a host name another mapping (than except) has.
func uniqueHost(t *store.SSLTermination, host string, except uint32) error {
	for _, m := range t.Mappings {
		if m.ID != except && m.HostName == host {
			return BadRequest(fmt.Sprintf("certificateMapping.hostName: %q is the host name of certificate mapping %d already: host names are unique per load balancer", host, m.ID))
		}
	}
	return nil
}

// mappingHostName validates a mapping's host name and returns it in lower
// case: a host name of RFC 1123 labels, or "*." and one (a wildcard, as
// TLS certificates and Envoy's server_names have them). Not an IP
// address: clients send no server name (SNI) for an address. No final
// dot: server names have none.
func mappingHostName(v *validation, in *lbaasv1.CertificateMapping) string {
	const field = "certificateMapping.hostName"
	if in.HostName == nil || in.GetHostName() == "" {
		v.add(field, "is required")
		return ""
	}
	host := strings.ToLower(in.GetHostName())
	name := strings.TrimPrefix(host, "*.")
	switch {
	case len(host) > 253 || strings.HasSuffix(name, ".") || !hostnameRE.MatchString(name):
		v.add(field, "%q is not a host name (letters, digits and hyphens in dot-separated labels; a wildcard is *.example.com)", in.GetHostName())
	case looksNumeric(name):
		v.add(field, "%q is an address, not a host name: clients send no server name (SNI) for an address", in.GetHostName())
	}
	return host
}
