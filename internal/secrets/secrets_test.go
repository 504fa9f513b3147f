package secrets_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openlbaas/lbaas/internal/secrets"
)

func keyring(t *testing.T) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Generate(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRewrap(t *testing.T) {
	a, b := keyring(t), keyring(t)
	secret := []byte("-----BEGIN RSA PRIVATE KEY-----\nsecret\n-----END RSA PRIVATE KEY-----\n")
	sealed, err := a.Seal(secret, []byte("lb/1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) || bytes.Contains(sealed, []byte("PRIVATE")) {
		t.Fatalf("the sealed secret holds the plaintext: %q", sealed)
	}
	again, _ := a.Seal(secret, []byte("lb/1"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one secret are equal: the data key or nonce is reused")
	}
	if got, err := a.Open(sealed, []byte("lb/1")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := a.Open(sealed, []byte("lb/2")); err == nil {
		t.Fatal("a secret opened for another owner")
	}
	if _, err := b.Open(sealed, []byte("lb/1")); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("another key: err = %v, want ErrWrongKey", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := a.Open(tampered, []byte("lb/1")); err == nil {
		t.Fatal("an altered secret opened")
	}
	// Rotation: b opens what a sealed once re-wrapped, a no longer does.
	rewrapped, err := a.Rewrap(sealed, b)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := secrets.Sealed(rewrapped); !ok || id != b.ID() {
		t.Fatalf("rewrapped under %q, want %q", id, b.ID())
	}
	if got, err := b.Open(rewrapped, []byte("lb/1")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open after rewrap = %q, %v", got, err)
	}
	if _, err := a.Open(rewrapped, []byte("lb/1")); !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("the old key opens a rewrapped secret: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	k, err := secrets.Generate(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode(), err)
	}
	if _, err := secrets.Generate(path); err == nil {
		t.Fatal("Generate overwrote an existing key file")
	}
	loaded, err := secrets.LoadFile(path)
	if err != nil || loaded.ID() != k.ID() {
		t.Fatalf("LoadFile = %v, %v", loaded, err)
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := secrets.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
