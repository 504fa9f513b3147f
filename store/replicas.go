package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Replicas sharing a PostgreSQL database agree on status through these
// tables (docs/architecture.md, "Replicas"): each running lbaasd holds a
// lease (Replica), names the fleets it has xDS clients of (ReplicaFleet)
// and records, per load balancer, the newest revision its clients applied
// (ReplicaVerdict). A load balancer waiting for the data plane settles
// when every live replica with clients of its fleet applied its revision.
// Times are the database's (now()), so replicas' clocks do not matter.

// Replica is a running lbaasd serving xDS from this database.
type Replica struct {
	ID string `gorm:"primaryKey;size:64"`
	// Probes says that it runs the health prober, which takes its share
	// of the monitors' shards.
	Probes bool `gorm:"not null;default:false"`
	// Published is the revision it has published: it needs only the
	// changes after it.
	Published int64     `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index"`
	StartedAt time.Time `gorm:"not null"`
}

// ReplicaFleet says that a replica has xDS clients of a fleet.
type ReplicaFleet struct {
	ReplicaID string `gorm:"primaryKey;size:64"`
	Fleet     string `gorm:"primaryKey;size:128"`
}

// ReplicaVerdict is the newest revision of a load balancer that every
// client of one replica applied.
type ReplicaVerdict struct {
	ReplicaID      string `gorm:"primaryKey;size:64"`
	LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
	Revision       int64  `gorm:"not null"`
}

// AcceptedConfig is what one kind of data plane (envoy, grpc) keeps
// running of a load balancer in ERROR: the configuration its clients last
// accepted (opaque to the store; empty when they never accepted one), so
// that a restart does not publish again what they refused.
type AcceptedConfig struct {
	LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
	Kind           string `gorm:"primaryKey;size:16"`
	Fleet          string `gorm:"size:128;not null"`
	Config         []byte `gorm:"not null"`
}

// ErrLeaseLost reports that a replica's lease expired (or was never
// taken): it no longer counts, and must register again.
var ErrLeaseLost = errors.New("store: the replica's lease expired")

func (s *Store) replicated() error {
	if s.dialect != "postgres" {
		return errors.New("store: replicas need PostgreSQL")
	}
	return nil
}

// interval is a lease length in SQL, bound as milliseconds.
const leaseExpiry = "now() + ? * interval '1 millisecond'"

// RegisterReplica takes a lease for a new replica, in a transaction of
// its own revision, which it returns: the replica publishes from that
// revision, so no change after it is pruned while the lease lives.
func (s *Store) RegisterReplica(ctx context.Context, id string, lease time.Duration, probes bool) (int64, error) {
	if err := s.replicated(); err != nil {
		return 0, err
	}
	return s.Update(ctx, func(tx *Tx) error {
		// The revision this transaction will take is not known before its
		// commit; the one before it is as safe a floor for pruning.
		return tx.db.Exec("INSERT INTO replicas (id, probes, published, expires_at, started_at) "+
			"VALUES (?, ?, (SELECT value FROM revisions WHERE id = 1), "+leaseExpiry+", now())",
			id, probes, lease.Milliseconds()).Error
	})
}

// LiveProbers counts the live replicas that run the health prober (1 on
// SQLite: the one process).
func (s *Store) LiveProbers(ctx context.Context) (int, error) {
	if s.dialect != "postgres" {
		return 1, nil
	}
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var n int64
	err := db.Model(&Replica{}).Where("probes AND expires_at > now()").Count(&n).Error
	return int(n), err
}

// RenewReplica extends a live lease and records the revision the replica
// has published. A lease that has already expired is not renewed:
// ErrLeaseLost.
func (s *Store) RenewReplica(ctx context.Context, id string, published int64, lease time.Duration) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	res := db.Exec("UPDATE replicas SET expires_at = "+leaseExpiry+", published = GREATEST(published, ?) WHERE id = ? AND expires_at > now()",
		lease.Milliseconds(), published, id)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// RemoveReplica ends a replica's lease at once (a clean shutdown): the
// others stop waiting for its clients.
func (s *Store) RemoveReplica(ctx context.Context, id string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		return removeReplicas(db, "id = ?", id)
	})
}

func removeReplicas(db *gorm.DB, where string, args ...any) error {
	sub := db.Model(&Replica{}).Select("id").Where(where, args...)
	if err := db.Where("replica_id IN (?)", sub).Delete(&ReplicaFleet{}).Error; err != nil {
		return err
	}
	if err := db.Where("replica_id IN (?)", sub).Delete(&ReplicaVerdict{}).Error; err != nil {
		return err
	}
	return db.Where(where, args...).Delete(&Replica{}).Error
}

// SetReplicaFleets records the fleets a replica has xDS clients of.
func (s *Store) SetReplicaFleets(ctx context.Context, id string, fleets []string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		q := db.Where("replica_id = ?", id)
		if len(fleets) > 0 {
			q = q.Where("fleet NOT IN ?", fleets)
		}
		if err := q.Delete(&ReplicaFleet{}).Error; err != nil {
			return err
		}
		if len(fleets) == 0 {
			return nil
		}
		rows := make([]ReplicaFleet, len(fleets))
		for i, f := range fleets {
			rows[i] = ReplicaFleet{ReplicaID: id, Fleet: f}
		}
		return db.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
	})
}

