package auth

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/openlbaas/lbaas/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "auth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return New(st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func withToken(token string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(TokenHeader, token))
}

// A validated token is served from the cache, but not past its expiry, and
// not once its user's tokens are revoked.
func TestCachedTokens(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	key, err := s.CreateUser(ctx, "alice", "1234", "")
	if err != nil {
		t.Fatal(err)
	}
	issue := func() *Token {
		t.Helper()
		tok, err := s.IssueToken(ctx, Credentials{Username: "alice", APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	tok := issue()
	if err := s.Authorize(withToken(tok.ID), "1234"); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	if s.tokens.Len() != 1 {
		t.Fatalf("cache holds %d tokens after one use, want 1", s.tokens.Len())
	}
	if err := s.Authorize(withToken(tok.ID), "5678"); err == nil {
		t.Error("cached token of tenant 1234 authorized for 5678")
	}

	// Past its expiry the cached token is refused.
	s.ttl = 100 * time.Millisecond
	short := issue()
	if err := s.Authorize(withToken(short.ID), "1234"); err != nil {
		t.Fatal(err)
	}
	for !time.Now().After(short.Expires) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Authorize(withToken(short.ID), "1234"); err == nil {
		t.Error("expired token still authorized")
	}
	s.ttl = time.Hour

	other, err := s.CreateUser(ctx, "bob", "1234", "")
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := s.IssueToken(ctx, Credentials{Username: "bob", APIKey: other})
	if err != nil {
		t.Fatal(err)
	}
	tok = issue()
	for _, id := range []string{tok.ID, bobs.ID} {
		if err := s.Authorize(withToken(id), "1234"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeTokens(ctx, tok.User.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(withToken(tok.ID), "1234"); err == nil {
		t.Error("revoked token still authorized")
	}
	if err := s.Authorize(withToken(bobs.ID), "1234"); err != nil {
		t.Errorf("another user's token refused after a revocation: %v", err)
	}
}
