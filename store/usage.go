package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Usage history. Each replica writes what its own reporters sent, as
// deltas, into rows of its own (UsageSample, keyed by replica, load
// balancer, step and start): a row is only ever added to, so a replica
// that restarts counts nothing twice and loses at most what it had not
// written yet; readers sum the rows of every replica, so every replica
// answers the same totals. Each write adds to two rows: the minute's
// (UsageStepMinute, kept for the history of the last day) and the hour's
// (UsageStepHour, kept for --usage-retention, the usage records), and to
// the all-time row (UsageStepTotal, GET /stats's counters).

// The steps of the usage rows, in seconds.
const (
	UsageStepMinute = 60
	UsageStepHour   = 3600
	// UsageStepTotal rows (one per replica and load balancer, starting at
	// the Unix epoch) count since the load balancer was created: GET
	// /stats reads them. They are never pruned; the pruner folds the rows
	// of replicas gone for a day into one (replica "").
	UsageStepTotal = 0
)

// usageTotalStart is the start of the UsageStepTotal rows.
var usageTotalStart = time.Unix(0, 0).UTC()

// UsageSample is one replica's traffic numbers of one load balancer over
// one step (a minute or an hour).
type UsageSample struct {
	LoadBalancerID uint32    `gorm:"primaryKey;autoIncrement:false"`
	Step           int32     `gorm:"primaryKey;autoIncrement:false"`
	Start          time.Time `gorm:"primaryKey;index"`
	Replica        string    `gorm:"primaryKey;size:64"`
	Requests       int64     `gorm:"not null;default:0"`
	RequestErrors  int64     `gorm:"not null;default:0"`
	BytesIn        int64     `gorm:"not null;default:0"`
	BytesOut       int64     `gorm:"not null;default:0"`
	BytesInSSL     int64     `gorm:"column:bytes_in_ssl;not null;default:0"`
	BytesOutSSL    int64     `gorm:"column:bytes_out_ssl;not null;default:0"`
	// Connections and ConnectionsSSL add up the open connections sampled
	// once a minute; Polls counts the samples.
	Connections    int64 `gorm:"not null;default:0"`
	ConnectionsSSL int64 `gorm:"column:connections_ssl;not null;default:0"`
	Polls          int64 `gorm:"not null;default:0"`
	StatsCounters
}

