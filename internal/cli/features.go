package cli

import (
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// feature is a load balancer feature at /loadbalancers/{id}/{path},
// answered under key.
type feature struct {
	use     string
	aliases []string
	short   string // the feature's name
	summary string // what it does, for the command list
	long    string
	path    string
	key     string
}

func (a *app) featureCommands() []*cobra.Command {
	return []*cobra.Command{a.healthMonitorCommand(), a.sessionPersistenceCommand(), a.connectionLoggingCommand(),
		a.connectionThrottleCommand(), a.accessListCommand(), a.contentCachingCommand(), a.errorPageCommand(),
		a.sslTerminationCommand(), a.certificateMappingCommand()}
}

func (a *app) featureRoot(f feature) *cobra.Command {
	return group(&cobra.Command{Use: f.use, Aliases: f.aliases, Short: f.short + ": " + f.summary, Long: f.long})
}

// featureGet shows the feature.
func (a *app) featureGet(f feature) *cobra.Command {
	return a.lbShow("get", "Show the "+strings.ToLower(f.short)+" setting", "  lbaas "+f.use+" get 12",
		fixedPath(f.path), view{key: f.key, columns: listColumns[f.key]}, "show")
}

// featurePut is a command that PUTs {key: body(flags)}.
func (a *app) featurePut(f feature, use, short, example string, args cobra.PositionalArgs,
	flags func(*pflag.FlagSet), body func(cmd *cobra.Command, rest []string) (any, error)) *cobra.Command {
	var w waitFlags
	c := a.lbCommand(onLB{use: use + " LOADBALANCER", short: short, example: example, args: args, wait: &w,
		run: func(cmd *cobra.Command, lb string, rest []string) error {
			b, err := body(cmd, rest)
			if err != nil {
				return err
			}
			return a.mutate(cmd, change{method: http.MethodPut, path: "/loadbalancers/" + lb + f.path,
				body: map[string]any{f.key: b}, done: "Load balancer " + lb + ": " + strings.ToLower(f.short) + " updated.", lb: lb, wait: w})
		}})
	if flags != nil {
		flags(c.Flags())
	}
	return c
}

// featureDelete is a command that DELETEs the feature (use: delete or clear).
func (a *app) featureDelete(f feature, use string) *cobra.Command {
	var w waitFlags
	return a.lbCommand(onLB{use: use + " LOADBALANCER", aliases: []string{"remove", "rm"}, short: "Remove the " + strings.ToLower(f.short),
		example: "  lbaas " + f.use + " " + use + " 12 --wait", wait: &w,
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			return a.mutate(cmd, change{method: http.MethodDelete, path: "/loadbalancers/" + lb + f.path,
				done: "Load balancer " + lb + ": " + strings.ToLower(f.short) + " removed.", lb: lb, wait: w})
		}})
}

// changed copies the values of the flags given into a body.
func changed(fs *pflag.FlagSet, names map[string]string) map[string]any {
	out := map[string]any{}
	fs.Visit(func(f *pflag.Flag) {
		if key, ok := names[f.Name]; ok {
			switch f.Value.Type() {
			case "uint32":
				out[key] = mustUint(f.Value.String())
			case "bool":
				out[key] = f.Value.String() == "true"
			default:
				out[key] = f.Value.String()
			}
		}
	})
	return out
}

