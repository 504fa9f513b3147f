package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// loadBalancer reads a live load balancer of the account with everything
// it owns: its row, then what it owns (loadChildren), each in one plain
// query scanned without reflection.
func loadBalancer(db *gorm.DB, account string, id uint32) (*LoadBalancer, error) {
	var lb *LoadBalancer
	err := eachRow(db, loadBalancerQuery, []any{account, int64(id), StatusDeleted}, func(rows *sql.Rows) error {
		lb = &LoadBalancer{}
		return scanLoadBalancer(rows, lb)
	})
	if err != nil {
		return nil, err
	}
	if lb == nil {
		return nil, ErrNotFound
	}
	return lb, loadChildren(db, []*LoadBalancer{lb}, allChildren)
}

const loadBalancerQuery = "SELECT " + lbColumns + " FROM load_balancers WHERE account = $1 AND id = $2 AND status <> $3"

// lbColumns are the columns of load_balancers in scanLoadBalancer's order:
// every column of the model (TestLoadBalancerColumns).
const lbColumns = `id, account, name, protocol, port, algorithm, status, status_description, timeout,
	half_closed, https_redirect, connection_logging, content_caching, error_page, check_passive,
	client_keep_alive_timeout, backend_keep_alive, fleet, revision,
	ssl_termination, health_monitor, session_persistence, connection_throttle,
	created_at, updated_at, deleted_at`

// scanLoadBalancer reads a row of lbColumns into lb; the JSON columns as
// gorm's json serializer writes them (NULL for none).
func scanLoadBalancer(rows *sql.Rows, lb *LoadBalancer) error {
	var ssl, monitor, persistence, throttle sql.NullString
	var deleted sql.NullTime
	if err := rows.Scan(&lb.ID, &lb.Account, &lb.Name, &lb.Protocol, &lb.Port, &lb.Algorithm, &lb.Status,
		&lb.StatusDescription, &lb.Timeout, &lb.HalfClosed, &lb.HTTPSRedirect, &lb.ConnectionLogging,
		&lb.ContentCaching, &lb.ErrorPage, &lb.CheckPassive, &lb.ClientKeepAliveTimeout, &lb.BackendKeepAlive,
		&lb.Fleet, &lb.Revision, &ssl, &monitor, &persistence, &throttle,
		&lb.CreatedAt, &lb.UpdatedAt, &deleted); err != nil {
		return err
	}
	if deleted.Valid {
		lb.DeletedAt = &deleted.Time
	}
	return errors.Join(
		unmarshalColumn(ssl, &lb.SSLTermination),
		unmarshalColumn(monitor, &lb.HealthMonitor),
		unmarshalColumn(persistence, &lb.SessionPersistence),
		unmarshalColumn(throttle, &lb.ConnectionThrottle))
}

// unmarshalColumn decodes a JSON column into *dst as gorm's json
// serializer does: nil when the column is NULL, empty or the JSON null.
func unmarshalColumn[T any](col sql.NullString, dst **T) error {
	if !col.Valid || col.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(col.String), dst); err != nil {
		return fmt.Errorf("store: a load balancer's JSON column: %w", err)
	}
	return nil
}

func orderByID(db *gorm.DB) *gorm.DB { return db.Order("id") }

// GetLoadBalancer returns a live load balancer of the account with
// everything it owns, or ErrNotFound.
func (s *Store) GetLoadBalancer(ctx context.Context, account string, id uint32) (*LoadBalancer, error) {
	db, cancel := s.boundedRead(ctx)
	defer cancel()
	return loadBalancer(db, account, id)
}

// ListFilter selects load balancers of one account.
type ListFilter struct {
	Account string
	// Status selects one status; empty means every status but DELETED.
	Status       string
	Name         string
	NodeAddress  string
	ChangesSince time.Time
	// Marker is the id the page starts with; 0 means from the start.
	Marker uint32
	Offset int
	// Limit is the page size; 0 means no limit.
	Limit int
}

// ListedLoadBalancer is a load balancer as lists show it.
type ListedLoadBalancer struct {
	LoadBalancer
	NodeCount uint32
}

