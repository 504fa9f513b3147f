package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var (
	conditions = []string{"ENABLED", "DISABLED", "DRAINING"}
	nodeTypes  = []string{"PRIMARY", "SECONDARY"}
	statuses   = []string{"ACTIVE", "BUILD", "PENDING_UPDATE", "PENDING_DELETE", "ERROR", "SUSPENDED", "DELETED"}
)

func (a *app) loadBalancerCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "loadbalancer",
		Aliases: []string{"lb", "loadbalancers"},
		Short:   "List, create, show, change and delete load balancers",
		Long: `A load balancer receives traffic on its virtual IPs and port and spreads it
over its nodes with its algorithm. Changes move it to PENDING_UPDATE until the
data plane has applied them (then ACTIVE); add --wait to wait for that.`,
	}
	c.AddCommand(a.lbList(), a.lbGet(), a.lbCreate(), a.lbUpdate(), a.lbDelete())
	return c
}

func (a *app) lbList() *cobra.Command {
	var q struct {
		name, nodeAddress, status, since string
		limit, marker, offset            int
	}
	c := &cobra.Command{
		Use:   "list",
		Short: "List the account's load balancers",
		Example: `  lbaas lb list
  lbaas lb list --status ERROR
  lbaas lb list --node-address 127.0.0.1 -o json | jq '.[].id'
  lbaas lb list --status DELETED --changes-since 2026-11-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := url.Values{}
			set := func(flag, key, val string) {
				if cmd.Flags().Changed(flag) {
					v.Set(key, val)
				}
			}
			set("name", "name", q.name)
			set("node-address", "nodeaddress", q.nodeAddress)
			set("status", "status", q.status)
			set("changes-since", "changes-since", q.since)
			set("limit", "limit", strconv.Itoa(q.limit))
			set("marker", "marker", strconv.Itoa(q.marker))
			set("offset", "offset", strconv.Itoa(q.offset))
			return a.show(cmd, "/loadbalancers", v, listView("loadBalancers"))
		},
	}
	f := c.Flags()
	f.StringVar(&q.name, "name", "", "only load balancers with this name")
	f.StringVar(&q.nodeAddress, "node-address", "", "only load balancers with a node at this address")
	f.StringVar(&q.status, "status", "", "only load balancers in this status (DELETED lists deleted ones)")
	f.StringVar(&q.since, "changes-since", "", "only load balancers changed since this time (RFC 3339)")
	f.IntVar(&q.limit, "limit", 0, "page size (at most 100)")
	f.IntVar(&q.marker, "marker", 0, "id of the load balancer the page starts with")
	f.IntVar(&q.offset, "offset", 0, "load balancers to skip")
	_ = c.RegisterFlagCompletionFunc("status", fixedCompletion(statuses...))
	return c
}

func (a *app) lbGet() *cobra.Command {
	return a.lbShow("get", "Show a load balancer with its nodes, virtual IPs and features",
		"  lbaas lb get 12\n  lbaas lb get 12 -o json | jq -r .status", fixedPath(""), view{key: "loadBalancer"}, "show")
}

// lbSettings are the flags create and update share.
type lbSettings struct {
	name, protocol, algorithm               string
	port, timeout, clientKeepAlive          uint32
	halfClosed, httpsRedirect, checkPassive bool
	backendKeepAlive                        bool
}

func (s *lbSettings) register(f *pflag.FlagSet) {
	f.StringVar(&s.name, "name", "", "name (1 to 128 characters)")
	f.StringVar(&s.protocol, "protocol", "", "protocol ('lbaas protocols' lists them)")
	f.Uint32Var(&s.port, "port", 0, "port the load balancer listens on (default: the protocol's)")
	f.StringVar(&s.algorithm, "algorithm", "", "how nodes are chosen ('lbaas algorithms' lists them)")
	f.Uint32Var(&s.timeout, "timeout", 0, "seconds a request to a node may take (1 to 120)")
	f.BoolVar(&s.halfClosed, "half-closed", false, "keep half-closed TCP connections open")
	f.BoolVar(&s.httpsRedirect, "https-redirect", false, "redirect HTTP requests to HTTPS")
	f.BoolVar(&s.checkPassive, "check-passive", false, "take a node answering 5xx out of rotation at once (extension)")
	f.BoolVar(&s.backendKeepAlive, "backend-keep-alive", false, "reuse connections to the nodes (extension)")
	f.Uint32Var(&s.clientKeepAlive, "client-keep-alive-timeout", 0, "seconds an idle client connection is kept open (extension)")
}

// apply sets the fields whose flags were given.
func (s *lbSettings) apply(f *pflag.FlagSet, body map[string]any) {
	for flag, kv := range map[string]struct {
		key string
		val any
	}{
		"name": {"name", s.name}, "protocol": {"protocol", s.protocol}, "port": {"port", s.port},
		"algorithm": {"algorithm", s.algorithm}, "timeout": {"timeout", s.timeout},
		"half-closed": {"halfClosed", s.halfClosed}, "https-redirect": {"httpsRedirect", s.httpsRedirect},
		"check-passive": {"checkPassive", s.checkPassive}, "backend-keep-alive": {"backendKeepAlive", s.backendKeepAlive},
		"client-keep-alive-timeout": {"clientKeepAliveTimeout", s.clientKeepAlive},
	} {
		if f.Changed(flag) {
			body[kv.key] = kv.val
		}
	}
}

// registerLBCompletions completes protocols and algorithms from the
// service's own lists.
func (a *app) registerLBCompletions(c *cobra.Command) {
	_ = c.RegisterFlagCompletionFunc("protocol", a.completeCatalog("/loadbalancers/protocols", "protocols"))
	_ = c.RegisterFlagCompletionFunc("algorithm", a.completeCatalog("/loadbalancers/algorithms", "algorithms"))
}

func (a *app) completeCatalog(path, key string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		if a.client == nil && a.setup() != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		raw, err := a.client.Do(cmd.Context(), http.MethodGet, path, nil, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var list map[string][]struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(raw, &list)
		var out []string
		for _, e := range list[key] {
			out = append(out, e.Name)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) lbCreate() *cobra.Command {
	var (
		s                          lbSettings
		vips, vipIDs, nodes, meta  []string
		file, persistence          string
		connectionLogging, caching bool
		w                          waitFlags
	)
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a load balancer",
		Long: `Create a load balancer: it starts in BUILD and turns ACTIVE once the data
plane has its configuration (--wait waits for that, then prints it).

Flags cover the common settings; --from-file takes a JSON document in the
API's shape ({"loadBalancer": {...}} or the object alone) for the others
(health monitor, access list, connection throttle...), which the flags given
then override.`,
		Example: `  lbaas lb create --name web --protocol HTTP --port 80 --vip PUBLIC \
      --node 127.0.0.1:8081 --node 127.0.0.1:8082,weight=2 --wait
  lbaas lb create --name dns --protocol DNS_UDP --port 53 --vip PUBLIC/IPV6 --node '[::1]:5353'
  lbaas lb create --name api --protocol HTTP --vip-id 3 --node 127.0.0.1:9000,condition=DRAINING
  lbaas lb create --from-file lb.json --name from-file-but-renamed -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{}
			if file != "" {
				if err := readBody(file, "loadBalancer", &body); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			s.apply(f, body)
			var vipList []any
			for _, v := range vips {
				typ, version, _ := strings.Cut(v, "/")
				vip := map[string]any{"type": strings.ToUpper(typ)}
				if version != "" {
					vip["ipVersion"] = strings.ToUpper(version)
				}
				vipList = append(vipList, vip)
			}
			for _, v := range vipIDs {
				id, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return usageErrorf("--vip-id %q: not an id", v)
				}
				vipList = append(vipList, map[string]any{"id": id})
			}
			if vipList != nil {
				body["virtualIps"] = vipList
			}
			if len(nodes) > 0 {
				var list []any
				for _, n := range nodes {
					node, err := parseNode(n)
					if err != nil {
						return err
					}
					if node["condition"] == nil {
						node["condition"] = "ENABLED"
					}
					list = append(list, node)
				}
				body["nodes"] = list
			}
			if f.Changed("connection-logging") {
				body["connectionLogging"] = map[string]any{"enabled": connectionLogging}
			}
			if f.Changed("content-caching") {
				body["contentCaching"] = map[string]any{"enabled": caching}
			}
			if persistence != "" {
				body["sessionPersistence"] = map[string]any{"persistenceType": persistence}
			}
			if len(meta) > 0 {
				items, err := parseMeta(meta)
				if err != nil {
					return err
				}
				body["metadata"] = items
			}
			raw, err := a.client.Do(cmd.Context(), http.MethodPost, "/loadbalancers", nil, map[string]any{"loadBalancer": body})
			if err != nil {
				return err
			}
			if !w.wait {
				return render(a.stdout, a.cfg.Output, raw, view{key: "loadBalancer"})
			}
			var created struct {
				LoadBalancer struct {
					ID json.Number `json:"id"`
				} `json:"loadBalancer"`
			}
			if err := json.Unmarshal(raw, &created); err != nil || created.LoadBalancer.ID == "" {
				return &NetworkError{err}
			}
			id := created.LoadBalancer.ID.String()
			if err := a.waitActive(cmd.Context(), id, w, false); err != nil {
				return err
			}
			return a.show(cmd, "/loadbalancers/"+id, nil, view{key: "loadBalancer"})
		},
	}
	f := c.Flags()
	s.register(f)
	f.StringArrayVar(&vips, "vip", nil, "a new virtual IP: PUBLIC or SERVICENET, optionally /IPV4 or /IPV6 (repeatable)")
	f.StringArrayVar(&vipIDs, "vip-id", nil, "share an existing virtual IP of the account by id (repeatable)")
	f.StringArrayVar(&nodes, "node", nil, "a node: ADDRESS:PORT[,condition=C][,weight=N][,type=T] (repeatable)")
	f.StringArrayVar(&meta, "metadata", nil, "a metadata item KEY=VALUE (repeatable)")
	f.BoolVar(&connectionLogging, "connection-logging", false, "log connections")
	f.BoolVar(&caching, "content-caching", false, "cache content")
	f.StringVar(&persistence, "session-persistence", "", "HTTP_COOKIE, SOURCE_IP or SSL_ID")
	f.StringVarP(&file, "from-file", "f", "", "JSON request body to start from ('-' reads standard input)")
	addWaitFlags(c, &w)
	a.registerLBCompletions(c)
	_ = c.RegisterFlagCompletionFunc("session-persistence", fixedCompletion("HTTP_COOKIE", "SOURCE_IP", "SSL_ID"))
	return c
}

