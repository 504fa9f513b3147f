package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// SealedKey is one sealed private key of the database and the load
// balancer it belongs to.
type SealedKey struct {
	LoadBalancerID uint32
	Sealed         []byte
}

// SealedKeys lists the sealed private keys of load balancers that are not
// deleted (the keys a start-up checks the key-encryption key against and
// a key rotation re-wraps).
func (s *Store) SealedKeys(ctx context.Context) ([]SealedKey, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var lbs []LoadBalancer
	err := db.Select("id", "ssl_termination").Where("ssl_termination IS NOT NULL AND ssl_termination <> '' AND status <> ?", StatusDeleted).
		Order("id").Find(&lbs).Error
	if err != nil {
		return nil, err
	}
	var out []SealedKey
	for _, lb := range lbs {
		if lb.SSLTermination != nil {
			out = append(out, SealedKey{LoadBalancerID: lb.ID, Sealed: lb.SSLTermination.SealedKey})
		}
	}
	return out, nil
}

// RewrapKeys replaces each sealed private key by rewrap's result, in one
// transaction (all or none), and returns how many it replaced. The load
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
