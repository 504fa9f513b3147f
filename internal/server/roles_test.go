package server_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

// startGRPC starts a server on cfg's database (a temp SQLite file when
// empty) and dials its gRPC port.
func startGRPC(t *testing.T, cfg server.Config) (*server.Server, *grpc.ClientConn) {
	t.Helper()
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/24")
	cfg.HTTPAddr, cfg.GRPCAddr, cfg.XDSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = filepath.Join(t.TempDir(), "db")
	}
	cfg.Fleet, cfg.Pools, cfg.Limits, cfg.TokenTTL = "default", pools, api.DefaultLimits, time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(srv.GRPCAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return srv, conn
}

// tokenOf creates a user of account 42 with roles and returns a token.
func tokenOf(t *testing.T, srv *server.Server, username string, roles ...auth.Role) string {
	t.Helper()
	key, err := srv.Auth.CreateUser(t.Context(), username, "42", "", roles...)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Auth.IssueToken(t.Context(), auth.Credentials{Username: username, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

// lbaasMethods are every method of every lbaas.v1 service, from the
// descriptors.
func lbaasMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("lbaas.v1", func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			for j := 0; j < f.Services().Get(i).Methods().Len(); j++ {
				out = append(out, f.Services().Get(i).Methods().Get(j))
			}
		}
		return true
	})
	if len(out) < 50 {
		t.Fatalf("%d lbaas.v1 methods in the descriptors", len(out))
	}
	return out
}

// invoke calls a method with a request that names account 42 (and nothing
// else) and the token, if any.
func invoke(conn *grpc.ClientConn, m protoreflect.MethodDescriptor, token string) error {
	req := dynamicpb.NewMessage(m.Input())
	req.Set(m.Input().Fields().ByName("account"), protoreflect.ValueOfString("42"))
	ctx := context.Background()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, auth.TokenHeader, token)
	}
	full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
	return conn.Invoke(ctx, full, req, dynamicpb.NewMessage(m.Output()))
}

// Every gRPC method, walked from the service descriptors, refuses a call
// without a token and checks the caller's roles: an observer may only
// read (PERMISSION_DENIED with the 403 fault otherwise), a creator may not
// delete. A method added without its check fails here.
func TestEveryGRPCMethodChecksRoles(t *testing.T) {
	srv, conn := startGRPC(t, server.Config{})
	owner := tokenOf(t, srv, "owner")
	observer := tokenOf(t, srv, "olga", auth.Observer)
	creator := tokenOf(t, srv, "cleo", auth.Creator)
	for _, m := range lbaasMethods(t) {
		full := "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
		action := api.Actions[full]
		if err := invoke(conn, m, ""); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s without a token: %v, want UNAUTHENTICATED", full, err)
		}
		for _, c := range []struct {
			who, token string
			allowed    bool
		}{
			{"the owner", owner, true},
			{"lbaas:observer", observer, action == api.Read},
			{"lbaas:creator", creator, action != api.Delete},
		} {
			err := invoke(conn, m, c.token)
			st := status.Convert(err)
			if c.allowed && st.Code() == codes.PermissionDenied {
				t.Errorf("%s as %s: %v, want it allowed", full, c.who, err)
			}
			if c.allowed {
				continue
			}
			if st.Code() != codes.PermissionDenied || len(st.Details()) != 1 ||
				st.Details()[0].(*lbaasv1.Fault).GetCode() != 403 {
				t.Errorf("%s as %s: %v %v, want PERMISSION_DENIED with the 403 fault", full, c.who, err, st.Details())
			}
		}
	}
}

// Over gRPC a rate limit is RESOURCE_EXHAUSTED with the 413 fault and a
// google.rpc.RetryInfo saying how long to wait; refused calls are not
// counted, and the limit is the account's, set in the store.
func TestGRPCRateLimit(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	st, err := store.Open(t.Context(), store.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetAccountRateLimit(t.Context(), store.AccountRateLimit{Account: "42", Verb: "POST", Unit: "MINUTE", Value: 2}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	srv, conn := startGRPC(t, server.Config{DatabaseURL: db, RateLimits: true})
	ctx := metadata.AppendToOutgoingContext(t.Context(), auth.TokenHeader, tokenOf(t, srv, "owner"))
	lbs := lbaasv1.NewLoadBalancerServiceClient(conn)
	for i := range 2 {
		// Bad requests, but authenticated ones: they count.
		if _, err := lbs.CreateLoadBalancer(ctx, &lbaasv1.CreateLoadBalancerRequest{Account: "42"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("create %d: %v, want INVALID_ARGUMENT", i, err)
		}
	}
	for i := range 2 {
		_, err := lbs.CreateLoadBalancer(ctx, &lbaasv1.CreateLoadBalancerRequest{Account: "42"})
		s := status.Convert(err)
		var retry *errdetails.RetryInfo
		var fault *lbaasv1.Fault
		for _, d := range s.Details() {
			switch d := d.(type) {
			case *errdetails.RetryInfo:
				retry = d
			case *lbaasv1.Fault:
				fault = d
			}
		}
		// 2 a minute: the next one in about 30 s.
		if s.Code() != codes.ResourceExhausted || fault.GetCode() != 413 || fault.GetKind() != "overLimit" ||
			retry.GetRetryDelay().AsDuration() <= 20*time.Second || retry.GetRetryDelay().AsDuration() > 30*time.Second {
			t.Errorf("create over the limit (%d): %v, fault %v, retry %v", i, err, fault, retry)
		}
	}
	// Other methods have their own limits.
	if _, err := lbs.ListLoadBalancers(ctx, &lbaasv1.ListLoadBalancersRequest{Account: "42"}); err != nil {
		t.Errorf("list after the POSTs ran out: %v", err)
	}
}