// ListLoadBalancers returns one page of the account's load balancers in id
// order, with their node counts and virtual IPs (as lists show them:
// listVirtualIPs): two plain queries (the page's rows, then their virtual
// IPs) scanned without reflection. (One query joining the two cost SQLite
// 20% more.)
func (s *Store) ListLoadBalancers(ctx context.Context, f ListFilter) ([]ListedLoadBalancer, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var (
		where []string
		args  []any
	)
	cond := func(c string, v any) {
		args = append(args, v)
		where = append(where, strings.Replace(c, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	cond("account = ?", f.Account)
	if f.Status != "" {
		cond("status = ?", f.Status)
	} else {
		cond("status <> ?", StatusDeleted)
	}
	switch {
	case f.NodeAddress != "":
		cond("id IN (SELECT load_balancer_id FROM nodes WHERE address = ?)", f.NodeAddress)
	case f.Name != "":
		cond("name = ?", f.Name)
	}
	if !f.ChangesSince.IsZero() {
		cond("updated_at >= ?", f.ChangesSince.UTC())
	}
	if f.Marker > 0 {
		cond("id >= ?", int64(f.Marker))
	}
	page := ""
	if f.Limit > 0 {
		args = append(args, f.Limit)
		page = " LIMIT $" + strconv.Itoa(len(args))
	}
	if f.Offset > 0 {
		if page == "" && s.dialect == "sqlite" {
			page = " LIMIT -1" // SQLite has no OFFSET without LIMIT
		}
		args = append(args, f.Offset)
		page += " OFFSET $" + strconv.Itoa(len(args))
	}
	query := `SELECT id, name, protocol, port, algorithm, status, timeout, created_at, updated_at,
		(SELECT count(*) FROM nodes WHERE nodes.load_balancer_id = load_balancers.id)
		FROM load_balancers WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id` + page
	var out []ListedLoadBalancer
	err := eachRow(db, query, args, func(rows *sql.Rows) error {
		lb := ListedLoadBalancer{LoadBalancer: LoadBalancer{Account: f.Account}}
		if err := rows.Scan(&lb.ID, &lb.Name, &lb.Protocol, &lb.Port, &lb.Algorithm, &lb.Status, &lb.Timeout,
			&lb.CreatedAt, &lb.UpdatedAt, &lb.NodeCount); err != nil {
			return err
		}
		out = append(out, lb)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, listVirtualIPs(db, out)
}

// listVirtualIPs reads the virtual IPs of listed load balancers as lists
// show them: id, address, type and version. In the link table's order
// (load balancer, then address id), which its primary key gives without
// sorting: half of what loadChildren's general query cost SQLite.
func listVirtualIPs(db *gorm.DB, lbs []ListedLoadBalancer) error {
	if len(lbs) == 0 {
		return nil
	}
	args := make([]any, len(lbs))
	byID := make(map[uint32]*ListedLoadBalancer, len(lbs))
	for i := range lbs {
		args[i] = int64(lbs[i].ID)
		byID[lbs[i].ID] = &lbs[i]
	}
	return eachRow(db, listVIPQuery(len(lbs)), args, func(rows *sql.Rows) error {
		var owner uint32
		var v VirtualIP
		if err := rows.Scan(&owner, &v.ID, &v.Address, &v.Type, &v.IPVersion); err != nil {
			return err
		}
		lb := byID[owner]
		if lb == nil {
			return fmt.Errorf("store: a virtual IP of load balancer %d, which was not asked for", owner)
		}
		lb.VirtualIPs = append(lb.VirtualIPs, v)
		return nil
	})
}

// listVIPQueryKey keys listVirtualIPs' query of n load balancers in
// queryTexts.
type listVIPQueryKey struct{ n int }

func listVIPQuery(n int) string {
	return queryText(listVIPQueryKey{n}, n, func() string {
		return `SELECT l.load_balancer_id, v.id, v.address, v.type, v.ip_version
		FROM load_balancer_virtual_ips l JOIN virtual_ips v ON v.id = l.virtual_ip_id
		WHERE l.load_balancer_id IN (` + placeholders(n) + `) ORDER BY l.load_balancer_id, l.virtual_ip_id`
	})
}

// listed runs a query of load balancers in their list form (with their
// node counts, not what they own).
func listed(q *gorm.DB, account string) ([]ListedLoadBalancer, error) {
	rows, err := q.Select(`id, name, protocol, port, algorithm, status, timeout, created_at, updated_at,
		(SELECT count(*) FROM nodes WHERE nodes.load_balancer_id = load_balancers.id)`).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ListedLoadBalancer
	for rows.Next() {
		var lb ListedLoadBalancer
		if err := rows.Scan(&lb.ID, &lb.Name, &lb.Protocol, &lb.Port, &lb.Algorithm, &lb.Status, &lb.Timeout,
			&lb.CreatedAt, &lb.UpdatedAt, &lb.NodeCount); err != nil {
			return nil, err
		}
		lb.Account = account
		out = append(out, lb)
	}
	return out, rows.Err()
}

// MarkApplied records that the data plane of a fleet runs every change up
// to and including revision upTo: load balancers waiting for such a change
// become ACTIVE, and those being deleted become DELETED and give back
// their virtual IPs. It returns the ids whose status changed.
func (s *Store) MarkApplied(ctx context.Context, fleet string, upTo int64) ([]uint32, error) {
	db, cancel := s.bounded(ctx)
	defer cancel()
	var changed []uint32
	err := db.Transaction(func(db *gorm.DB) error {
		var waiting []LoadBalancer
		err := db.Select("id", "status", "revision").
			Where("fleet = ? AND revision <= ? AND status IN ?", fleet, upTo,
				[]string{StatusBuild, StatusPendingUpdate, StatusPendingDelete}).
			Order("id").Find(&waiting).Error
		if err != nil || len(waiting) == 0 {
			return err
		}
		changed, err = s.settle(db, waiting)
		return err
	})
	return changed, err
}

// settleBatch bounds the load balancers one statement of settle names.
const settleBatch = 1000

// settle moves waiting load balancers on: BUILD and PENDING_UPDATE to
// ACTIVE, PENDING_DELETE to DELETED, each only if it is still at the
// revision and status read (lbs carry id, status and revision). Writers
// are not locked out: an Update of one of them that commits meanwhile
// holds its row until then, and the database checks the condition again on
// the row as that Update left it. It returns the ids it moved.
func (s *Store) settle(db *gorm.DB, lbs []LoadBalancer) ([]uint32, error) {
	now := s.db.NowFunc()
	var settled []uint32
	for batch := range slices.Chunk(lbs, settleBatch) {
		var values strings.Builder
		args := make([]any, 0, 2*len(batch)+4)
		for i, lb := range batch {
			if i > 0 {
				values.WriteString(", ")
			}
			values.WriteString("(CAST(? AS BIGINT), CAST(? AS BIGINT))")
			args = append(args, lb.ID, lb.Revision)
		}
		current := "(id, revision) IN (VALUES " + values.String() + ")"
		var active, deleted []uint32
		err := db.Raw("UPDATE load_balancers SET status = ?, status_description = '', updated_at = ? WHERE status IN ? AND "+current+" RETURNING id",
			append([]any{StatusActive, now, []string{StatusBuild, StatusPendingUpdate}}, args...)...).Scan(&active).Error
		if err != nil {
			return nil, err
		}
		err = db.Raw("UPDATE load_balancers SET status = ?, updated_at = ?, deleted_at = ? WHERE status = ? AND "+current+" RETURNING id",
			append([]any{StatusDeleted, now, now, StatusPendingDelete}, args...)...).Scan(&deleted).Error
		if err != nil {
			return nil, err
		}
		if len(deleted) > 0 {
			if err := s.releaseDeleted(db, deleted); err != nil {
				return nil, err
			}
			// Gone from the data plane: no replica's verdict matters any more.
			if err := db.Where("load_balancer_id IN ?", deleted).Delete(&ReplicaVerdict{}).Error; err != nil {
				return nil, err
			}
		}
		settled = append(settled, active...)
		settled = append(settled, deleted...)
	}
	if len(settled) > 0 {
		// Applied again: nothing refused is kept running in its place.
		if err := db.Where("load_balancer_id IN ?", settled).Delete(&AcceptedConfig{}).Error; err != nil {
			return nil, err
		}
		// Addresses detached by the changes just applied are free now.
		if err := db.Exec(`DELETE FROM virtual_ips WHERE released_by IN ? AND NOT EXISTS
			(SELECT 1 FROM load_balancer_virtual_ips l WHERE l.virtual_ip_id = virtual_ips.id)`, settled).Error; err != nil {
			return nil, err
		}
	}
	slices.Sort(settled)
	return settled, nil
}

// releaseDeleted unlinks the virtual IPs of deleted load balancers and
// frees those no load balancer uses any more.
func (s *Store) releaseDeleted(db *gorm.DB, ids []uint32) error {
	var vipIDs []uint32
	if err := db.Table("load_balancer_virtual_ips").Where("load_balancer_id IN ?", ids).
		Pluck("virtual_ip_id", &vipIDs).Error; err != nil {
		return err
	}
	if err := db.Exec("DELETE FROM load_balancer_virtual_ips WHERE load_balancer_id IN ?", ids).Error; err != nil {
		return err
	}
	if len(vipIDs) == 0 {
		return nil
	}
	tx := &Tx{db: db, store: s}
	return tx.releaseUnused(vipIDs)
}

// Fleets lists the fleets that have load balancers waiting for the data plane.
func (s *Store) Fleets(ctx context.Context) ([]string, error) {
	db, cancel := s.boundedScan(ctx)
	defer cancel()
	var fleets []string
	err := db.Model(&LoadBalancer{}).Distinct("fleet").
		Where("status IN ?", []string{StatusBuild, StatusPendingUpdate, StatusPendingDelete}).
		Order("fleet").Pluck("fleet", &fleets).Error
	return fleets, err
}
