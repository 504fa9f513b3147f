package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/openlbaas/lbaas/internal/pki"
	"github.com/openlbaas/lbaas/internal/xdsauth"
)

const day = 24 * time.Hour

// certCommand mints a trial CA and the certificates of the control plane
// and its xDS clients (see docs/security.md).
func certCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:       "cert",
		ShortUsage: "lbaasd cert [ca|server|issue] [flags]",
		ShortHelp:  "Mint a trial CA, the control plane's server certificate and fleet client certificates (ECDSA P-256).",
		LongHelp: "Mint a trial CA, the control plane's server certificate and fleet client certificates (ECDSA P-256).\n\n" +
			"  lbaasd cert ca --out pki/ca\n" +
			"  lbaasd cert server --ca pki/ca --out pki/server        # 127.0.0.1, ::1, localhost\n" +
			"  lbaasd cert issue --ca pki/ca --fleet default --node edge-1 --out pki/edge-1\n\n" +
			"Each output directory holds " + pki.Cert + ", " + pki.Key + " and " + pki.CACert + ".",
		Subcommands: []*ffcli.Command{certCACommand(), certServerCommand(), certIssueCommand()},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func certCACommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd cert ca", flag.ContinueOnError)
	out := fs.String("out", "", "directory for "+pki.CACert+" and "+pki.CAKey+" (required; an existing CA is never replaced)")
	name := fs.String("name", "lbaas trial CA", "the CA's common name")
	days := fs.Int("days", 365, "validity in days")
	return &ffcli.Command{
		Name:       "ca",
		ShortUsage: "lbaasd cert ca --out DIR [--days N]",
		ShortHelp:  "Create a CA: DIR/" + pki.CACert + " and DIR/" + pki.CAKey + " (keep the key private).",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(context.Context, []string) error {
			if *out == "" {
				return errors.New("--out is required")
			}
			if *days < 1 {
				return errors.New("--days must be at least 1")
			}
			ca, err := pki.NewCA(*name, time.Duration(*days)*day)
			if err != nil {
				return err
			}
			if err := ca.Write(*out); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "CA %q written to %s (%s, %s)\n", *name, *out, pki.CACert, pki.CAKey)
			return nil
		},
	}
}

func certServerCommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd cert server", flag.ContinueOnError)
	caDir := fs.String("ca", "", "directory of the CA (from 'lbaasd cert ca'; required)")
	out := fs.String("out", "", "output directory (required)")
	hosts := fs.String("hosts", "127.0.0.1,::1,localhost", "comma-separated IP addresses and DNS names clients reach the control plane by")
	days := fs.Int("days", 90, "validity in days")
	return &ffcli.Command{
		Name:       "server",
		ShortUsage: "lbaasd cert server --ca DIR --out DIR [--hosts 127.0.0.1,::1,localhost]",
		ShortHelp:  "Issue the control plane's server certificate (for --tls-cert/--tls-key).",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(context.Context, []string) error {
			var list []string
			for _, h := range strings.Split(*hosts, ",") {
				if h = strings.TrimSpace(h); h != "" {
					list = append(list, h)
				}
			}
			return issue(*caDir, *out, *days, func(ca *pki.CA, v time.Duration) (*pki.Pair, error) {
				return ca.IssueServer(list, v)
			})
		},
	}
}

func certIssueCommand() *ffcli.Command {
	fs := flag.NewFlagSet("lbaasd cert issue", flag.ContinueOnError)
	caDir := fs.String("ca", "", "directory of the CA (from 'lbaasd cert ca'; required)")
	out := fs.String("out", "", "output directory (required)")
	fleet := fs.String("fleet", "", "fleet the client serves: its xDS node cluster (required)")
	node := fs.String("node", "", "xDS node id the certificate is bound to (default: any node of the fleet)")
	days := fs.Int("days", 90, "validity in days")
	return &ffcli.Command{
		Name:       "issue",
		ShortUsage: "lbaasd cert issue --ca DIR --fleet F [--node N] --out DIR",
		ShortHelp:  "Issue an xDS client certificate naming spiffe://lbaas/fleet/F[/node/N].",
		FlagSet:    fs,
		Options:    []ff.Option{ff.WithEnvVarPrefix(envPrefix)},
		Exec: func(context.Context, []string) error {
			if *fleet == "" {
				return errors.New("--fleet is required")
			}
			return issue(*caDir, *out, *days, func(ca *pki.CA, v time.Duration) (*pki.Pair, error) {
				return ca.IssueClient(xdsauth.Identity{Fleet: *fleet, Node: *node}, v)
			})
		},
	}
}

func issue(caDir, out string, days int, mint func(*pki.CA, time.Duration) (*pki.Pair, error)) error {
	if caDir == "" || out == "" {
		return errors.New("--ca and --out are required")
	}
	if days < 1 {
		return errors.New("--days must be at least 1")
	}
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		return err
	}
	p, err := mint(ca, time.Duration(days)*day)
	if err != nil {
		return err
	}
	if err := p.Write(out, ca); err != nil {
		return err
	}
	names := append(append([]string{}, p.Cert.DNSNames...), ipStrings(p.Cert)...)
	for _, u := range p.Cert.URIs {
		names = append(names, u.String())
	}
	fmt.Fprintf(os.Stderr, "certificate for %s written to %s (%s, %s, %s), valid until %s\n", strings.Join(names, ", "),
		out, pki.Cert, pki.Key, pki.CACert, p.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func ipStrings(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}