// StatsCounters are the counters of GET /stats the usage records do not
// show (migration 202612010002_stats_counters): the rows carry them so
// that /stats reads the same sums on every replica and across restarts.
type StatsCounters struct {
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

// statsCounterColumns are StatsCounters' columns.
var statsCounterColumns = []string{"requests_succeeded", "requests_dropped", "connect_failures", "connect_timeouts",
	"connect_errors", "data_timeouts", "keep_alive_timeouts", "data_timeouts_ssl", "keep_alive_timeouts_ssl"}

func (c *StatsCounters) add(o StatsCounters) {
	c.RequestsSucceeded += o.RequestsSucceeded
	c.RequestsDropped += o.RequestsDropped
	c.ConnectFailures += o.ConnectFailures
	c.ConnectTimeouts += o.ConnectTimeouts
	c.ConnectErrors += o.ConnectErrors
	c.DataTimeouts += o.DataTimeouts
	c.KeepAliveTimeouts += o.KeepAliveTimeouts
	c.DataTimeoutsSSL += o.DataTimeoutsSSL
	c.KeepAliveTimeoutsSSL += o.KeepAliveTimeoutsSSL
}

// The usage event types (the reference's eventType).
const (
	EventCreateLoadBalancer = "CREATE_LOADBALANCER"
	EventDeleteLoadBalancer = "DELETE_LOADBALANCER"
	EventCreateVirtualIP    = "CREATE_VIRTUAL_IP"
	EventDeleteVirtualIP    = "DELETE_VIRTUAL_IP"
	EventSSLOff             = "SSL_OFF"
	EventSSLOnlyOn          = "SSL_ONLY_ON"
	EventSSLMixedOn         = "SSL_MIXED_ON"
)

// The SSL modes of usage records (the reference's sslMode).
const (
	SSLModeOff   = "OFF"
	SSLModeOn    = "ON"
	SSLModeMixed = "MIXED"
)

// UsageEvent is a change of what a load balancer is billed for: created,
// deleted, SSL termination turned on or off, a virtual IP added or
// removed. Written in the transaction of the change (Update).
type UsageEvent struct {
	ID             uint64    `gorm:"primaryKey;autoIncrement"`
	LoadBalancerID uint32    `gorm:"not null;index"`
	Account        string    `gorm:"size:64;not null;index"`
	At             time.Time `gorm:"not null;index"`
	Type           string    `gorm:"size:32;not null"`
	PublicVIPs     int32     `gorm:"column:public_vips;not null"`
	ServicenetVIPs int32     `gorm:"column:servicenet_vips;not null"`
	SSLMode        string    `gorm:"column:ssl_mode;size:8;not null"`
}

// Deleted tells whether the event ends the load balancer.
func (e UsageEvent) Deleted() bool { return e.Type == EventDeleteLoadBalancer }

func migrateUsage(tx *gorm.DB) error {
	type UsageSample struct {
		LoadBalancerID uint32    `gorm:"primaryKey;autoIncrement:false"`
		Step           int32     `gorm:"primaryKey;autoIncrement:false"`
		Start          time.Time `gorm:"primaryKey;index"`
		Replica        string    `gorm:"primaryKey;size:64"`
		Requests       int64     `gorm:"not null;default:0"`
		RequestErrors  int64     `gorm:"not null;default:0"`
		BytesIn        int64     `gorm:"not null;default:0"`
		BytesOut       int64     `gorm:"not null;default:0"`
		BytesInSSL     int64     `gorm:"column:bytes_in_ssl;not null;default:0"`
		BytesOutSSL    int64     `gorm:"column:bytes_out_ssl;not null;default:0"`
		Connections    int64     `gorm:"not null;default:0"`
		ConnectionsSSL int64     `gorm:"column:connections_ssl;not null;default:0"`
		Polls          int64     `gorm:"not null;default:0"`
	}
	type UsageEvent struct {
		ID             uint64    `gorm:"primaryKey;autoIncrement"`
		LoadBalancerID uint32    `gorm:"not null;index"`
		Account        string    `gorm:"size:64;not null;index"`
		At             time.Time `gorm:"not null;index"`
		Type           string    `gorm:"size:32;not null"`
		PublicVIPs     int32     `gorm:"column:public_vips;not null"`
		ServicenetVIPs int32     `gorm:"column:servicenet_vips;not null"`
		SSLMode        string    `gorm:"column:ssl_mode;size:8;not null"`
	}
	if err := createTables(tx, []table{{"usage_samples", &UsageSample{}}, {"usage_events", &UsageEvent{}}}); err != nil {
		return err
	}
	// The load balancers that exist get their creation event, at their
	// creation time, with what they have now.
	return tx.Exec(`INSERT INTO usage_events (load_balancer_id, account, at, type, public_vips, servicenet_vips, ssl_mode)
		SELECT lb.id, lb.account, lb.created_at, ?,
			(SELECT count(*) FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
				WHERE l.load_balancer_id = lb.id AND v.type = 'PUBLIC'),
			(SELECT count(*) FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
				WHERE l.load_balancer_id = lb.id AND v.type <> 'PUBLIC'),
			?
		FROM load_balancers lb WHERE lb.status NOT IN ?`,
		EventCreateLoadBalancer, SSLModeOff, []string{StatusPendingDelete, StatusDeleted}).Error
}

// UsageDelta is what a replica adds to a load balancer's rows: counters
// over Minute, and the minute's sample of open connections when Polled.
type UsageDelta struct {
	LoadBalancerID              uint32
	Minute                      time.Time
	Requests, RequestErrors     int64
	BytesIn, BytesOut           int64
	BytesInSSL, BytesOutSSL     int64
	Polled                      bool
	Connections, ConnectionsSSL int64
	StatsCounters
}

// AddUsage adds a replica's deltas to its minute, hour and all-time rows.
func (s *Store) AddUsage(ctx context.Context, replica string, deltas []UsageDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	rows := make(map[[3]int64]*UsageSample, 3*len(deltas))
	for _, d := range deltas {
		for _, step := range []int32{UsageStepMinute, UsageStepHour, UsageStepTotal} {
			start := usageTotalStart
			if step != UsageStepTotal {
				start = d.Minute.UTC().Truncate(time.Duration(step) * time.Second)
			}
			k := [3]int64{int64(d.LoadBalancerID), int64(step), start.Unix()}
			r := rows[k]
			if r == nil {
				r = &UsageSample{LoadBalancerID: d.LoadBalancerID, Step: step, Start: start, Replica: replica}
				rows[k] = r
			}
			r.Requests += d.Requests
			r.RequestErrors += d.RequestErrors
			r.BytesIn += d.BytesIn
			r.BytesOut += d.BytesOut
			r.BytesInSSL += d.BytesInSSL
			r.BytesOutSSL += d.BytesOutSSL
			r.StatsCounters.add(d.StatsCounters)
			if d.Polled {
				r.Connections += d.Connections
				r.ConnectionsSSL += d.ConnectionsSSL
				r.Polls++
			}
		}
	}
	list := make([]*UsageSample, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	db, cancel := s.bounded(ctx)
	defer cancel()
	return addUsageRows(db, list)
}

// addUsageRows adds rows to the ones with their keys (or inserts them).
func addUsageRows(db *gorm.DB, rows []*UsageSample) error {
	add := map[string]any{}
	for _, c := range append([]string{"requests", "request_errors", "bytes_in", "bytes_out", "bytes_in_ssl", "bytes_out_ssl",
		"connections", "connections_ssl", "polls"}, statsCounterColumns...) {
		add[c] = gorm.Expr("usage_samples." + c + " + excluded." + c)
	}
	return db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "load_balancer_id"}, {Name: "step"}, {Name: "start"}, {Name: "replica"}},
		DoUpdates: clause.Assignments(add),
	}).CreateInBatches(rows, 500).Error
}

