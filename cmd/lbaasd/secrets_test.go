package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

// 'lbaasd secrets rotate' re-wraps every sealed key (SSL terminations'
// and certificate mappings') with the new key; a
// server then starts with the new key only, and refuses the old one with
// a clear error. On SQLite and PostgreSQL.
func TestSecretsRotate(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{
		"sqlite":   func(t testing.TB) string { return filepath.Join(t.TempDir(), "lbaasd.db") },
		"postgres": pgtest.NewDatabase,
	} {
		t.Run(name, func(t *testing.T) { testSecretsRotate(t, url(t)) })
	}
}

func testSecretsRotate(t *testing.T, db string) {
	ctx := context.Background()
	dir := t.TempDir()
	oldFile, newFile, otherFile := filepath.Join(dir, "old"), filepath.Join(dir, "new"), filepath.Join(dir, "other")
	oldKeys, err := secrets.Generate(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	newKeys, _ := secrets.Generate(newFile)
	otherKeys, err := secrets.Generate(otherFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the private key of load balancer 1")

	st, err := store.Open(ctx, store.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for range 2 {
		if _, err := st.Update(ctx, func(tx *store.Tx) error {
			lb := &store.LoadBalancer{Account: "1", Name: "tls", Protocol: "HTTP", Port: 80, Algorithm: "RANDOM",
				Status: store.StatusActive, Timeout: 30, Fleet: "default", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := tx.CreateLoadBalancer(lb); err != nil {
				return err
			}
			sealed, err := oldKeys.Seal(secret, store.SecretContext(lb.ID))
			if err != nil {
				return err
			}
			mapped, err := oldKeys.Seal(secret, store.MappingSecretContext(lb.ID, 1))
			if err != nil {
				return err
			}
			lb.SSLTermination = &store.SSLTermination{Certificate: "cert", SealedKey: sealed, Enabled: true, SecurePort: 443,
				Mappings: []store.CertificateMapping{{ID: 1, HostName: "a.example.com", Certificate: "cert", SealedKey: mapped}}, LastMappingID: 1}
			ids = append(ids, lb.ID)
			return tx.SaveLoadBalancer(lb)
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.Close()

	start := func(keyFile string) error {
		srv, err := server.Start(ctx, server.Config{
			HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0",
			DatabaseURL: db, SecretsKeyFile: keyFile, Fleet: "default", Limits: api.DefaultLimits, TokenTTL: time.Hour,
			DisableHealthChecks: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}
		return err
	}
	if err := start(oldFile); err != nil {
		t.Fatalf("start with the key the database is sealed with: %v", err)
	}
	if err := start(otherFile); err == nil || !strings.Contains(err.Error(), "does not open the private key of load balancer") {
		t.Fatalf("start with another key: %v, want a clear refusal", err)
	}

	// A wrong old key changes nothing.
	if _, err := run(t, "secrets", "rotate", "--database-url", db, "--secrets-key-file", otherFile, "--new-key-file", newFile); err == nil {
		t.Fatal("rotate with a wrong old key succeeded")
	}
	if err := start(oldFile); err != nil {
		t.Fatalf("a failed rotation changed the database: %v", err)
	}
	mustRun(t, "secrets", "rotate", "--database-url", db, "--secrets-key-file", oldFile, "--new-key-file", newFile)
	// Run again (an interrupted rotation is finished by running it again).
	mustRun(t, "secrets", "rotate", "--database-url", db, "--secrets-key-file", oldFile, "--new-key-file", newFile)

	st, err = store.Open(ctx, store.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealed, err := st.SealedKeys(ctx)
	if err != nil || len(sealed) != 4 {
		t.Fatalf("sealed keys: %v, %v", sealed, err)
	}
	for i, k := range sealed {
		if k.LoadBalancerID != ids[i/2] || k.MappingID != uint32(i%2) {
			t.Errorf("sealed key %d belongs to %s, want load balancer %d mapping %d", i, k.Owner(), ids[i/2], i%2)
		}
		if got, err := newKeys.Open(k.Sealed, k.Context()); err != nil || !bytes.Equal(got, secret) {
			t.Errorf("the new key opens %q, %v", got, err)
		}
		if _, err := oldKeys.Open(k.Sealed, k.Context()); err == nil {
			t.Error("the old key still opens a rotated secret")
		}
	}
	if err := start(newFile); err != nil {
		t.Fatalf("start with the new key: %v", err)
	}
	if err := start(oldFile); err == nil {
		t.Fatal("the old key still starts the server after the rotation")
	}

	// A certificate mapping's key the server's key does not open stops
	// the start too, naming the mapping.
	if _, err := st.Update(ctx, func(tx *store.Tx) error {
		lb, err := tx.LoadBalancer("1", ids[1])
		if err != nil {
			return err
		}
		if lb.SSLTermination.Mappings[0].SealedKey, err = otherKeys.Seal(secret, store.MappingSecretContext(lb.ID, 1)); err != nil {
			return err
		}
		return tx.SaveLoadBalancer(lb)
	}); err != nil {
		t.Fatal(err)
	}
	if err := start(newFile); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("load balancer %d (certificate mapping 1)", ids[1])) {
		t.Fatalf("start with a mapping key sealed by another key: %v, want a refusal naming the mapping", err)
	}
}
