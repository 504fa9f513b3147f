package cli

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// onLB describes a command whose first argument is a load balancer.
type onLB struct {
	use, short, long, example string
	aliases                   []string
	args                      cobra.PositionalArgs
	// what names the ids that follow the load balancer (checked before
	// run); empty passes the other arguments as they are.
	what string
	// wait, when set, gives the command --wait and --wait-timeout.
	wait *waitFlags
	run  func(cmd *cobra.Command, lb string, rest []string) error
}

func (a *app) lbCommand(o onLB) *cobra.Command {
	if o.args == nil {
		o.args = cobra.ExactArgs(1)
	}
	c := &cobra.Command{
		Use: o.use, Aliases: o.aliases, Short: o.short, Long: o.long, Example: o.example, Args: o.args,
		ValidArgsFunction: a.completeLB,
		RunE: func(cmd *cobra.Command, args []string) error {
			lb, err := idArg("load balancer", args[0])
			if err != nil {
				return err
			}
			rest := args[1:]
			if o.what != "" {
				if rest, err = idArgs(o.what, rest); err != nil {
					return err
				}
			}
			return o.run(cmd, lb, rest)
		},
	}
	if o.wait != nil {
		addWaitFlags(c, o.wait)
	}
	return c
}

// lbPath is /loadbalancers/{lb} followed by a suffix that may depend on
// flags (a node's metadata).
type lbPath func(lb string) (string, error)

func fixedPath(suffix string) lbPath {
	return func(lb string) (string, error) { return "/loadbalancers/" + lb + suffix, nil }
}

// lbShow is a command that shows what GET {path} answers.
func (a *app) lbShow(use, short, example string, path lbPath, v view, aliases ...string) *cobra.Command {
	return a.lbCommand(onLB{use: use + " LOADBALANCER", aliases: aliases, short: short, example: example,
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			p, err := path(lb)
			if err != nil {
				return err
			}
			return a.show(cmd, p, nil, v)
		}})
}

// lbDeleteItems is `delete LOADBALANCER ID...`: DELETE {path}/{id}, or
// DELETE {path}?id=..&id=.. for several.
func (a *app) lbDeleteItems(what, example string, path lbPath) *cobra.Command {
	var w waitFlags
	return a.lbCommand(onLB{use: "delete LOADBALANCER " + strings.ToUpper(strings.ReplaceAll(what, " ", "-")) + "...",
		aliases: []string{"remove", "rm"}, short: "Remove " + what + "s by id", example: example,
		args: cobra.MinimumNArgs(2), what: what, wait: &w,
		run: func(cmd *cobra.Command, lb string, ids []string) error {
			p, err := path(lb)
			if err != nil {
				return err
			}
			c := change{method: http.MethodDelete, path: p + "/" + ids[0], lb: lb, wait: w,
				done: strings.ToUpper(what[:1]) + what[1:] + " " + strings.Join(ids, ", ") + " removed."}
			if len(ids) > 1 {
				c.path, c.query = p, url.Values{"id": ids}
			}
			return a.mutate(cmd, c)
		}})
}