// UsageTotals are the sums over every replica of a load balancer's rows
// of one step starting at Start.
type UsageTotals struct {
	LoadBalancerID          uint32
	Start                   time.Time
	Requests, RequestErrors int64
	BytesIn, BytesOut       int64
	BytesInSSL, BytesOutSSL int64
	// Connections and ConnectionsSSL add up every replica's samples of
	// open connections; Polls is the most samples one replica took.
	Connections, ConnectionsSSL int64
	Polls                       int64
}

// UsageSeries sums the rows of every replica for the load balancers ids,
// of one step, starting in [from, to), by load balancer then start.
func (s *Store) UsageSeries(ctx context.Context, ids []uint32, step int32, from, to time.Time) ([]UsageTotals, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var out []UsageTotals
	err := db.Model(&UsageSample{}).Select(`load_balancer_id, start,
			sum(requests) AS requests, sum(request_errors) AS request_errors,
			sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out,
			sum(bytes_in_ssl) AS bytes_in_ssl, sum(bytes_out_ssl) AS bytes_out_ssl,
			sum(connections) AS connections, sum(connections_ssl) AS connections_ssl, max(polls) AS polls`).
		Where("load_balancer_id IN ? AND step = ? AND start >= ? AND start < ?", ids, step, from.UTC(), to.UTC()).
		Group("load_balancer_id, start").Order("load_balancer_id, start").Scan(&out).Error
	for i := range out {
		out[i].Start = out[i].Start.UTC()
	}
	return out, err
}

