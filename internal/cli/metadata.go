package cli

import (
	"net/http"

	"github.com/spf13/cobra"
)

func (a *app) metadataCommand() *cobra.Command {
	var node string
	c := &cobra.Command{
		Use:     "metadata",
		Aliases: []string{"meta"},
		Short:   "Manage the metadata (key/value items) of a load balancer or, with --node, of a node",
		Long: `Metadata are free-form KEY=VALUE items on a load balancer or a node. They are
not data-plane configuration: changing them does not change the status.`,
	}
	c.PersistentFlags().StringVar(&node, "node", "", "the node's metadata instead of the load balancer's")
	path := func(lb string) (string, error) {
		if node == "" {
			return "/loadbalancers/" + lb + "/metadata", nil
		}
		n, err := idArg("node", node)
		return "/loadbalancers/" + lb + "/nodes/" + n + "/metadata", err
	}
	var addWait, updWait waitFlags
	get := a.lbCommand(onLB{use: "get LOADBALANCER META", aliases: []string{"show"}, short: "Show a metadata item",
		example: "  lbaas metadata get 12 3", args: cobra.ExactArgs(2), what: "metadata item",
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			p, err := path(lb)
			if err != nil {
				return err
			}
			return a.show(cmd, p+"/"+ids[0], nil, view{key: "meta"})
		}})
	add := a.lbCommand(onLB{use: "add LOADBALANCER KEY=VALUE...", aliases: []string{"set"}, short: "Add metadata items",
		example: "  lbaas metadata add 12 owner=web-team env=prod\n  lbaas metadata add 12 rack=r1 --node 34",
		args:    cobra.MinimumNArgs(2), wait: &addWait,
		run: func(cmd *cobra.Command, lb string, kvs []string) error {
			p, err := path(lb)
			if err != nil {
				return err
			}
			items, err := parseMeta(kvs)
			if err != nil {
				return err
			}
			return a.mutate(cmd, change{method: http.MethodPost, path: p, body: map[string]any{"metadata": items},
				view: listView("metadata"), done: "Metadata added.", lb: lb, wait: addWait})
		}})
	update := a.lbCommand(onLB{use: "update LOADBALANCER META VALUE", short: "Change a metadata item's value",
		example: "  lbaas metadata update 12 3 staging", args: cobra.ExactArgs(3), wait: &updWait,
		run: func(cmd *cobra.Command, lb string, rest []string) error {
			id, err := idArg("metadata item", rest[0])
			if err != nil {
				return err
			}
			p, err := path(lb)
			if err != nil {
				return err
			}
			return a.mutate(cmd, change{method: http.MethodPut, path: p + "/" + id,
				body: map[string]any{"meta": map[string]any{"value": rest[1]}}, view: view{key: "meta"},
				done: "Metadata item " + id + " updated.", lb: lb, wait: updWait})
		}})
	c.AddCommand(
		a.lbShow("list", "List metadata items", "  lbaas metadata list 12\n  lbaas metadata list 12 --node 34 -o json",
			path, listView("metadata")),
		get, add, update,
		a.lbDeleteItems("metadata item", "  lbaas metadata delete 12 3 4\n  lbaas metadata delete 12 5 --node 34", path))
	return c
}