func (a *app) healthMonitorCommand() *cobra.Command {
	f := feature{use: "healthmonitor", aliases: []string{"hm", "health-monitor"}, short: "Health monitor", summary: "active checks that take failing nodes out",
		long: `The health monitor probes each node every --delay seconds (CONNECT: a TCP
connection; HTTP/HTTPS: a request whose status and body must match); after
--attempts failures in a row the node is OFFLINE and out of rotation, one
success brings it back. 'lbaas node events' tells why.`,
		path: "/healthmonitor", key: "healthMonitor"}
	c := a.featureRoot(f)
	names := map[string]string{"type": "type", "delay": "delay", "timeout": "timeout", "attempts": "attemptsBeforeDeactivation",
		"path": "path", "status-regex": "statusRegex", "body-regex": "bodyRegex", "host-header": "hostHeader", "check-body": "checkBody"}
	set := a.featurePut(f, "set", "Set the health monitor", `  lbaas healthmonitor set 12 --type CONNECT --delay 10 --timeout 5 --attempts 3 --wait
  lbaas healthmonitor set 12 --type HTTP --path /healthz --status-regex '^2' --body-regex . \
      --delay 10 --timeout 5 --attempts 2`, cobra.ExactArgs(1),
		func(fs *pflag.FlagSet) {
			fs.String("type", "", "CONNECT, HTTP or HTTPS")
			fs.Uint32("delay", 0, "seconds between checks (1 to 3600)")
			fs.Uint32("timeout", 0, "seconds a check may take (1 to 300)")
			fs.Uint32("attempts", 0, "failures in a row before a node is taken out (1 to 10)")
			fs.String("path", "", "HTTP(S): path requested")
			fs.String("status-regex", "", "HTTP(S): regular expression the status code must match")
			fs.String("body-regex", "", "HTTP(S): regular expression the body must match")
			fs.String("host-header", "", "HTTP(S): Host header sent")
			fs.String("check-body", "", "HTTP(S): substring the body must contain (extension)")
		},
		func(cmd *cobra.Command, _ []string) (any, error) {
			b := changed(cmd.Flags(), names)
			if t, ok := b["type"].(string); ok {
				b["type"] = strings.ToUpper(t)
			}
			return b, nil
		})
	_ = set.RegisterFlagCompletionFunc("type", fixedCompletion("CONNECT", "HTTP", "HTTPS"))
	c.AddCommand(a.featureGet(f), set, a.featureDelete(f, "delete"))
	return c
}

func (a *app) sessionPersistenceCommand() *cobra.Command {
	f := feature{use: "sessionpersistence", aliases: []string{"persistence", "session-persistence"}, short: "Session persistence", summary: "send a client back to the same node",
		long: `Session persistence sends a client back to the node it used before: by an
HTTP cookie (HTTP_COOKIE), by its address (SOURCE_IP) or by TLS session (SSL_ID).`,
		path: "/sessionpersistence", key: "sessionPersistence"}
	c := a.featureRoot(f)
	set := a.featurePut(f, "set", "Set session persistence: set LOADBALANCER TYPE",
		"  lbaas sessionpersistence set 12 HTTP_COOKIE --wait", cobra.ExactArgs(2), nil,
		func(_ *cobra.Command, rest []string) (any, error) {
			return map[string]any{"persistenceType": strings.ToUpper(rest[0])}, nil
		})
	set.Use = "set LOADBALANCER TYPE"
	set.ValidArgsFunction = func(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 1 {
			return []string{"HTTP_COOKIE", "SOURCE_IP", "SSL_ID"}, cobra.ShellCompDirectiveNoFileComp
		}
		return a.completeLB(cmd, args, s)
	}
	c.AddCommand(a.featureGet(f), set, a.featureDelete(f, "delete"))
	return c
}

// onOff is a feature turned on and off ({"enabled": bool}).
func (a *app) onOff(f feature) *cobra.Command {
	c := a.featureRoot(f)
	for _, on := range []bool{true, false} {
		verb := map[bool]string{true: "enable", false: "disable"}[on]
		c.AddCommand(a.featurePut(f, verb, strings.ToUpper(verb[:1])+verb[1:]+" "+strings.ToLower(f.short),
			"  lbaas "+f.use+" "+verb+" 12 --wait", cobra.ExactArgs(1), nil,
			func(*cobra.Command, []string) (any, error) { return map[string]any{"enabled": on}, nil }))
	}
	c.AddCommand(a.featureGet(f))
	return c
}

func (a *app) connectionLoggingCommand() *cobra.Command {
	return a.onOff(feature{use: "connectionlogging", aliases: []string{"logging", "connection-logging"}, short: "Connection logging", summary: "an access log of connections",
		long: "Connection logging writes an access log line per connection or request.",
		path: "/connectionlogging", key: "connectionLogging"})
}

func (a *app) contentCachingCommand() *cobra.Command {
	return a.onOff(feature{use: "contentcaching", aliases: []string{"caching", "content-caching"}, short: "Content caching", summary: "content caching (refused by the service)",
		long: "Content caching is part of the Rackspace API, but this service refuses to turn it on (the API answers 400\nand says why: the proxies' caches cannot keep a load balancer's persistence, timeout, error page and\ncookies). \"disable\" and \"get\" work.",
		path: "/contentcaching", key: "contentCaching"})
}

