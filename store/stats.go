package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The numbers of GET /stats, the same on every replica. Counters are the
// sums of every replica's all-time rows (UsageSample, step
// UsageStepTotal), so they count from the load balancer's creation and
// survive restarts; the read touches one row per replica. Gauges are
// what each replica wrote of its live reporters at its last flush
// (UsageGauge), summed over the replicas whose last flush is recent
// enough (UsageReplica.ExpiresAt, set by the replica at each flush).

// UsageGauge is one replica's live gauges of one load balancer at its last
// flush. A replica keeps rows only for load balancers with a non-zero
// gauge.
type UsageGauge struct {
	LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
	Replica        string `gorm:"primaryKey;size:64;index"`
	InProgress     int64  `gorm:"not null;default:0"`
	Connections    int64  `gorm:"not null;default:0"`
	ConnectionsSSL int64  `gorm:"column:connections_ssl;not null;default:0"`
}

// UsageReplica says until when a replica's gauges count: a replica that
// stops flushing (it ended, or lost the database) drops out then.
type UsageReplica struct {
	Replica   string    `gorm:"primaryKey;size:64"`
	ExpiresAt time.Time `gorm:"not null;index"`
}

// migrateStatsCounters adds GET /stats's counters to the usage rows, the
// all-time rows (from the hour rows so far) and the live gauges of each
// replica.
func migrateStatsCounters(tx *gorm.DB) error {
	type UsageSample struct {
		RequestsSucceeded    int64 `gorm:"not null;default:0"`
		RequestsDropped      int64 `gorm:"not null;default:0"`
		ConnectFailures      int64 `gorm:"not null;default:0"`
		ConnectTimeouts      int64 `gorm:"not null;default:0"`
		ConnectErrors        int64 `gorm:"not null;default:0"`
		DataTimeouts         int64 `gorm:"not null;default:0"`
		KeepAliveTimeouts    int64 `gorm:"not null;default:0"`
		DataTimeoutsSSL      int64 `gorm:"column:data_timeouts_ssl;not null;default:0"`
		KeepAliveTimeoutsSSL int64 `gorm:"column:keep_alive_timeouts_ssl;not null;default:0"`
	}
	m := tx.Table("usage_samples").Migrator()
	for _, f := range []string{"RequestsSucceeded", "RequestsDropped", "ConnectFailures", "ConnectTimeouts", "ConnectErrors",
		"DataTimeouts", "KeepAliveTimeouts", "DataTimeoutsSSL", "KeepAliveTimeoutsSSL"} {
		if err := m.AddColumn(&UsageSample{}, f); err != nil {
			return err
		}
	}
	type UsageGauge struct {
		LoadBalancerID uint32 `gorm:"primaryKey;autoIncrement:false"`
		Replica        string `gorm:"primaryKey;size:64;index"`
		InProgress     int64  `gorm:"not null;default:0"`
		Connections    int64  `gorm:"not null;default:0"`
		ConnectionsSSL int64  `gorm:"column:connections_ssl;not null;default:0"`
	}
	type UsageReplica struct {
		Replica   string    `gorm:"primaryKey;size:64"`
		ExpiresAt time.Time `gorm:"not null;index"`
	}
	if err := createTables(tx, []table{{"usage_gauges", &UsageGauge{}}, {"usage_replicas", &UsageReplica{}}}); err != nil {
		return err
	}
	return seedUsageTotals(tx)
}

// seedUsageTotals starts the all-time rows from the hour rows kept so far.
func seedUsageTotals(tx *gorm.DB) error {
	return tx.Exec(`INSERT INTO usage_samples (load_balancer_id, step, start, replica,
			requests, request_errors, bytes_in, bytes_out, bytes_in_ssl, bytes_out_ssl, connections, connections_ssl, polls)
		SELECT load_balancer_id, 0, ?, replica, sum(requests), sum(request_errors), sum(bytes_in), sum(bytes_out),
			sum(bytes_in_ssl), sum(bytes_out_ssl), sum(connections), sum(connections_ssl), sum(polls)
		FROM usage_samples WHERE step = ? GROUP BY load_balancer_id, replica`, time.Unix(0, 0).UTC(), UsageStepHour).Error
}

// SetUsageGauges records a replica's flush: its gauges count until
// expires. gauges are the load balancers whose gauges changed since its
// last call (a row of zeros: it has none any more); full replaces all its
// rows instead (its first flush, or after a failed one).
func (s *Store) SetUsageGauges(ctx context.Context, replica string, expires time.Time, full bool, gauges []UsageGauge) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		err := db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "replica"}},
			DoUpdates: clause.AssignmentColumns([]string{"expires_at"}),
		}).Create(&UsageReplica{Replica: replica, ExpiresAt: expires.UTC()}).Error
		if err != nil {
			return err
		}
		if full {
			if err := db.Where("replica = ?", replica).Delete(&UsageGauge{}).Error; err != nil {
				return err
			}
		}
		var set []UsageGauge
		var gone []uint32
		for _, g := range gauges {
			g.Replica = replica
			if g.InProgress == 0 && g.Connections == 0 && g.ConnectionsSSL == 0 {
				gone = append(gone, g.LoadBalancerID)
			} else {
				set = append(set, g)
			}
		}
		for len(gone) > 0 {
			n := min(len(gone), 500)
			if err := db.Where("replica = ? AND load_balancer_id IN ?", replica, gone[:n]).Delete(&UsageGauge{}).Error; err != nil {
				return err
			}
			gone = gone[n:]
		}
		if len(set) == 0 {
			return nil
		}
		return db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "load_balancer_id"}, {Name: "replica"}},
			DoUpdates: clause.AssignmentColumns([]string{"in_progress", "connections", "connections_ssl"}),
		}).CreateInBatches(set, 500).Error
	})
}

