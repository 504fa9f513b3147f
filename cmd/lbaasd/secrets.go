package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/openlbaas/lbaas/internal/secrets"
	"github.com/openlbaas/lbaas/store"
)

// secretsCommand manages the secrets at rest: 'lbaasd secrets rotate'
// re-wraps every sealed private key with a new key-encryption key.
func secretsCommand() *ffcli.Command {
	var oldFile, newFile string
	rotate := adminCommand("secrets rotate", "secrets rotate --secrets-key-file OLD --new-key-file NEW [flags]",
		"Re-wrap every secret at rest with a new key-encryption key (then start with --secrets-key-file NEW).",
		func(fs *flag.FlagSet) {
			fs.StringVar(&oldFile, "secrets-key-file", "", "the key the database is sealed with now (required)")
			fs.StringVar(&newFile, "new-key-file", "", "the new key: 32 random bytes in base64, e.g. 'head -c 32 /dev/urandom | base64' (required)")
		},
		func(ctx context.Context, st *store.Store, log *slog.Logger) error {
			if oldFile == "" || newFile == "" {
				return errors.New("--secrets-key-file and --new-key-file are required")
			}
			from, err := secrets.LoadFile(oldFile)
			if err != nil {
				return fmt.Errorf("--secrets-key-file: %w", err)
			}
			to, err := secrets.LoadFile(newFile)
			if err != nil {
				return fmt.Errorf("--new-key-file: %w", err)
			}
			n, err := st.RewrapKeys(ctx, func(lbID uint32, sealed []byte) ([]byte, error) {
				if id, _ := secrets.Sealed(sealed); id == to.ID() {
					return sealed, nil // wrapped by the new key already (a rotation run again)
				}
				return from.Rewrap(sealed, to)
			})
			if err != nil {
				return err
			}
			log.Info("secrets re-wrapped: start the servers with the new key", "secrets", n, "old_key_id", from.ID(), "new_key_id", to.ID())
			return nil
		})
	return &ffcli.Command{
		Name:        "secrets",
		ShortUsage:  "lbaasd secrets rotate [flags]",
		ShortHelp:   "Manage the secrets at rest (SSL termination private keys).",
		Subcommands: []*ffcli.Command{rotate},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}
