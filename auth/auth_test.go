package auth

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/store"
)

// stream names the method a call is for, as gRPC's server does.
type stream struct{ method string }

func (s stream) Method() string             { return s.method }
func (stream) SetHeader(metadata.MD) error  { return nil }
func (stream) SendHeader(metadata.MD) error { return nil }
func (stream) SetTrailer(metadata.MD) error { return nil }

func call(token, method string) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(TokenHeader, token))
	return grpc.NewContextWithServerTransportStream(ctx, stream{method})
}

const deleteLB = "/lbaas.v1.LoadBalancerService/DeleteLoadBalancer"

// A role change, a deleted user and a new API key reach tokens already in
// use within recheck, on every replica (each looks again), not at the
// token's expiry; a method without an RBAC action is nobody's.
func TestTokensFollowTheirUser(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st, 24*time.Hour, slog.New(slog.DiscardHandler))
	now := time.Now()
	s.now = func() time.Time { return now }
	ctx := context.Background()
	key, err := s.CreateUser(ctx, "olga", "acc", "", Observer)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.IssueToken(ctx, Credentials{Username: "olga", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	check := func(method string, want codes.Code) {
		t.Helper()
		if got := status.Code(s.Authorize(call(tok.ID, method), "acc")); got != want {
			t.Errorf("%s: %v, want %v", method, got, want)
		}
	}
	check(deleteLB, codes.PermissionDenied)
	check("/lbaas.v1.LoadBalancerService/GetLoadBalancer", codes.OK)
	check("/lbaas.v1.LoadBalancerService/NoSuchMethod", codes.PermissionDenied)

	if err := s.SetRoles(ctx, "olga", []Role{Admin}); err != nil {
		t.Fatal(err)
	}
	check(deleteLB, codes.PermissionDenied) // still the looked-up roles
	now = now.Add(recheck)
	check(deleteLB, codes.OK)

	if _, err := s.RotateKey(ctx, "olga"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueToken(ctx, Credentials{Username: "olga", APIKey: key}); err != ErrBadCredentials {
		t.Errorf("token for the old key: %v, want ErrBadCredentials", err)
	}
	now = now.Add(recheck)
	check(deleteLB, codes.Unauthenticated)

	// Deleting a user ends its tokens the same way.
	key, err = s.CreateUser(ctx, "adam", "acc", "")
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = s.IssueToken(ctx, Credentials{Username: "adam", APIKey: key}); err != nil {
		t.Fatal(err)
	}
	check(deleteLB, codes.OK)
	if err := s.DeleteUser(ctx, "adam"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(recheck)
	check(deleteLB, codes.Unauthenticated)
}

// Roles: the first user of an account owns it, one owner per account,
// the owner's role alone, unknown names refused.
func TestRoleRules(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st, time.Hour, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	mustCreate := func(name string, roles ...Role) {
		t.Helper()
		if _, err := s.CreateUser(ctx, name, "acc", "", roles...); err != nil {
			t.Fatalf("CreateUser(%s): %v", name, err)
		}
	}
	mustCreate("first")
	mustCreate("second")
	if _, err := s.CreateUser(ctx, "third", "acc", "", Owner); err == nil {
		t.Error("a second owner of the account was created")
	}
	if err := s.SetRoles(ctx, "second", []Role{Owner}); err == nil {
		t.Error("a second owner was made by SetRoles")
	}
	if err := s.SetRoles(ctx, "first", []Role{Owner}); err != nil {
		t.Errorf("the owner keeping its role: %v", err)
	}
	if err := s.SetRoles(ctx, "second", nil); err == nil {
		t.Error("a user left without roles")
	}
	users, _ := s.Users(ctx, "acc")
	if len(users) != 2 || users[0].Roles != "identity:user-admin" || users[1].Roles != "lbaas:admin" {
		t.Errorf("users %+v", users)
	}
	for _, bad := range []string{"lbaas:root", "identity:user-admin,lbaas:observer"} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
	if rs, err := ParseRoles(" lbaas:observer, lbaas:creator,lbaas:observer"); err != nil || joinRoles(rs) != "lbaas:observer,lbaas:creator" {
		t.Errorf("ParseRoles = %v, %v", rs, err)
	}
	// Of several roles the most extensive wins.
	if !allowed([]Role{GlobalObserver, Admin}, api.Delete) || allowed([]Role{Creator, Observer}, api.Delete) {
		t.Error("role precedence")
	}
}