func (a *app) connectionThrottleCommand() *cobra.Command {
	f := feature{use: "throttle", aliases: []string{"connectionthrottle", "connection-throttle"}, short: "Connection throttle", summary: "limit connections (counted per proxy, not per client address)",
		long: "The connection throttle limits the connections, and their rate, from each client address.",
		path: "/connectionthrottle", key: "connectionThrottle"}
	c := a.featureRoot(f)
	names := map[string]string{"max-connections": "maxConnections", "min-connections": "minConnections",
		"max-connection-rate": "maxConnectionRate", "rate-interval": "rateInterval"}
	set := a.featurePut(f, "set", "Set the connection throttle",
		"  lbaas throttle set 12 --max-connections 100 --max-connection-rate 50 --rate-interval 60 --wait", cobra.ExactArgs(1),
		func(fs *pflag.FlagSet) {
			fs.Uint32("max-connections", 0, "connections at once from one address (0 to 100000; 0: no limit)")
			fs.Uint32("min-connections", 0, "connections always allowed per address (0 to 1000)")
			fs.Uint32("max-connection-rate", 0, "new connections per --rate-interval from one address (0 to 100000)")
			fs.Uint32("rate-interval", 0, "seconds over which the rate is counted (1 to 3600)")
		},
		func(cmd *cobra.Command, _ []string) (any, error) { return changed(cmd.Flags(), names), nil })
	c.AddCommand(a.featureGet(f), set, a.featureDelete(f, "delete"))
	return c
}

func (a *app) accessListCommand() *cobra.Command {
	f := feature{use: "accesslist", aliases: []string{"acl", "access-list"}, short: "Access list", summary: "allow or deny client networks",
		long: `The access list allows or denies client addresses and networks: DENY items
refuse them, ALLOW items make exceptions to the DENY items.`,
		path: "/accesslist", key: "accessList"}
	c := a.featureRoot(f)
	list := a.featureGet(f)
	list.Use, list.Aliases, list.Short = "list LOADBALANCER", []string{"get", "show"}, "List the access list"
	var allow, deny []string
	var w waitFlags
	add := a.lbCommand(onLB{use: "add LOADBALANCER", short: "Add items to the access list",
		example: "  lbaas accesslist add 12 --deny 0.0.0.0/0 --allow 127.0.0.0/8 --allow ::1 --wait", wait: &w,
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			var items []any
			for _, ad := range allow {
				items = append(items, map[string]any{"address": ad, "type": "ALLOW"})
			}
			for _, ad := range deny {
				items = append(items, map[string]any{"address": ad, "type": "DENY"})
			}
			if len(items) == 0 {
				return usageErrorf("nothing to add: give --allow or --deny")
			}
			return a.mutate(cmd, change{method: http.MethodPost, path: "/loadbalancers/" + lb + f.path,
				body: map[string]any{"accessList": items}, done: "Access list of load balancer " + lb + " updated.", lb: lb, wait: w})
		}})
	add.Flags().StringArrayVar(&allow, "allow", nil, "address or CIDR network to allow (repeatable)")
	add.Flags().StringArrayVar(&deny, "deny", nil, "address or CIDR network to deny (repeatable)")
	del := a.lbDeleteItems("access list item", "  lbaas accesslist delete 12 5 6", fixedPath(f.path))
	clear := a.featureDelete(f, "clear")
	clear.Aliases = nil
	c.AddCommand(list, add, del, clear)
	return c
}

func (a *app) errorPageCommand() *cobra.Command {
	f := feature{use: "errorpage", aliases: []string{"error-page"}, short: "Error page", summary: "the page served when no node answers",
		long: "The error page is the HTML the load balancer answers with when it cannot reach a node.",
		path: "/errorpage", key: "errorpage"}
	c := a.featureRoot(f)
	var file, content string
	set := a.featurePut(f, "set", "Set the error page",
		"  lbaas errorpage set 12 --file maintenance.html --wait\n  lbaas errorpage set 12 --content '<html>Back soon</html>'",
		cobra.ExactArgs(1),
		func(fs *pflag.FlagSet) {
			fs.StringVar(&file, "file", "", "read the page from this file ('-': standard input)")
			fs.StringVar(&content, "content", "", "the page itself")
		},
		func(cmd *cobra.Command, _ []string) (any, error) {
			switch {
			case file != "":
				b, err := readInput(file)
				return map[string]any{"content": string(b)}, err
			case cmd.Flags().Changed("content"):
				return map[string]any{"content": content}, nil
			}
			return nil, usageErrorf("give --file or --content")
		})
	set.MarkFlagsMutuallyExclusive("file", "content")
	c.AddCommand(a.featureGet(f), set, a.featureDelete(f, "delete"))
	return c
}
