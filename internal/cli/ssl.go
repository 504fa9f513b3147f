package cli

import (
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
		},
		func(cmd *cobra.Command, _ []string) (any, error) {
			body := changed(cmd.Flags(), map[string]string{"secure-port": "securePort", "enabled": "enabled",
				"secure-traffic-only": "secureTrafficOnly", "cipher-profile": "cipherProfile"})
			for flag, field := range map[string]string{"certificate-file": "certificate", "key-file": "privatekey",
				"intermediate-file": "intermediateCertificate"} {
				name, _ := cmd.Flags().GetString(flag)
				if name == "" {
					continue
				}
				b, err := readInput(name)
				if err != nil {
					return nil, err
				}
				body[field] = string(b)
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
