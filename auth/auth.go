// Package auth issues and checks API tokens for users of one tenant
// (account) each. API keys and tokens are random and long, so they are
// stored as SHA-256 hashes; passwords are stored with bcrypt.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/metadata"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/store"
)

// TokenHeader carries the token: an HTTP header, and gRPC metadata key.
const TokenHeader = "x-auth-token"

// ErrBadCredentials means the username, key or password did not match.
var ErrBadCredentials = errors.New("auth: unable to authenticate user with credentials provided")

// Service manages users and tokens.
type Service struct {
	store *store.Store
	ttl   time.Duration
	log   *slog.Logger
	now   func() time.Time
	// Limiter, when set, counts every authenticated call against the rate
	// limits of the caller's account.
	Limiter RateLimiter

	// tokens caches what validated tokens allow (by hash), each until its
	// expiry or recheck, whichever comes first: a request then costs no
	// token lookup.
	tokens *lru.Cache[string, cached]
}

// RateLimiter decides whether an account may make one more request with
// an HTTP method now; when not, how long until it may.
type RateLimiter interface {
	Allow(account, verb string) (retryAfter time.Duration, details string, ok bool)
}

type cached struct {
	tenant  string
	roles   []Role
	expires time.Time // the token's expiry, or when to look again
}

// maxCached bounds the token cache; the least recently used go first.
const maxCached = 100_000

// recheck is how long a looked-up token is trusted without looking again:
// a deleted user, a new API key or changed roles take effect within it on
// every replica.
const recheck = 30 * time.Second

// New returns the auth service; tokens live for ttl.
func New(st *store.Store, ttl time.Duration, log *slog.Logger) *Service {
	tokens, err := lru.New[string, cached](maxCached)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Service{store: st, ttl: ttl, log: log, now: time.Now, tokens: tokens}
}

var validTenant = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CreateUser adds a user of tenant and returns its new API key. A password
// is optional ("" for none). Without roles the user is the account owner
// when the account has none yet, else an lbaas:admin.
func (s *Service) CreateUser(ctx context.Context, username, tenant, password string, roles ...Role) (string, error) {
	if username == "" || len(username) > 128 {
		return "", fmt.Errorf("username must be 1 to 128 characters")
	}
	if !validTenant.MatchString(tenant) {
		return "", fmt.Errorf("tenant must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	owner, err := s.ownerOf(ctx, tenant)
	if err != nil {
		return "", err
	}
	switch {
	case len(roles) == 0 && owner == "":
		roles = []Role{Owner}
	case len(roles) == 0:
		roles = []Role{Admin}
	}
	if err := checkRoles(roles, tenant, owner, username); err != nil {
		return "", err
	}
	key := randomHex(32)
	u := &store.User{Username: username, Tenant: tenant, APIKeyHash: hash(key), Roles: joinRoles(roles)}
	if password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return "", err
		}
		u.PasswordHash = string(h)
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return "", err
	}
	return key, nil
}

// ownerOf is the username of the account's owner ("" when it has none).
func (s *Service) ownerOf(ctx context.Context, tenant string) (string, error) {
	users, err := s.store.Users(ctx, tenant)
	for _, u := range users {
		if slices.Contains(storedRoles(u.Roles), Owner) {
			return u.Username, err
		}
	}
	return "", err
}

// checkRoles refuses an empty role list, an owner role mixed with others
// and a second owner of the account.
func checkRoles(roles []Role, tenant, owner, username string) error {
	if _, err := ParseRoles(joinRoles(roles)); err != nil {
		return err
	}
	if len(roles) == 0 {
		return errors.New("give at least one role")
	}
	if slices.Contains(roles, Owner) && owner != "" && owner != username {
		return fmt.Errorf("account %s already has its owner (%s)", tenant, owner)
	}
	return nil
}

// Users lists the users of a tenant ("" for all).
func (s *Service) Users(ctx context.Context, tenant string) ([]store.User, error) {
	return s.store.Users(ctx, tenant)
}

// DeleteUser removes a user; its tokens stop working (on every replica
// within 30 s).
func (s *Service) DeleteUser(ctx context.Context, username string) error {
	return s.store.DeleteUser(ctx, username)
}

// RotateKey gives a user a new API key and revokes its tokens; the old key
// stops working at once.
func (s *Service) RotateKey(ctx context.Context, username string) (string, error) {
	key := randomHex(32)
	if err := s.store.UpdateUser(ctx, username, hash(key), ""); err != nil {
		return "", err
	}
	return key, nil
}

