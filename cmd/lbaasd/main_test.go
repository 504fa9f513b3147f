package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A mistyped command is refused, not run as the default (serve) or
// answered with help and success.
func TestUnknownCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were serve to run anyway, it would stop at once
	db := "--database-url=" + filepath.Join(t.TempDir(), "lbaasd.db")
	for _, args := range [][]string{
		{"serv"},
		{"serve", "extra"},
		{"user", "craete"},
		{"user", "create", "--username", "a", "--tenant", "b", db, "extra"},
		{"cert", "nonsense"},
	} {
		err := root().ParseAndRun(ctx, args)
		if err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("lbaasd %s: error %v, want an unknown command", strings.Join(args, " "), err)
		}
	}
}