func (a *app) lbUpdate() *cobra.Command {
	var (
		s lbSettings
		w waitFlags
	)
	c := a.lbCommand(onLB{use: "update LOADBALANCER", short: "Change a load balancer's attributes",
		long: "Change the attributes whose flags are given; the others stay as they are.",
		example: `  lbaas lb update 12 --algorithm LEAST_CONNECTIONS --wait
  lbaas lb update 12 --name web-2 --timeout 60`,
		wait: &w,
		run: func(cmd *cobra.Command, id string, _ []string) error {
			body := map[string]any{}
			s.apply(cmd.Flags(), body)
			if len(body) == 0 {
				return usageErrorf("nothing to change: give at least one of --name, --protocol, --port, --algorithm, --timeout, ...")
			}
			return a.mutate(cmd, change{method: http.MethodPut, path: "/loadbalancers/" + id,
				body: map[string]any{"loadBalancer": body}, done: "Load balancer " + id + " is being updated.", lb: id, wait: w})
		}})
	s.register(c.Flags())
	a.registerLBCompletions(c)
	return c
}

func (a *app) lbDelete() *cobra.Command {
	var w waitFlags
	c := &cobra.Command{
		Use:   "delete LOADBALANCER...",
		Short: "Delete load balancers (up to 10 at once)",
		Example: `  lbaas lb delete 12 --wait
  lbaas lb delete 12 13 14`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeLB,
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := idArgs("load balancer", args)
			if err != nil {
				return err
			}
			c := change{method: http.MethodDelete, path: "/loadbalancers/" + ids[0], lb: ids[0], wait: w, gone: true,
				done: "Load balancer " + strings.Join(ids, ", ") + " is being deleted."}
			if len(ids) > 1 {
				c.path, c.query, c.wait.wait = "/loadbalancers", url.Values{"id": ids}, false
			}
			if err := a.mutate(cmd, c); err != nil || len(ids) == 1 || !w.wait {
				return err
			}
			for _, id := range ids {
				if err := a.waitActive(cmd.Context(), id, w, true); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addWaitFlags(c, &w)
	return c
}

// parseNode reads ADDRESS:PORT[,condition=C][,weight=N][,type=T].
func parseNode(s string) (map[string]any, error) {
	parts := strings.Split(s, ",")
	host, port, err := net.SplitHostPort(parts[0])
	if err != nil {
		return nil, usageErrorf("node %q: give ADDRESS:PORT ([ADDRESS]:PORT for IPv6)", s)
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil, usageErrorf("node %q: port %q is not a number", s, port)
	}
	node := map[string]any{"address": host, "port": p}
	for _, opt := range parts[1:] {
		k, v, ok := strings.Cut(opt, "=")
		switch {
		case ok && k == "condition":
			node["condition"] = strings.ToUpper(v)
		case ok && k == "type":
			node["type"] = strings.ToUpper(v)
		case ok && k == "weight":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, usageErrorf("node %q: weight %q is not a number", s, v)
			}
			node["weight"] = n
		default:
			return nil, usageErrorf("node %q: unknown option %q (condition=, weight= or type=)", s, opt)
		}
	}
	return node, nil
}

// readBody reads a JSON request body from a file ('-': standard input),
// unwrapping {key: {...}}.
func readBody(file, key string, into *map[string]any) error {
	b, err := readInput(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return usageErrorf("%s: not a JSON object: %v", file, err)
	}
	if inner, ok := doc[key].(map[string]any); ok && len(doc) == 1 {
		doc = inner
	}
	*into = doc
	return nil
}

// readInput reads a file, or standard input for '-'.
func readInput(file string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return b, nil
}

func idArgs(name string, args []string) ([]string, error) {
	ids := make([]string, len(args))
	for i, s := range args {
		id, err := idArg(name, s)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// completeLB completes a load balancer id from the account's list.
func (a *app) completeLB(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 && !strings.HasPrefix(cmd.Use, "delete") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if a.client == nil && a.setup() != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	raw, err := a.client.Do(cmd.Context(), http.MethodGet, "/loadbalancers", nil, nil)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var list struct {
		LoadBalancers []struct {
			ID     json.Number `json:"id"`
			Name   string      `json:"name"`
			Status string      `json:"status"`
		} `json:"loadBalancers"`
	}
	_ = json.Unmarshal(raw, &list)
	var out []string
	for _, lb := range list.LoadBalancers {
		out = append(out, lb.ID.String()+"\t"+lb.Name+" ("+lb.Status+")")
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
