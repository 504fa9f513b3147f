package cli

import (
	"net/http"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"net/url"
)

// sslTerminationCommand: the load balancer's SSL termination (reference:
// ssl-termination.rst). The private key is sent, never shown: the API
// answers every field but it.
func (a *app) sslTerminationCommand() *cobra.Command {
	f := feature{use: "ssltermination", aliases: []string{"ssl", "ssl-termination"}, short: "SSL termination",
		summary: "a certificate and key for a secure port",
		long: "SSL termination gives a load balancer a certificate, its private key and intermediates, and a\n" +
			"secure port. The key is stored encrypted and never shown again. (The service stores and validates\n" +
			"the configuration; its proxies do not terminate TLS yet: see the README.)",
		path: "/ssltermination", key: "sslTermination"}
	c := a.featureRoot(f)
	var certFile, keyFile, chainFile string
	set := a.featurePut(f, "set", "Configure SSL termination",
		"  lbaas ssltermination set 12 --certificate-file cert.pem --key-file key.pem --secure-port 443 --wait\n"+
			"  lbaas ssltermination set 12 --secure-traffic-only --cipher-profile CLBCipherPolicy2019-05",
		cobra.ExactArgs(1),
		func(fs *pflag.FlagSet) {
			fs.StringVar(&certFile, "certificate-file", "", "the certificate (PEM)")
			fs.StringVar(&keyFile, "key-file", "", "its private key (PEM; RSA, at least 2048 bits)")
			fs.StringVar(&chainFile, "intermediate-file", "", "the intermediate certificates (PEM), the one that signs the certificate first")
			fs.Uint32("secure-port", 0, "the port of the terminated traffic")
			fs.Bool("enabled", true, "whether the termination is on")
			fs.Bool("secure-traffic-only", false, "serve only the secure port")
			fs.String("cipher-profile", "", "the cipher profile (lbaas ssltermination ciphers shows a load balancer's)")
			fs.String("cipher-suite", "", "Linode's name of a cipher profile: recommended (CLBCipherPolicy2019-05) or legacy (default)")
		},
		func(cmd *cobra.Command, _ []string) (any, error) {
			body := changed(cmd.Flags(), map[string]string{"secure-port": "securePort", "enabled": "enabled",
				"secure-traffic-only": "secureTrafficOnly", "cipher-profile": "cipherProfile", "cipher-suite": "cipherSuite"})
			if err := readPEMFiles(body, certFile, keyFile, chainFile, "privatekey"); err != nil {
				return nil, err
			}
			if len(body) == 0 {
				return nil, usageErrorf("give what to set (--certificate-file, --key-file, --secure-port, ...)")
			}
			return body, nil
		})
	ciphers := a.lbShow("ciphers", "List the ciphers of the load balancer's cipher profile", "  lbaas ssltermination ciphers 12",
		fixedPath(f.path+"/ciphers"), listView("ciphers"))
	c.AddCommand(a.featureGet(f), set, a.featureDelete(f, "delete"), ciphers)
	return c
}

// readPEMFiles puts the contents of the files given (a name may be '-',
// standard input) into body: the certificate, the private key under
// keyField (the API spells it privatekey in SSL termination, privateKey in
// certificate mappings) and the intermediates. The key is sent, never
// printed.
func readPEMFiles(body map[string]any, certFile, keyFile, chainFile, keyField string) error {
	for field, name := range map[string]string{"certificate": certFile, keyField: keyFile, "intermediateCertificate": chainFile} {
		if name == "" {
			continue
		}
		b, err := readInput(name)
		if err != nil {
			return err
		}
		body[field] = string(b)
	}
	return nil
}

