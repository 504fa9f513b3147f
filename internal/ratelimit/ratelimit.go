// Package ratelimit enforces the reference's rate limits: per account and
// HTTP method, at most so many requests per second and per minute
// (general-api-info/limits.rst), each a token bucket (golang.org/x/time/rate)
// holding up to the limit's value and refilled over its unit. Operators
// override an account's limits in the store (lbaasd limits set); every
// replica rereads the overrides every 30 s. Buckets live in each
// replica's memory: with N replicas behind a balancer an account gets up
// to N times its limits (docs/architecture.md says why).
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openlbaas/lbaas/store"
)

// Units are the units a limit counts requests per.
var Units = map[string]time.Duration{"SECOND": time.Second, "MINUTE": time.Minute}

// Verbs are the HTTP methods limits apply to, in the reference's order.
var Verbs = []string{"GET", "PUT", "DELETE", "POST"}

// Rule allows Value requests with HTTP method Verb per Unit.
type Rule struct {
	Verb  string
	Unit  string
	Value uint32
}

// Defaults are the reference's default rate limits.
var Defaults = []Rule{
	{"GET", "SECOND", 10}, {"GET", "MINUTE", 600},
	{"PUT", "SECOND", 10}, {"PUT", "MINUTE", 600},
	{"DELETE", "SECOND", 5}, {"DELETE", "MINUTE", 300},
	{"POST", "SECOND", 5}, {"POST", "MINUTE", 300},
}

// Check refuses a rule that names no known method or unit, or allows
// nothing.
func (r Rule) Check() error {
	if !slices.Contains(Verbs, r.Verb) {
		return fmt.Errorf("method %q: want one of GET, PUT, DELETE, POST", r.Verb)
	}
	if _, ok := Units[r.Unit]; !ok {
		return fmt.Errorf("unit %q: want SECOND or MINUTE", r.Unit)
	}
	if r.Value == 0 {
		return fmt.Errorf("a limit must allow at least 1 request")
	}
	return nil
}

// Refresh is how often the per-account overrides are read again.
const Refresh = 30 * time.Second

// maxBuckets bounds the buckets kept; past it, full ones (which a new
// bucket would equal) are dropped.
const maxBuckets = 100_000

type ruleKey struct{ verb, unit string }

type bucketKey struct {
	account string
	ruleKey
}

// Limiter counts requests per account, method and unit.
type Limiter struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	overrides map[string]map[ruleKey]uint32 // account -> rule -> value
	buckets   map[bucketKey]*rate.Limiter
}

// New returns a limiter with the default limits; Load or Run read the
// accounts' overrides from st.
func New(st *store.Store, log *slog.Logger) *Limiter {
	return &Limiter{store: st, log: log, now: time.Now, overrides: map[string]map[ruleKey]uint32{},
		buckets: map[bucketKey]*rate.Limiter{}}
}

// Rules are an account's limits: the defaults with its overrides.
func (l *Limiter) Rules(account string) []Rule {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rules(account)
}

func (l *Limiter) rules(account string) []Rule {
	out := slices.Clone(Defaults)
	for i, r := range out {
		out[i] = l.rule(account, r)
	}
	return out
}

// rule is a default rule with the account's value.
func (l *Limiter) rule(account string, r Rule) Rule {
	if v, ok := l.overrides[account][ruleKey{r.Verb, r.Unit}]; ok {
		r.Value = v
	}
	return r
}

func (l *Limiter) bucket(account string, r Rule) *rate.Limiter {
	k := bucketKey{account, ruleKey{r.Verb, r.Unit}}
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.dropFull()
		}
		b = rate.NewLimiter(every(r), int(r.Value))
		l.buckets[k] = b
	}
	return b
}

func every(r Rule) rate.Limit {
	return rate.Limit(float64(r.Value) / Units[r.Unit].Seconds())
}

func (l *Limiter) dropFull() {
	now := l.now()
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
}

// Allow counts one request of account with HTTP method verb, unless one
// of its limits is used up: then nothing is counted, and retryAfter is
// how long until every limit allows it again.
func (l *Limiter) Allow(account, verb string) (retryAfter time.Duration, details string, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var taken []*rate.Reservation
	var refused *Rule
	for _, r := range Defaults {
		if r.Verb != verb {
			continue
		}
		r = l.rule(account, r)
		res := l.bucket(account, r).ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			if d > retryAfter {
				retryAfter, refused = d, &r
			}
			res.CancelAt(now)
			continue
		}
		taken = append(taken, res)
	}
	if refused == nil {
		return 0, "", true
	}
	for _, res := range taken {
		res.CancelAt(now)
	}
	return retryAfter, fmt.Sprintf("Account %s may send %d %s requests per %s.", account, refused.Value, verb, refused.Unit), false
}

// State is a limit as GET /limits shows it.
type State struct {
	Rule
	Remaining     uint32
	NextAvailable time.Time
}

// Status is each of the account's limits with what is left of it now.
func (l *Limiter) Status(account string) []State {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []State
	for _, r := range l.rules(account) {
		s := State{Rule: r, Remaining: r.Value, NextAvailable: now}
		if b := l.buckets[bucketKey{account, ruleKey{r.Verb, r.Unit}}]; b != nil {
			tokens := max(b.TokensAt(now), 0)
			s.Remaining = uint32(tokens)
			if tokens < 1 {
				s.NextAvailable = now.Add(time.Duration((1 - tokens) / float64(b.Limit()) * float64(time.Second)))
			}
		}
		out = append(out, s)
	}
	return out
}

// Load reads every account's overrides from the store and applies them,
// to existing buckets too.
func (l *Limiter) Load(ctx context.Context) error {
	rows, err := l.store.AccountRateLimits(ctx)
	if err != nil {
		return err
	}
	overrides := map[string]map[ruleKey]uint32{}
	for _, row := range rows {
		if overrides[row.Account] == nil {
			overrides[row.Account] = map[ruleKey]uint32{}
		}
		overrides[row.Account][ruleKey{row.Verb, row.Unit}] = row.Value
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.overrides = overrides
	for k, b := range l.buckets {
		r := Rule{Verb: k.verb, Unit: k.unit, Value: defaultValue(k.ruleKey)}
		if v, ok := overrides[k.account][k.ruleKey]; ok {
			r.Value = v
		}
		if b.Burst() != int(r.Value) {
			b.SetLimitAt(now, every(r))
			b.SetBurstAt(now, int(r.Value))
		}
	}
	return nil
}

func defaultValue(k ruleKey) uint32 {
	for _, r := range Defaults {
		if r.Verb == k.verb && r.Unit == k.unit {
			return r.Value
		}
	}
	return 0
}

// Run rereads the overrides every Refresh until ctx ends. A failure keeps
// the overrides read last.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Load(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("rate limit overrides not reread", "err", err)
			}
		}
	}
}
