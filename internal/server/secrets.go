package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
)

// openSecrets returns the keyring of the secrets at rest and checks that
// it opens every sealed key of the database: a wrong key stops the start
// with a clear error instead of failing later, key by key.
func openSecrets(ctx context.Context, cfg Config, st *store.Store, log *slog.Logger) (*secrets.Keyring, error) {
	keys, err := loadSecrets(cfg, st.Dialect(), log)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	sealed, err := st.SealedKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range sealed {
		if _, err := keys.Open(k.Sealed, k.Context()); err != nil {
			return nil, fmt.Errorf("secrets key %s does not open the private key of %s (%v): "+
				"start with the key the database was sealed with (--secrets-key-file), or rotate with 'lbaasd secrets rotate'",
				keys.ID(), k.Owner(), err)
		}
	}
	return keys, nil
}

func loadSecrets(cfg Config, dialect string, log *slog.Logger) (*secrets.Keyring, error) {
	switch {
	case cfg.SecretsKey != "" && cfg.SecretsKeyFile != "":
		return nil, errors.New("give the key-encryption key in a file (--secrets-key-file) or in the environment (LBAASD_SECRETS_KEY), not both")
	case cfg.SecretsKey != "":
		key, err := secrets.ParseKey(cfg.SecretsKey)
		if err != nil {
			return nil, err
		}
		return secrets.New(key)
	case cfg.SecretsKeyFile != "":
		return secrets.LoadFile(cfg.SecretsKeyFile)
	case dialect == "postgres":
		return nil, errors.New("a PostgreSQL database needs --secrets-key-file (or LBAASD_SECRETS_KEY): " +
			"32 random bytes in base64, e.g. 'head -c 32 /dev/urandom | base64'")
	case cfg.DatabaseURL == "" || strings.Contains(cfg.DatabaseURL, ":memory:"):
		// A database in memory: its secrets live as long as the process.
		key := make([]byte, secrets.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return secrets.New(key)
	}
	// The embedded default: a key file beside the SQLite database.
	path := cfg.DatabaseURL + ".secrets-key"
	keys, err := secrets.LoadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if keys, err = secrets.Generate(path); err == nil {
			log.Warn("generated the key-encryption key of the secrets at rest beside the database: back it up apart from the database",
				"file", path, "key_id", keys.ID())
		}
	}
	return keys, err
}