// certificateMappingCommand: the certificate mappings of a load balancer's
// SSL termination (reference: certificatemappings.rst), a certificate per
// host name. Keys are read from files and never shown.
func (a *app) certificateMappingCommand() *cobra.Command {
	c := group(&cobra.Command{Use: "certificate-mapping", Aliases: []string{"certificatemapping", "certmap"},
		Short: "Certificate mappings: a certificate per host name on an SSL-terminated load balancer",
		Long: "A certificate mapping presents its own certificate to clients asking (SNI) for its host name, or a name\n" +
			"its wildcard (*.example.com) covers; the most specific match wins, and the SSL termination's certificate\n" +
			"answers the others. The key is stored encrypted and never shown again."})
	path := func(lb string, id ...string) string {
		p := "/loadbalancers/" + lb + "/ssltermination/certificatemappings"
		if len(id) > 0 {
			p += "/" + id[0]
		}
		return p
	}
	item := view{key: "certificateMapping"}
	var host, certFile, keyFile, chainFile string
	pemFlags := func(fs *pflag.FlagSet) {
		fs.StringVar(&host, "host-name", "", "the host name (or *.example.com)")
		fs.StringVar(&certFile, "certificate-file", "", "the certificate (PEM)")
		fs.StringVar(&keyFile, "key-file", "", "its private key (PEM; RSA, at least 2048 bits)")
		fs.StringVar(&chainFile, "intermediate-file", "", "the intermediate certificates (PEM), the one that signs the certificate first")
	}
	body := func(cmd *cobra.Command) (map[string]any, error) {
		b := map[string]any{}
		if cmd.Flags().Changed("host-name") {
			b["hostName"] = host
		}
		return b, readPEMFiles(b, certFile, keyFile, chainFile, "privateKey")
	}
	get := a.lbCommand(onLB{use: "get LOADBALANCER MAPPING", aliases: []string{"show"}, short: "Show a certificate mapping (never its key)",
		example: "  lbaas certificate-mapping get 12 3", args: cobra.ExactArgs(2), what: "certificate mapping",
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			return a.show(cmd, path(lb, ids[0]), nil, item)
		}})
	var createWait, updateWait, deleteWait waitFlags
	create := a.lbCommand(onLB{use: "create LOADBALANCER", aliases: []string{"add"}, short: "Add a certificate mapping",
		example: "  lbaas certificate-mapping create 12 --host-name api.example.com --certificate-file api.pem --key-file api.key --wait",
		wait:    &createWait,
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			b, err := body(cmd)
			if err != nil {
				return err
			}
			return a.mutate(cmd, change{method: http.MethodPost, path: path(lb), body: map[string]any{"certificateMapping": b},
				view: item, lb: lb, wait: createWait})
		}})
	pemFlags(create.Flags())
	update := a.lbCommand(onLB{use: "update LOADBALANCER MAPPING", short: "Change a certificate mapping",
		example: "  lbaas certificate-mapping update 12 3 --host-name www.example.com\n" +
			"  lbaas certificate-mapping update 12 3 --certificate-file renewed.pem --key-file renewed.key --wait",
		args: cobra.ExactArgs(2), what: "certificate mapping", wait: &updateWait,
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			b, err := body(cmd)
			if err != nil {
				return err
			}
			if len(b) == 0 {
				return usageErrorf("give what to change (--host-name, --certificate-file, --key-file, --intermediate-file)")
			}
			return a.mutate(cmd, change{method: http.MethodPut, path: path(lb, ids[0]), body: map[string]any{"certificateMapping": b},
				done: "Certificate mapping " + ids[0] + " updated.", lb: lb, wait: updateWait})
		}})
	pemFlags(update.Flags())
	del := a.lbCommand(onLB{use: "delete LOADBALANCER MAPPING", aliases: []string{"remove", "rm"}, short: "Remove a certificate mapping and its key",
		example: "  lbaas certificate-mapping delete 12 3 --wait", args: cobra.ExactArgs(2), what: "certificate mapping", wait: &deleteWait,
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			return a.mutate(cmd, change{method: http.MethodDelete, path: path(lb, ids[0]),
				done: "Certificate mapping " + ids[0] + " removed.", lb: lb, wait: deleteWait})
		}})
	list := a.lbShow("list", "List certificate mappings (id and host name)", "  lbaas certificate-mapping list 12",
		func(lb string) (string, error) { return path(lb), nil }, listView("certificateMappings"))
	c.AddCommand(list, get, create, update, del)
	return c
}

// usageCommand shows a load balancer's usage records (reference:
// usage-reports.rst): the preceding 24 hours, a window, or its traffic
// history step by step.
func (a *app) usageCommand() *cobra.Command {
	var start, end, history string
	c := a.lbCommand(onLB{use: "usage LOADBALANCER", short: "Show a load balancer's usage: current, over a window, or its history",
		long: "Without flags, the usage records of the preceding 24 hours (/usage/current); with --start or --end, " +
			"those of that window (/usage); with --history hour|day, the traffic step by step (/stats/history).",
		example: "  lbaas usage 12\n  lbaas usage 12 --start 2026-11-01 --end 2026-11-30\n  lbaas usage 12 --history hour\n  lbaas usage 12 -o json",
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			q := url.Values{}
			switch {
			case history != "":
				if start != "" || end != "" {
					return usageErrorf("--history shows the last hour or day: it takes no --start or --end")
				}
				q.Set("window", history)
				return a.show(cmd, "/loadbalancers/"+lb+"/stats/history", q, listView("history.points"))
			case start != "" || end != "":
				if start != "" {
					q.Set("startTime", start)
				}
				if end != "" {
					q.Set("endTime", end)
				}
				return a.show(cmd, "/loadbalancers/"+lb+"/usage", q, listView("loadBalancerUsageRecords"))
			}
			return a.show(cmd, "/loadbalancers/"+lb+"/usage/current", nil, listView("loadBalancerUsageRecords"))
		}})
	c.Flags().StringVar(&start, "start", "", "the window's start (ISO 8601: 2026-11-30 or 2026-11-30T12:00:00Z)")
	c.Flags().StringVar(&end, "end", "", "the window's end (ISO 8601)")
	c.Flags().StringVar(&history, "history", "", "show the traffic history of the last hour (one-minute steps) or day (five-minute steps)")
	_ = c.RegisterFlagCompletionFunc("history", fixedCompletion("hour", "day"))
	return c
}

// statsCommand shows a load balancer's traffic statistics (reference:
// stats.rst, plus the request counts gRPC clients report).
func (a *app) statsCommand() *cobra.Command {
	return a.lbShow("stats", "Show a load balancer's traffic statistics",
		"  lbaas stats 12\n  lbaas stats 12 -o json", fixedPath("/stats"), view{})
}
