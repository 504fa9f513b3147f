package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// SealedKey is one sealed private key of the database and the load
// balancer it belongs to: its SSL termination's (MappingID 0) or one of
// its certificate mappings'.
type SealedKey struct {
	LoadBalancerID uint32
	MappingID      uint32
	Sealed         []byte
}

// Context is the context the key is sealed with.
func (k SealedKey) Context() []byte {
	if k.MappingID != 0 {
		return MappingSecretContext(k.LoadBalancerID, k.MappingID)
	}
	return SecretContext(k.LoadBalancerID)
}

// Owner names the key's owner in messages.
func (k SealedKey) Owner() string {
	if k.MappingID != 0 {
		return fmt.Sprintf("load balancer %d (certificate mapping %d)", k.LoadBalancerID, k.MappingID)
	}
	return fmt.Sprintf("load balancer %d", k.LoadBalancerID)
}

// SealedKeys lists the sealed private keys of load balancers that are not
// deleted (the keys a start-up checks the key-encryption key against and
// a key rotation re-wraps).
func (s *Store) SealedKeys(ctx context.Context) ([]SealedKey, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var lbs []LoadBalancer
	err := db.Select("id", "ssl_termination").Where("ssl_termination IS NOT NULL AND ssl_termination <> '' AND status <> ?", StatusDeleted).
		Order("id").Find(&lbs).Error
	if err != nil {
		return nil, err
	}
	var out []SealedKey
	for _, lb := range lbs {
		if t := lb.SSLTermination; t != nil {
			out = append(out, SealedKey{LoadBalancerID: lb.ID, Sealed: t.SealedKey})
			for _, m := range t.Mappings {
				out = append(out, SealedKey{LoadBalancerID: lb.ID, MappingID: m.ID, Sealed: m.SealedKey})
			}
		}
	}
	return out, nil
}

// RewrapKeys replaces each sealed private key (SSL terminations' and
// certificate mappings') by rewrap's result, in one transaction (all or
// none), and returns how many it replaced. The load
// balancers' configuration does not change (no revision, nothing to
// publish): only the wrapping of their data keys does.
func (s *Store) RewrapKeys(ctx context.Context, rewrap func(lbID uint32, sealed []byte) ([]byte, error)) (int, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	n := 0
	err := db.Transaction(func(tx *gorm.DB) error {
		var lbs []LoadBalancer
		if err := tx.Select("id", "ssl_termination").Where("ssl_termination IS NOT NULL AND ssl_termination <> ''").
			Order("id").Find(&lbs).Error; err != nil {
			return err
		}
		for _, lb := range lbs {
			t := lb.SSLTermination
			if t == nil {
				continue
			}
			sealed, err := rewrap(lb.ID, t.SealedKey)
			if err != nil {
				return fmt.Errorf("load balancer %d: %w", lb.ID, err)
			}
			t.SealedKey = sealed
			for i := range t.Mappings {
				m := &t.Mappings[i]
				if m.SealedKey, err = rewrap(lb.ID, m.SealedKey); err != nil {
					return fmt.Errorf("load balancer %d, certificate mapping %d: %w", lb.ID, m.ID, err)
				}
				n++
			}
			if err := tx.Model(&LoadBalancer{ID: lb.ID}).Select("SSLTermination").
				Updates(&LoadBalancer{SSLTermination: t}).Error; err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
