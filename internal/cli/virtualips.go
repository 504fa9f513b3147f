package cli

import (
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) virtualIPCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "vip",
		Aliases: []string{"virtualip", "virtualips", "vips"},
		Short:   "Manage a load balancer's virtual IPs",
		Long: `Virtual IPs are the addresses a load balancer receives traffic on. A new one
comes from the service's pools; load balancers of one account can share one
(by its id) on distinct ports. The last virtual IP of a load balancer stays.`,
	}
	c.AddCommand(
		a.lbShow("list", "List a load balancer's virtual IPs", "  lbaas vip list 12", fixedPath("/virtualips"), listView("virtualIps")),
		a.vipAdd(),
		a.lbDeleteItems("virtual IP", "  lbaas vip delete 12 9 --wait", fixedPath("/virtualips")))
	return c
}

func (a *app) vipAdd() *cobra.Command {
	var (
		typ, version string
		id           uint32
		w            waitFlags
	)
	c := a.lbCommand(onLB{use: "add LOADBALANCER", short: "Add a virtual IP (IPv6) to a load balancer",
		example: `  lbaas vip add 12 --type PUBLIC --ip-version IPV6 --wait
  lbaas vip add 12 --id 7     # share virtual IP 7 of another load balancer`,
		wait: &w,
		run: func(cmd *cobra.Command, lb string, _ []string) error {
			vip := map[string]any{}
			if cmd.Flags().Changed("id") {
				vip["id"] = id
			} else {
				vip["type"], vip["ipVersion"] = strings.ToUpper(typ), strings.ToUpper(version)
			}
			return a.mutate(cmd, change{method: http.MethodPost, path: "/loadbalancers/" + lb + "/virtualips",
				body: vip, view: view{key: "virtualIp"}, lb: lb, wait: w})
		}})
	f := c.Flags()
	f.StringVar(&typ, "type", "PUBLIC", "PUBLIC or SERVICENET")
	f.StringVar(&version, "ip-version", "IPV6", "IP version of the new address")
	f.Uint32Var(&id, "id", 0, "share this existing virtual IP of the account instead")
	c.MarkFlagsMutuallyExclusive("id", "type")
	_ = c.RegisterFlagCompletionFunc("type", fixedCompletion("PUBLIC", "SERVICENET"))
	_ = c.RegisterFlagCompletionFunc("ip-version", fixedCompletion("IPV6", "IPV4"))
	return c
}

// parseMeta reads KEY=VALUE items.
func parseMeta(items []string) ([]any, error) {
	var out []any
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, usageErrorf("metadata %q: give KEY=VALUE", it)
		}
		out = append(out, map[string]any{"key": k, "value": v})
	}
	return out, nil
}