// RecordApplied records that every client of a replica applied these
// changes, then settles the load balancers every live replica with
// clients of their fleet has applied (SetApplied's transitions). The
// verdicts' lock orders concurrent recorders, so the last one sees every
// verdict. It returns the ids whose status changed.
func (s *Store) RecordApplied(ctx context.Context, replica string, applied []Applied) ([]uint32, error) {
	if err := s.replicated(); err != nil {
		return nil, err
	}
	var changed []uint32
	err := s.verdictsLocked(ctx, func(db *gorm.DB) error {
		rows := make([]ReplicaVerdict, 0, len(applied))
		ids := make([]uint32, 0, len(applied))
		seen := map[uint32]int{}
		for _, a := range applied {
			if i, ok := seen[a.ID]; ok {
				rows[i].Revision = max(rows[i].Revision, a.Revision)
				continue
			}
			seen[a.ID] = len(rows)
			rows = append(rows, ReplicaVerdict{ReplicaID: replica, LoadBalancerID: a.ID, Revision: a.Revision})
			ids = append(ids, a.ID)
		}
		err := db.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "replica_id"}, {Name: "load_balancer_id"}},
			DoUpdates: clause.Set{{Column: clause.Column{Name: "revision"},
				Value: gorm.Expr("GREATEST(replica_verdicts.revision, excluded.revision)")}},
		}).Create(&rows).Error
		if err != nil {
			return err
		}
		if changed, err = s.settleAgreed(db, ids); err != nil {
			return err
		}
		// The replica whose verdict settles a change describes it (every
		// replica publishes the same change, so each can).
		return describeApplied(db, applied)
	})
	return changed, err
}

// SettleAgreed settles every waiting load balancer that the live replicas
// with clients of its fleet have all applied: run after a lease expired
// or a replica's last client of a fleet left. It reports the ids whose
// status changed. The verdicts' lock is taken only when there is one.
func (s *Store) SettleAgreed(ctx context.Context) ([]uint32, error) {
	db, cancel := s.bounded(ctx)
	lbs, err := s.agreed(db, nil)
	cancel()
	if err != nil || len(lbs) == 0 {
		return nil, err
	}
	var changed []uint32
	err = s.verdictsLocked(ctx, func(db *gorm.DB) error {
		var err error
		changed, err = s.settleAgreed(db, nil)
		return err
	})
	return changed, err
}

func (s *Store) settleAgreed(db *gorm.DB, ids []uint32) ([]uint32, error) {
	lbs, err := s.agreed(db, ids)
	if err != nil || len(lbs) == 0 {
		return nil, err
	}
	return s.settle(db, lbs)
}

// agreed lists the waiting load balancers (among ids; all when nil) whose
// current revision every live replica with clients of their fleet has
// applied.
func (s *Store) agreed(db *gorm.DB, ids []uint32) ([]LoadBalancer, error) {
	q := db.Model(&LoadBalancer{}).Select("id", "status", "revision").
		Where("status IN ?", []string{StatusBuild, StatusPendingUpdate, StatusPendingDelete}).
		Where(`NOT EXISTS (SELECT 1 FROM replica_fleets f JOIN replicas r ON r.id = f.replica_id
			WHERE f.fleet = load_balancers.fleet AND r.expires_at > now()
			AND NOT EXISTS (SELECT 1 FROM replica_verdicts v WHERE v.replica_id = f.replica_id
				AND v.load_balancer_id = load_balancers.id AND v.revision >= load_balancers.revision))`)
	if ids != nil {
		q = q.Where("id IN ?", ids)
	}
	var lbs []LoadBalancer
	err := q.Order("id").Find(&lbs).Error
	return lbs, err
}

// PruneChanges deletes the change records no replica needs any more:
// those at or below upTo (what the caller has published) and below what
// every live replica has published; replicas whose lease expired are
// forgotten first. It returns how many records it deleted.
func (s *Store) PruneChanges(ctx context.Context, upTo int64) (int64, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	if s.dialect == "postgres" {
		if err := db.Transaction(func(db *gorm.DB) error {
			return removeReplicas(db, "expires_at <= now()")
		}); err != nil {
			return 0, err
		}
		var oldest *int64
		if err := db.Raw("SELECT min(published) FROM replicas WHERE expires_at > now()").Scan(&oldest).Error; err != nil {
			return 0, err
		}
		if oldest != nil {
			upTo = min(upTo, *oldest)
		}
	}
	res := db.Where("revision <= ?", upTo).Delete(&Change{})
	return res.RowsAffected, res.Error
}

// AcceptedConfigs returns the last accepted configurations kept for the
// load balancers now in ERROR, by load balancer.
func (s *Store) AcceptedConfigs(ctx context.Context) (map[uint32][]AcceptedConfig, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var rows []AcceptedConfig
	err := db.Where("load_balancer_id IN (?)", db.Model(&LoadBalancer{}).Select("id").Where("status = ?", StatusError)).
		Find(&rows).Error
	out := map[uint32][]AcceptedConfig{}
	for _, r := range rows {
		out[r.LoadBalancerID] = append(out[r.LoadBalancerID], r)
	}
	return out, err
}
