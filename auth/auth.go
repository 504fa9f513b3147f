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

	// tokens caches validated tokens (by hash) until they expire, so that
	// a request costs no token lookup; RevokeTokens empties it of a user's.
	tokens *lru.Cache[string, cached]
}

type cached struct {
	userID  uint32
	tenant  string
	expires time.Time
}

// maxCached bounds the token cache; the least recently used go first.
const maxCached = 100_000

// New returns the auth service; tokens live for ttl.
func New(st *store.Store, ttl time.Duration, log *slog.Logger) *Service {
	tokens, err := lru.New[string, cached](maxCached)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Service{store: st, ttl: ttl, log: log, now: time.Now, tokens: tokens}
}

// RevokeTokens ends every token of a user at once: they are deleted from
// the store and forgotten by this replica's cache.
func (s *Service) RevokeTokens(ctx context.Context, userID uint32) error {
	err := s.store.DeleteTokens(ctx, userID)
	for _, h := range s.tokens.Keys() {
		if c, ok := s.tokens.Peek(h); ok && c.userID == userID {
			s.tokens.Remove(h)
		}
	}
	return err
}

var validTenant = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CreateUser adds a user of tenant and returns its new API key. A password
// is optional ("" for none).
func (s *Service) CreateUser(ctx context.Context, username, tenant, password string) (string, error) {
	if username == "" || len(username) > 128 {
		return "", fmt.Errorf("username must be 1 to 128 characters")
	}
	if !validTenant.MatchString(tenant) {
		return "", fmt.Errorf("tenant must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	key := randomHex(32)
	u := &store.User{Username: username, Tenant: tenant, APIKeyHash: hash(key)}
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
	return &Token{ID: id, Expires: t.ExpiresAt, User: u, Method: method}, nil
}

// Authorize implements api.Authorizer: the token in the request's metadata
// must be valid (else 401) and belong to the account (else 404, so that
// another tenant's resources are never revealed).
func (s *Service) Authorize(ctx context.Context, account string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	tokens := md.Get(TokenHeader)
	if len(tokens) != 1 || tokens[0] == "" || len(tokens[0]) > 256 {
		return api.Unauthorized()
	}
	tenant, err := s.tenantOf(ctx, tokens[0])
	if errors.Is(err, store.ErrNotFound) {
		return api.Unauthorized()
	}
	if err != nil {
		s.log.ErrorContext(ctx, "token lookup failed", "err", err)
		return api.Unavailable()
	}
	if tenant != account {
		return api.NotFound("Object not Found")
	}
	return nil
}

func (s *Service) tenantOf(ctx context.Context, token string) (string, error) {
	h := hash(token)
	if c, ok := s.tokens.Get(h); ok {
		if s.now().Before(c.expires) {
			return c.tenant, nil
		}
		s.tokens.Remove(h)
	}
	t, err := s.store.TokenByHash(ctx, h)
	if err != nil {
		return "", err
	}
	s.tokens.Add(h, cached{userID: t.UserID, tenant: t.Tenant, expires: t.ExpiresAt})
	return t.Tenant, nil
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