// UsageEvents returns the usage events of the load balancers ids up to
// to, oldest first, from the last one before from (the state the window
// starts in) on.
func (s *Store) UsageEvents(ctx context.Context, ids []uint32, from, to time.Time) ([]UsageEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var out []UsageEvent
	err := db.Where(`load_balancer_id IN ? AND at < ? AND (at >= ? OR id IN
			(SELECT max(id) FROM usage_events WHERE load_balancer_id IN ? AND at < ? GROUP BY load_balancer_id))`,
		ids, to.UTC(), from.UTC(), ids, from.UTC()).Order("id").Find(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}

// UsageLoadBalancer is a load balancer of the account, deleted ones too
// (usage and billing show them).
func (s *Store) UsageLoadBalancer(ctx context.Context, account string, id uint32) (*LoadBalancer, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	var lb LoadBalancer
	err := db.Where("account = ? AND id = ?", account, id).Take(&lb).Error
	if err == gorm.ErrRecordNotFound {
		return nil, ErrNotFound
	}
	return &lb, err
}

// BillableLoadBalancers lists one page of the account's load balancers,
// deleted ones too, that existed during [from, to): created before to and
// not deleted before from. In id order, with their node counts.
func (s *Store) BillableLoadBalancers(ctx context.Context, account string, from, to time.Time, offset, limit int) ([]ListedLoadBalancer, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	return listed(db.Model(&LoadBalancer{}).
		Where(`account = ? AND created_at < ? AND NOT EXISTS (SELECT 1 FROM usage_events e
			WHERE e.load_balancer_id = load_balancers.id AND e.type = ? AND e.at < ?)`,
			account, to.UTC(), EventDeleteLoadBalancer, from.UTC()).
		Order("id").Offset(offset).Limit(limit), account)
}

// AccountLoadBalancerIDs lists the ids of the account's load balancers,
// deleted ones too, that had usage events before to, with their names.
func (s *Store) AccountLoadBalancerIDs(ctx context.Context, account string, to time.Time) ([]uint32, map[uint32]string, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var lbs []LoadBalancer
	err := db.Select("id, name").Where("account = ? AND id IN (?)", account,
		db.Model(&UsageEvent{}).Select("load_balancer_id").Where("account = ? AND at < ?", account, to.UTC())).
		Order("id").Find(&lbs).Error
	ids := make([]uint32, len(lbs))
	names := make(map[uint32]string, len(lbs))
	for i, lb := range lbs {
		ids[i], names[lb.ID] = lb.ID, lb.Name
	}
	return ids, names, err
}

// PruneUsage deletes the minute rows older than minutes (and the gauges
// of replicas expired that long ago, whose all-time rows it folds into
// one per load balancer), the hour rows
// and events older than retention (keeping each load balancer's last
// event, the state its later usage starts from). On PostgreSQL one
// replica at a time does it (an advisory lock; the others skip); it
// returns whether this one did.
func (s *Store) PruneUsage(ctx context.Context, now time.Time, minutes, retention time.Duration) (bool, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	pruned := false
	err := db.Transaction(func(db *gorm.DB) error {
		if s.dialect == "postgres" {
			var got bool
			if err := db.Raw("SELECT pg_try_advisory_xact_lock(?, 0)", usageLockSpace).Scan(&got).Error; err != nil || !got {
				return err
			}
		}
		pruned = true
		if err := db.Where("step = ? AND start < ?", UsageStepMinute, now.Add(-minutes).UTC()).Delete(&UsageSample{}).Error; err != nil {
			return err
		}
		if err := db.Where("step = ? AND start < ?", UsageStepHour, now.Add(-retention).UTC()).Delete(&UsageSample{}).Error; err != nil {
			return err
		}
		if err := pruneUsageGauges(db, now.Add(-minutes)); err != nil {
			return err
		}
		if err := foldUsageTotals(db); err != nil {
			return err
		}
		return db.Where("at < ? AND id NOT IN (SELECT max(id) FROM usage_events GROUP BY load_balancer_id)",
			now.Add(-retention).UTC()).Delete(&UsageEvent{}).Error
	})
	return pruned, err
}

// usageLockSpace is the first key of the usage pruner's advisory lock.
const usageLockSpace = 0x6c627573 // "lbus"

// recordUsageEvents writes a usage event for each load balancer this
// transaction changed in a way usage records show: created, deleted, its
// SSL mode or its virtual IPs. Compared with its last event.
func (tx *Tx) recordUsageEvents() error {
	if len(tx.touched) == 0 {
		return nil
	}
	ids := make([]uint32, 0, len(tx.touched))
	var earlier []uint32 // those created before this transaction
	for id := range tx.touched {
		ids = append(ids, id)
		if !tx.created[id] {
			earlier = append(earlier, id)
		}
	}
	var last []UsageEvent
	if len(earlier) > 0 {
		if err := tx.db.Where("id IN (SELECT max(id) FROM usage_events WHERE load_balancer_id IN ? GROUP BY load_balancer_id)", earlier).
			Find(&last).Error; err != nil {
			return err
		}
	}
	prev := make(map[uint32]UsageEvent, len(last))
	for _, e := range last {
		prev[e.LoadBalancerID] = e
	}
	// The virtual IPs of a load balancer this transaction created are those
	// it linked (AttachVirtualIP and DetachVirtualIPs take it out of
	// created); the others' are counted in the database.
	var counts []struct {
		LoadBalancerID uint32
		Public         bool
		N              int32
	}
	if len(earlier) > 0 {
		if err := tx.db.Raw(`SELECT l.load_balancer_id, v.type = 'PUBLIC' AS public, count(*) AS n
			FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
			WHERE l.load_balancer_id IN ? GROUP BY l.load_balancer_id, v.type = 'PUBLIC'`, earlier).Scan(&counts).Error; err != nil {
			return err
		}
	}
	now := tx.store.now().UTC()
	var events []UsageEvent
	for _, id := range ids {
		lb := tx.touched[id]
		e := UsageEvent{LoadBalancerID: id, Account: lb.Account, At: now, SSLMode: sslMode(lb.SSLTermination)}
		if tx.created[id] {
			for _, v := range lb.VirtualIPs {
				if v.Type == "PUBLIC" {
					e.PublicVIPs++
				} else {
					e.ServicenetVIPs++
				}
			}
		}
		for _, c := range counts {
			switch {
			case c.LoadBalancerID != id:
			case c.Public:
				e.PublicVIPs = c.N
			default:
				e.ServicenetVIPs = c.N
			}
		}
		p, seen := prev[id]
		deleted := lb.Status == StatusPendingDelete || lb.Status == StatusDeleted
		switch {
		case seen && p.Deleted():
			continue
		case !seen && deleted:
			continue
		case !seen:
			e.Type = EventCreateLoadBalancer
		case deleted:
			e.Type, e.PublicVIPs, e.ServicenetVIPs = EventDeleteLoadBalancer, p.PublicVIPs, p.ServicenetVIPs
		case e.SSLMode != p.SSLMode:
			e.Type = map[string]string{SSLModeOff: EventSSLOff, SSLModeOn: EventSSLOnlyOn, SSLModeMixed: EventSSLMixedOn}[e.SSLMode]
		case e.PublicVIPs+e.ServicenetVIPs > p.PublicVIPs+p.ServicenetVIPs:
			e.Type = EventCreateVirtualIP
		case e.PublicVIPs+e.ServicenetVIPs < p.PublicVIPs+p.ServicenetVIPs:
			e.Type = EventDeleteVirtualIP
		default:
			continue
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		return nil
	}
	return tx.db.Create(&events).Error
}

// sslMode is the usage records' SSL mode of a termination.
func sslMode(t *SSLTermination) string {
	switch {
	case t == nil || !t.Enabled:
		return SSLModeOff
	case t.SecureTrafficOnly:
		return SSLModeOn
	}
	return SSLModeMixed
}