// EndUsageReplica drops a replica's gauges at once (it is shutting down).
func (s *Store) EndUsageReplica(ctx context.Context, replica string) error {
	db, cancel := s.bounded(ctx)
	defer cancel()
	return db.Transaction(func(db *gorm.DB) error {
		if err := db.Where("replica = ?", replica).Delete(&UsageGauge{}).Error; err != nil {
			return err
		}
		return db.Where("replica = ?", replica).Delete(&UsageReplica{}).Error
	})
}

// foldUsageTotals folds the all-time rows of the replicas that are gone
// (no UsageReplica row: pruneUsageGauges deleted it, or they never
// flushed gauges) into the load balancers' row of replica "", so that a
// read of GET /stats touches a row per live replica and one more.
// Deleted and added in one transaction: a delta a replica adds meanwhile
// is in the deleted row (which it then waited for) or in a new row.
func foldUsageTotals(db *gorm.DB) error {
	var gone []*UsageSample
	if err := db.Clauses(clause.Returning{}).
		Where("step = ? AND replica <> '' AND replica NOT IN (?)", UsageStepTotal, db.Model(&UsageReplica{}).Select("replica")).
		Delete(&gone).Error; err != nil {
		return err
	}
	byLB := map[uint32]*UsageSample{}
	var rows []*UsageSample
	for _, g := range gone {
		r := byLB[g.LoadBalancerID]
		if r == nil {
			r = &UsageSample{LoadBalancerID: g.LoadBalancerID, Step: UsageStepTotal, Start: usageTotalStart}
			byLB[g.LoadBalancerID] = r
			rows = append(rows, r)
		}
		r.Requests += g.Requests
		r.RequestErrors += g.RequestErrors
		r.BytesIn += g.BytesIn
		r.BytesOut += g.BytesOut
		r.BytesInSSL += g.BytesInSSL
		r.BytesOutSSL += g.BytesOutSSL
		r.StatsCounters.add(g.StatsCounters)
	}
	if len(rows) == 0 {
		return nil
	}
	return addUsageRows(db, rows)
}

// pruneUsageGauges deletes the rows of the replicas expired before
// before.
func pruneUsageGauges(db *gorm.DB, before time.Time) error {
	if err := db.Where("replica IN (?)", db.Model(&UsageReplica{}).Select("replica").Where("expires_at < ?", before.UTC())).
		Delete(&UsageGauge{}).Error; err != nil {
		return err
	}
	return db.Where("expires_at < ?", before.UTC()).Delete(&UsageReplica{}).Error
}

// StatsTotals are a load balancer's numbers of GET /stats in the
// database, summed over the replicas.
type StatsTotals struct {
	// Counters: the sums of every replica's all-time rows.
	Requests, RequestErrors int64
	StatsCounters
	// MaxConnections and MaxConnectionsSSL are the highest of the minute
	// samples of open connections (summed over the replicas) since
	// MaxSince.
	MaxConnections, MaxConnectionsSSL int64
	// The gauges of the replicas live at now but except, from their last
	// flush.
	InProgress, Connections, ConnectionsSSL int64
}

// MaxConnectionsWindow is how far back GET /stats's maxConn looks: the
// minute samples of the last hour.
const MaxConnectionsWindow = time.Hour

// LoadBalancerStats reads load balancer id's numbers of GET /stats: two
// queries on the primary keys of usage_samples (a row per replica of the
// all-time counters, a row per replica and minute of the last
// MaxConnectionsWindow) and usage_gauges (a row per replica). The
// gauges of replica except are left out (it adds its own, fresher ones;
// "" leaves none out).
func (s *Store) LoadBalancerStats(ctx context.Context, id uint32, now time.Time, except string) (StatsTotals, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var sums string
	for _, c := range append([]string{"requests", "request_errors"}, statsCounterColumns...) {
		sums += fmt.Sprintf("coalesce(sum(%s), 0) AS %s, ", c, c)
	}
	// A replica polls once a minute; one that restarted within a minute
	// may have polled twice: its sample is the average.
	const sample = "%s / CASE WHEN polls > 1 THEN polls ELSE 1 END"
	var t StatsTotals
	err := db.Raw(`SELECT h.*, m.max_connections, m.max_connections_ssl FROM
			(SELECT `+sums[:len(sums)-2]+` FROM usage_samples WHERE load_balancer_id = ? AND step = ?) h,
			(SELECT coalesce(max(c), 0) AS max_connections, coalesce(max(cs), 0) AS max_connections_ssl FROM
				(SELECT sum(`+fmt.Sprintf(sample, "connections")+`) AS c, sum(`+fmt.Sprintf(sample, "connections_ssl")+`) AS cs
				FROM usage_samples WHERE load_balancer_id = ? AND step = ? AND start > ? GROUP BY start) p) m`,
		id, UsageStepTotal, id, UsageStepMinute, now.Add(-MaxConnectionsWindow).UTC()).Scan(&t).Error
	if err != nil {
		return t, err
	}
	var g struct{ InProgress, Connections, ConnectionsSSL int64 }
	err = db.Raw(`SELECT coalesce(sum(g.in_progress), 0) AS in_progress, coalesce(sum(g.connections), 0) AS connections,
			coalesce(sum(g.connections_ssl), 0) AS connections_ssl
		FROM usage_gauges g JOIN usage_replicas r ON r.replica = g.replica
		WHERE g.load_balancer_id = ? AND g.replica <> ? AND r.expires_at > ?`, id, except, now.UTC()).Scan(&g).Error
	t.InProgress, t.Connections, t.ConnectionsSSL = g.InProgress, g.Connections, g.ConnectionsSSL
	return t, err
}
