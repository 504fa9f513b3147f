// Package grpctest serves gRPC services on loopback for tests.
package grpctest

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Loopback serves what register registers on a gRPC server on 127.0.0.1
// and returns a client connection to it; both end with the test.
func Loopback(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	g := grpc.NewServer()
	register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
