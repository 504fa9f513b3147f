// Package secrets encrypts secrets at rest (the private keys of SSL
// termination) with an envelope scheme: each secret has a data key of its
// own (AES-256-GCM), and the data key is stored wrapped (AES-256-GCM) by
// the key-encryption key (KEK) given at start. The database alone never
// reveals a secret; changing the KEK re-wraps the data keys only.
package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of a key-encryption key: 32 bytes (AES-256).
const KeySize = 32

// version is the first byte of a sealed secret (its format).
const version = 1

const (
	idSize    = 8  // the KEK's id: the first bytes of SHA-256 of the KEK
	nonceSize = 12 // AES-GCM's standard nonce
	tagSize   = 16
	// wrappedSize is a wrapped data key: nonce, key, tag.
	wrappedSize = nonceSize + KeySize + tagSize
	headerSize  = 1 + idSize + wrappedSize + nonceSize
)

// ErrWrongKey is the error opening a secret sealed with another KEK.
var ErrWrongKey = errors.New("the secret was sealed with another key-encryption key")

// Keyring seals and opens secrets with one key-encryption key.
type Keyring struct {
	id  [idSize]byte
	kek cipher.AEAD
}

// New returns the keyring of a 32-byte key-encryption key.
func New(kek []byte) (*Keyring, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("a key-encryption key is %d bytes (got %d)", KeySize, len(kek))
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	k := &Keyring{kek: aead}
	sum := sha256.Sum256(kek)
	copy(k.id[:], sum[:])
	return k, nil
}

// ID is the key-encryption key's id (it identifies the key, it reveals
// nothing of it): the hex of the first 8 bytes of its SHA-256.
func (k *Keyring) ID() string { return hex.EncodeToString(k.id[:]) }

// ParseKey reads a key as written in a key file or the environment: 32
// bytes in standard base64 (surrounding white space ignored).
func ParseKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, errors.New("the key-encryption key is not base64")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("the key-encryption key is %d bytes, want %d (32 random bytes in base64)", len(key), KeySize)
	}
	return key, nil
}

// LoadFile returns the keyring of the key in a key file.
func LoadFile(path string) (*Keyring, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return New(key)
}

// Generate writes a new random key to a file of mode 0600 that must not
// exist yet, and returns its keyring.
func Generate(path string) (*Keyring, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext with a new data key and wraps the data key.
// context (such as the owner's id) is authenticated, not stored: Open
// must be given the same, so a sealed secret cannot be moved to another
// owner. The result is: version, KEK id, wrapped data key, nonce,
// ciphertext.
func (k *Keyring) Seal(plaintext, context []byte) ([]byte, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerSize+len(plaintext)+tagSize)
	out = append(out, version)
	out = append(out, k.id[:]...)
	wrapped, err := k.wrap(dek)
	if err != nil {
		return nil, err
	}
	out = append(out, wrapped...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	data, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	return data.Seal(out, nonce, plaintext, context), nil
}

// wrap encrypts a data key with the KEK.
func (k *Keyring) wrap(dek []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, wrappedSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.kek.Seal(nonce, nonce, dek, k.id[:]), nil
}

// unwrap returns the data key of a sealed secret.
func (k *Keyring) unwrap(sealed []byte) ([]byte, error) {
	if len(sealed) < headerSize+tagSize || sealed[0] != version {
		return nil, errors.New("not a sealed secret")
	}
	if !bytes.Equal(sealed[1:1+idSize], k.id[:]) {
		return nil, fmt.Errorf("%w (sealed with key %x, this one is %s)", ErrWrongKey, sealed[1:1+idSize], k.ID())
	}
	w := sealed[1+idSize : 1+idSize+wrappedSize]
	dek, err := k.kek.Open(nil, w[:nonceSize], w[nonceSize:], k.id[:])
	if err != nil {
		return nil, fmt.Errorf("%w (the wrapped data key does not open)", ErrWrongKey)
	}
	return dek, nil
}

// Open decrypts a secret sealed by Seal with the same context.
func (k *Keyring) Open(sealed, context []byte) ([]byte, error) {
	dek, err := k.unwrap(sealed)
	if err != nil {
		return nil, err
	}
	data, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	nonce := sealed[headerSize-nonceSize : headerSize]
	plain, err := data.Open(nil, nonce, sealed[headerSize:], context)
	if err != nil {
		return nil, errors.New("the secret does not open: altered, or sealed for another owner")
	}
	return plain, nil
}

// Rewrap returns the secret with its data key wrapped by to instead of k:
// the ciphertext of the secret is unchanged (key rotation).
func (k *Keyring) Rewrap(sealed []byte, to *Keyring) ([]byte, error) {
	dek, err := k.unwrap(sealed)
	if err != nil {
		return nil, err
	}
	wrapped, err := to.wrap(dek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sealed))
	out = append(out, version)
	out = append(out, to.id[:]...)
	out = append(out, wrapped...)
	return append(out, sealed[1+idSize+wrappedSize:]...), nil
}

// Sealed reports the id of the key a sealed secret is wrapped by.
func Sealed(sealed []byte) (string, bool) {
	if len(sealed) < headerSize || sealed[0] != version {
		return "", false
	}
	return hex.EncodeToString(sealed[1 : 1+idSize]), true
}
