package api

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/loadstats"
	"github.com/openlbaas/lbaas/internal/usage"
	"github.com/openlbaas/lbaas/store"
)

// Pages of the billable load balancers (the reference's).
const (
	billablePage    = 500
	billableMaxPage = 1000
)

// Usage implements UsageService: the usage reports and billing of the
// reference, and the traffic history (an extension), read from the usage
// rows every replica writes (internal/usage), summed over the replicas.
type Usage struct {
	lbaasv1.UnimplementedUsageServiceServer
	store     *store.Store
	auth      Authorizer
	retention time.Duration
	loadStats *loadstats.Service // this replica's unwritten numbers (nil: none)
	now       func() time.Time
	log       *slog.Logger
}

// NewUsage returns the UsageService.
func NewUsage(st *store.Store, auth Authorizer, cfg Config) *Usage {
	u := &Usage{store: st, auth: auth, retention: cfg.UsageRetention, loadStats: cfg.LoadStats, now: cfg.Now, log: cfg.Logger}
	if u.retention <= 0 {
		u.retention = usage.DefaultRetention
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	return u
}

// window reads the optional startTime and endTime: a malformed date, an
// inverted window or one longer than the retention is a 400 naming the
// parameter. Missing ends default to def (start, end).
func (s *Usage) window(start, end *string, defStart, defEnd time.Time, required bool) (time.Time, time.Time, error) {
	var v validation
	from, to := defStart, defEnd
	parse := func(name string, p *string, into *time.Time) {
		if p == nil {
			if required {
				v.add(name, "is required")
			}
			return
		}
		t, err := ParseTime(*p)
		if err != nil {
			v.add(name, "%q is not an ISO 8601 date (2026-11-30) or date and time (2026-11-30T23:00:00Z)", *p)
			return
		}
		*into = t.UTC()
	}
	parse("startTime", start, &from)
	parse("endTime", end, &to)
	if err := v.err(); err != nil {
		return from, to, err
	}
	switch {
	case !from.Before(to):
		return from, to, BadRequest(fmt.Sprintf("endTime: must be after startTime (%s)", from.Format(time.RFC3339)))
	case start != nil && end != nil && to.Sub(from) > s.retention:
		return from, to, BadRequest(fmt.Sprintf("startTime: the window may span at most %s (usage is kept that long)", days(s.retention)))
	}
	return from, to, nil
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// loadBalancer authorizes the caller and finds the load balancer, deleted
// ones too.
func (s *Usage) loadBalancer(ctx context.Context, account string, id uint32) (*store.LoadBalancer, error) {
	if err := s.auth.Authorize(ctx, account); err != nil {
		return nil, err
	}
	lb, err := s.store.UsageLoadBalancer(ctx, account, id)
	if err != nil {
		return nil, lbFault(ctx, s.log, err)
	}
	return lb, nil
}

// GetUsage shows a load balancer's usage records, by default over the
// whole retention.
func (s *Usage) GetUsage(ctx context.Context, req *lbaasv1.GetUsageRequest) (*lbaasv1.LoadBalancerUsage, error) {
	if _, err := s.loadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	from, to, err := s.window(req.StartTime, req.EndTime, now.Add(-s.retention), now, false)
	if err != nil {
		return nil, err
	}
	return s.lbUsage(ctx, req.GetLoadBalancerId(), from, to, now)
}

// GetCurrentUsage shows the usage records of the preceding 24 hours.
func (s *Usage) GetCurrentUsage(ctx context.Context, req *lbaasv1.LoadBalancerUsageRef) (*lbaasv1.LoadBalancerUsage, error) {
	if _, err := s.loadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	return s.lbUsage(ctx, req.GetLoadBalancerId(), now.Add(-24*time.Hour), now, now)
}

func (s *Usage) lbUsage(ctx context.Context, id uint32, from, to, now time.Time) (*lbaasv1.LoadBalancerUsage, error) {
	recs, err := usage.Records(ctx, s.store, id, from, to, now)
	if err != nil {
		return nil, storeError(ctx, s.log, err)
	}
	return &lbaasv1.LoadBalancerUsage{LoadBalancerUsageRecords: apiUsageRecords(recs), Links: []*lbaasv1.Link{}}, nil
}

// GetAccountUsage shows the account's usage, by default of the preceding
// 24 hours.
func (s *Usage) GetAccountUsage(ctx context.Context, req *lbaasv1.GetAccountUsageRequest) (*lbaasv1.AccountBilling, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	defStart := now.Add(-24 * time.Hour)
	if req.StartTime == nil && req.EndTime != nil {
		defStart = now.Add(-s.retention)
	}
	from, to, err := s.window(req.StartTime, req.EndTime, defStart, now, false)
	if err != nil {
		return nil, err
	}
	accRecs, lbs, err := usage.Account(ctx, s.store, req.GetAccount(), from, to, now)
	if err != nil {
		return nil, storeError(ctx, s.log, err)
	}
	out := &lbaasv1.AccountBilling{AccountUsage: &lbaasv1.AccountUsage{}, AccountId: accountID(req.GetAccount())}
	for _, r := range accRecs {
		out.AccountUsage.AccountUsageRecords = append(out.AccountUsage.AccountUsageRecords, &lbaasv1.AccountUsageRecord{
			NumLoadBalancers: proto.Uint32(r.LoadBalancers), NumPublicVips: proto.Uint32(r.PublicVIPs),
			NumServicenetVips: proto.Uint32(r.ServicenetVIPs), StartTime: proto.String(usageTime(r.Start)),
		})
	}
	for _, lb := range lbs {
		out.LoadBalancerUsages = append(out.LoadBalancerUsages, &lbaasv1.LoadBalancerUsageOfAccount{
			LoadBalancerId: proto.Uint32(lb.ID), LoadBalancerName: proto.String(lb.Name),
			LoadBalancerUsageRecords: apiUsageRecords(lb.Records),
		})
	}
	return out, nil
}

// ListBillableLoadBalancers lists one page of the load balancers, deleted
// ones too, that existed between startTime and endTime.
func (s *Usage) ListBillableLoadBalancers(ctx context.Context, req *lbaasv1.ListBillableLoadBalancersRequest) (*lbaasv1.ListBillableLoadBalancersResponse, error) {
	if err := s.auth.Authorize(ctx, req.GetAccount()); err != nil {
		return nil, err
	}
	from, to, err := s.window(req.StartTime, req.EndTime, time.Time{}, time.Time{}, true)
	if err != nil {
		return nil, err
	}
	var v validation
	limit, offset := billablePage, 0
	if req.Limit != nil {
		if req.GetLimit() < 1 || req.GetLimit() > billableMaxPage {
			v.add("limit", "must be between 1 and %d (got %d)", billableMaxPage, req.GetLimit())
		}
		limit = int(req.GetLimit())
	}
	if req.Offset != nil {
		if req.GetOffset() < 0 {
			v.add("offset", "must not be negative (got %d)", req.GetOffset())
		}
		offset = int(req.GetOffset())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	lbs, err := s.store.BillableLoadBalancers(ctx, req.GetAccount(), from, to, offset, limit)
	if err != nil {
		return nil, storeError(ctx, s.log, err)
	}
	out := &lbaasv1.ListBillableLoadBalancersResponse{LoadBalancers: make([]*lbaasv1.LoadBalancer, len(lbs))}
	for i, lb := range lbs {
		out.LoadBalancers[i] = apiListedLoadBalancer(lb)
		out.LoadBalancers[i].VirtualIps = nil
	}
	return out, nil
}

// GetStatsHistory shows a load balancer's recent traffic (an extension).
func (s *Usage) GetStatsHistory(ctx context.Context, req *lbaasv1.GetStatsHistoryRequest) (*lbaasv1.GetStatsHistoryResponse, error) {
	window := "hour"
	if req.Window != nil {
		window = req.GetWindow()
	}
	w, ok := usage.Windows[window]
	if !ok {
		return nil, BadRequest(fmt.Sprintf("window: must be hour or day (got %q)", window))
	}
	if _, err := s.loadBalancer(ctx, req.GetAccount(), req.GetLoadBalancerId()); err != nil {
		return nil, err
	}
	points, err := usage.History(ctx, s.store, s.loadStats, req.GetLoadBalancerId(), window, s.now())
	if err != nil {
		return nil, storeError(ctx, s.log, err)
	}
	h := &lbaasv1.StatsHistory{Window: window, Step: uint32(w.Step / time.Second), Points: make([]*lbaasv1.StatsPoint, len(points))}
	for i, p := range points {
		h.Points[i] = &lbaasv1.StatsPoint{
			Time: usageTime(p.Time), Requests: proto.Float64(float64(p.Requests)), RequestErrors: proto.Float64(float64(p.RequestErrors)),
			CurrentConn: proto.Float64(p.Connections), IncomingTransfer: proto.Float64(float64(p.BytesIn)),
			OutgoingTransfer: proto.Float64(float64(p.BytesOut)),
		}
	}
	return &lbaasv1.GetStatsHistoryResponse{History: h}, nil
}

func apiUsageRecords(recs []usage.Record) []*lbaasv1.UsageRecord {
	out := make([]*lbaasv1.UsageRecord, len(recs))
	for i, r := range recs {
		out[i] = &lbaasv1.UsageRecord{
			Id: proto.Uint32(r.ID), AverageNumConnections: proto.Float64(r.AverageConnections),
			IncomingTransfer: proto.Float64(float64(r.BytesIn)), OutgoingTransfer: proto.Float64(float64(r.BytesOut)),
			AverageNumConnectionsSsl: proto.Float64(r.AverageConnsSSL),
			IncomingTransferSsl:      proto.Float64(float64(r.BytesInSSL)), OutgoingTransferSsl: proto.Float64(float64(r.BytesOutSSL)),
			NumVips: proto.Uint32(r.NumVIPs), NumPolls: proto.Uint32(r.NumPolls),
			StartTime: proto.String(usageTime(r.Start)), EndTime: proto.String(usageTime(r.End)),
			VipType: proto.String(r.VIPType), SslMode: proto.String(r.SSLMode),
			Requests: proto.Float64(float64(r.Requests)), RequestErrors: proto.Float64(float64(r.RequestErrors)),
		}
		if r.Event != "" {
			out[i].EventType = proto.String(r.Event)
		}
	}
	return out
}

func usageTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
