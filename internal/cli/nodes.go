package cli

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (a *app) nodeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "node",
		Aliases: []string{"nodes"},
		Short:   "Manage a load balancer's nodes (back-end servers)",
		Long: `Nodes are the servers a load balancer spreads traffic over. A node's condition
(ENABLED, DISABLED or DRAINING) is yours to set; its status (ONLINE, OFFLINE)
is measured by the health monitor.`,
	}
	get := a.lbCommand(onLB{use: "get LOADBALANCER NODE", aliases: []string{"show"}, short: "Show a node",
		example: "  lbaas node get 12 34", args: cobra.ExactArgs(2), what: "node",
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			return a.show(cmd, "/loadbalancers/"+lb+"/nodes/"+ids[0], nil, view{key: "node"})
		}})
	c.AddCommand(
		a.lbShow("list", "List a load balancer's nodes",
			"  lbaas node list 12\n  lbaas node list 12 -o json | jq -r '.[] | select(.status==\"OFFLINE\") | .address'",
			fixedPath("/nodes"), listView("nodes")),
		get, a.nodeAdd(), a.nodeUpdate(),
		a.lbDeleteItems("node", "  lbaas node delete 12 34 --wait\n  lbaas node delete 12 34 35 36", fixedPath("/nodes")),
		a.nodeEvents())
	return c
}

// nodeSettings are the flags of node add and update.
type nodeSettings struct {
	condition, typ string
	weight         uint32
}

func (s *nodeSettings) register(c *cobra.Command, defaultCondition string) {
	f := c.Flags()
	f.StringVar(&s.condition, "condition", defaultCondition, "ENABLED, DISABLED or DRAINING")
	f.Uint32Var(&s.weight, "weight", 1, "weight, for the weighted algorithms (1 to 100)")
	f.StringVar(&s.typ, "type", "", "PRIMARY or SECONDARY (secondary nodes serve only when no primary is up)")
	_ = c.RegisterFlagCompletionFunc("condition", fixedCompletion(conditions...))
	_ = c.RegisterFlagCompletionFunc("type", fixedCompletion(nodeTypes...))
}

// apply sets the attributes whose flags were given, unless the node
// already has them.
func (s *nodeSettings) apply(f *pflag.FlagSet, node map[string]any) {
	for flag, val := range map[string]any{"condition": strings.ToUpper(s.condition), "weight": s.weight, "type": strings.ToUpper(s.typ)} {
		if _, set := node[flag]; f.Changed(flag) && !set {
			node[flag] = val
		}
	}
}

func (a *app) nodeAdd() *cobra.Command {
	var (
		s    nodeSettings
		meta []string
		w    waitFlags
	)
	c := a.lbCommand(onLB{use: "add LOADBALANCER ADDRESS:PORT[,condition=C][,weight=N][,type=T]...",
		short: "Add nodes to a load balancer",
		long: `Add one or more nodes. --condition, --weight, --type and --metadata apply to
every node given; per-node options after a comma override them.`,
		example: `  lbaas node add 12 127.0.0.1:8083 --wait
  lbaas node add 12 127.0.0.1:8084 127.0.0.1:8085,weight=5 --condition DRAINING
  lbaas node add 12 '[::1]:8086' --type SECONDARY --metadata rack=r1`,
		args: cobra.MinimumNArgs(2), wait: &w,
		run: func(cmd *cobra.Command, lb string, specs []string) error {
			var items []any
			for _, spec := range specs {
				node, err := parseNode(spec)
				if err != nil {
					return err
				}
				s.apply(cmd.Flags(), node)
				if node["condition"] == nil {
					node["condition"] = "ENABLED"
				}
				if len(meta) > 0 {
					if node["metadata"], err = parseMeta(meta); err != nil {
						return err
					}
				}
				items = append(items, node)
			}
			return a.mutate(cmd, change{method: http.MethodPost, path: "/loadbalancers/" + lb + "/nodes",
				body: map[string]any{"nodes": items}, view: listView("nodes"), lb: lb, wait: w})
		}})
	s.register(c, "ENABLED")
	c.Flags().StringArrayVar(&meta, "metadata", nil, "a metadata item KEY=VALUE (repeatable)")
	return c
}

func (a *app) nodeUpdate() *cobra.Command {
	var (
		s nodeSettings
		w waitFlags
	)
	c := a.lbCommand(onLB{use: "update LOADBALANCER NODE...", short: "Change nodes' condition, weight or type",
		long: "Change the given attributes of one node, or of several at once (a bulk update).",
		example: `  lbaas node update 12 34 --condition DRAINING --wait
  lbaas node update 12 34 35 --condition DISABLED
  lbaas node update 12 34 --weight 10 --type SECONDARY`,
		args: cobra.MinimumNArgs(2), what: "node", wait: &w,
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			upd := map[string]any{}
			s.apply(cmd.Flags(), upd)
			if len(upd) == 0 {
				return usageErrorf("nothing to change: give --condition, --weight or --type")
			}
			c := change{method: http.MethodPut, lb: lb, wait: w, done: "Node " + strings.Join(ids, ", ") + " is being updated."}
			if len(ids) == 1 {
				c.path, c.body = "/loadbalancers/"+lb+"/nodes/"+ids[0], map[string]any{"node": upd}
				return a.mutate(cmd, c)
			}
			var nodes []any
			for _, id := range ids {
				n := map[string]any{"id": mustUint(id)}
				for k, v := range upd {
					n[k] = v
				}
				nodes = append(nodes, n)
			}
			c.path, c.body, c.view = "/loadbalancers/"+lb+"/nodes", map[string]any{"nodes": nodes}, listView("nodes")
			return a.mutate(cmd, c)
		}})
	s.register(c, "")
	return c
}

func (a *app) nodeEvents() *cobra.Command {
	var limit, marker, offset int
	c := a.lbCommand(onLB{use: "events LOADBALANCER",
		short: "List the node service events (health changes) of a load balancer",
		long: `Each change of a node's health status is an event whose message says why the
check failed or passed.`,
		example: "  lbaas node events 12\n  lbaas node events 12 --limit 5 -o json",
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			q := url.Values{}
			for name, v := range map[string]int{"limit": limit, "marker": marker, "offset": offset} {
				if cmd.Flags().Changed(name) {
					q.Set(name, strconv.Itoa(v))
				}
			}
			return a.show(cmd, "/loadbalancers/"+lb+"/nodes/events", q, listView("nodeServiceEvents"))
		}})
	c.Flags().IntVar(&limit, "limit", 0, "page size")
	c.Flags().IntVar(&marker, "marker", 0, "id of the event the page starts with")
	c.Flags().IntVar(&offset, "offset", 0, "events to skip")
	return c
}

func mustUint(id string) uint64 {
	n, _ := strconv.ParseUint(id, 10, 32)
	return n
}