// SetRoles replaces a user's roles (its tokens carry them within 30 s).
func (s *Service) SetRoles(ctx context.Context, username string, roles []Role) error {
	u, err := s.store.UserByName(ctx, username)
	if err != nil {
		return err
	}
	owner, err := s.ownerOf(ctx, u.Tenant)
	if err != nil {
		return err
	}
	if err := checkRoles(roles, u.Tenant, owner, username); err != nil {
		return err
	}
	return s.store.UpdateUser(ctx, username, "", joinRoles(roles))
}

// Credentials are what a token request proves identity with: an API key
// or a password.
type Credentials struct {
	Username string
	APIKey   string
	Password string
}

// Token is an issued token.
type Token struct {
	ID      string
	Expires time.Time
	User    *store.User
	Method  string // APIKEY or PASSWORD
	Roles   []Role // what the token allows
}

// IssueToken checks credentials and issues a token.
func (s *Service) IssueToken(ctx context.Context, c Credentials) (*Token, error) {
	u, err := s.store.UserByName(ctx, c.Username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	method := "APIKEY"
	switch {
	case c.APIKey != "":
		if subtle.ConstantTimeCompare([]byte(hash(c.APIKey)), []byte(u.APIKeyHash)) != 1 {
			return nil, ErrBadCredentials
		}
	case c.Password != "" && u.PasswordHash != "":
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(c.Password)) != nil {
			return nil, ErrBadCredentials
		}
		method = "PASSWORD"
	default:
		return nil, ErrBadCredentials
	}
	id := randomHex(32)
	t := &store.Token{Hash: hash(id), UserID: u.ID, Tenant: u.Tenant, ExpiresAt: s.now().Add(s.ttl).UTC()}
	if err := s.store.SaveToken(ctx, t); err != nil {
		return nil, err
	}
	return &Token{ID: id, Expires: t.ExpiresAt, User: u, Method: method, Roles: storedRoles(u.Roles)}, nil
}

// Authorize implements api.Authorizer, for the method the request calls:
// the token in the request's metadata must be valid (else 401); the call
// counts against the rate limits of the token's account (else 413 with
// the time to wait); the token must belong to the account (else 404, so
// that another tenant's resources are never revealed); and the user's
// roles must allow the method's action (else 403).
func (s *Service) Authorize(ctx context.Context, account string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	tokens := md.Get(TokenHeader)
	if len(tokens) != 1 || tokens[0] == "" || len(tokens[0]) > 256 {
		return api.Unauthorized()
	}
	grant, err := s.grantOf(ctx, tokens[0])
	if errors.Is(err, store.ErrNotFound) {
		return api.Unauthorized()
	}
	if err != nil {
		s.log.ErrorContext(ctx, "token lookup failed", "err", err)
		return api.Unavailable()
	}
	method := api.CalledMethod(ctx)
	action, ok := api.Actions[method]
	if !ok {
		// A method without an action (see api.Actions) is nobody's.
		s.log.ErrorContext(ctx, "method has no RBAC action: refused", "method", method)
		return api.Forbidden("This method is not available to any role.")
	}
	if s.Limiter != nil {
		if wait, details, ok := s.Limiter.Allow(grant.tenant, action.Verb()); !ok {
			return api.RateLimited(wait, details)
		}
	}
	if grant.tenant != account {
		return api.NotFound("Object not Found")
	}
	if !allowed(grant.roles, action) {
		return api.Forbidden(fmt.Sprintf("The roles of this user (%s) do not allow %s requests.",
			joinRoles(grant.roles), action.Verb()))
	}
	return nil
}

// grantOf finds what a token allows, from the cache when it was looked up
// less than recheck ago.
func (s *Service) grantOf(ctx context.Context, token string) (cached, error) {
	h := hash(token)
	now := s.now()
	if c, ok := s.tokens.Get(h); ok {
		if now.Before(c.expires) {
			return c, nil
		}
		s.tokens.Remove(h)
	}
	g, err := s.store.GrantOf(ctx, h)
	if err != nil {
		return cached{}, err
	}
	c := cached{tenant: g.Tenant, roles: storedRoles(g.Roles), expires: now.Add(recheck)}
	if g.ExpiresAt.Before(c.expires) {
		c.expires = g.ExpiresAt
	}
	s.tokens.Add(h, c)
	return c, nil
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
