package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) catalogCommands() []*cobra.Command {
	simple := func(use, short, path, key, example string, aliases ...string) *cobra.Command {
		return &cobra.Command{
			Use: use, Aliases: aliases, Short: short, Example: example, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.show(cmd, path, nil, listView(key))
			},
		}
	}
	sources := &cobra.Command{
		Use:   "source-addresses [LOADBALANCER]",
		Short: "Show the addresses traffic to nodes comes from (the region's, or a load balancer's)",
		Long: `Nodes see traffic from the load balancers coming from these addresses: the
region's networks, or with a load balancer id the networks of its cluster.
Allow them in the nodes' firewalls.`,
		Example:           "  lbaas source-addresses\n  lbaas source-addresses 12 -o json",
		Aliases:           []string{"sourceaddresses"},
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeLB,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.show(cmd, "/regionalsourceaddresses", nil, view{key: "RegionalSourceAddresses"})
			}
			lb, err := idArg("load balancer", args[0])
			if err != nil {
				return err
			}
			return a.show(cmd, "/loadbalancers/"+lb+"/clustersourceaddresses", nil, view{key: "clusterSourceAddresses"})
		},
	}
	return []*cobra.Command{
		simple("protocols", "List the protocols and their default ports", "/loadbalancers/protocols", "protocols", "  lbaas protocols"),
		simple("algorithms", "List the load-balancing algorithms", "/loadbalancers/algorithms", "algorithms", "  lbaas algorithms"),
		simple("limits", "Show the account's absolute limits (load balancers, nodes per load balancer, ...)",
			"/loadbalancers/absolutelimits", "absolute", "  lbaas limits -o json", "absolutelimits"),
		a.rateLimitsCommand(),
		simple("allowed-domains", "List the domains whose names nodes may use as their address",
			"/loadbalancers/alloweddomains", "allowedDomains", "  lbaas allowed-domains", "alloweddomains"),
		sources,
	}
}

func (a *app) sessionCommands() []*cobra.Command {
	login := &cobra.Command{
		Use:   "login",
		Short: "Authenticate now and cache the token",
		Long: `Authenticate with the identity endpoint (unless a cached token is still good)
and show the account, the endpoint and when the token expires. Other commands
authenticate by themselves when needed; login checks the credentials.`,
		Example: "  LBAAS_USERNAME=alice LBAAS_API_KEY=... lbaas login\n  lbaas login --profile staging",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.client.token(cmd.Context())
			if err != nil {
				return err
			}
			endpoint := first(a.cfg.Endpoint, t.Endpoint)
			if a.cfg.Output != "table" {
				return renderValue(a.stdout, a.cfg.Output, map[string]any{
					"tenant": t.Tenant, "endpoint": endpoint, "expires": t.Expires.UTC().Format(time.RFC3339)})
			}
			fmt.Fprintf(a.stdout, "Authenticated as %s (account %s) at %s\nEndpoint: %s\nToken expires: %s\n",
				a.cfg.Username, t.Tenant, a.cfg.AuthURL, endpoint, t.Expires.Local().Format(time.RFC1123))
			return nil
		},
	}
	token := &cobra.Command{
		Use:     "token",
		Short:   "Print the (cached) token, for curl and other tools",
		Example: `  curl -H "X-Auth-Token: $(lbaas token)" http://127.0.0.1:8080/v1.0/1234/loadbalancers`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.client.token(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, t.ID)
			return nil
		},
	}
	logout := &cobra.Command{
		Use:     "logout",
		Short:   "Forget the cached token of the current profile",
		Example: "  lbaas logout",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a.client.forget()
			return nil
		},
	}
	return []*cobra.Command{login, token, logout}
}

// rateLimitsCommand shows the account's rate limits (GET /limits): a row
// per HTTP method and unit, with what is left of it now.
func (a *app) rateLimitsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rate-limits",
		Aliases: []string{"ratelimits"},
		Short:   "Show the account's rate limits (requests a second and a minute, by HTTP method) and what is left",
		Example: "  lbaas rate-limits\n  lbaas rate-limits -o json   # the whole /limits answer, absolute limits included",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := a.client.Do(cmd.Context(), http.MethodGet, "/limits", nil, nil)
			if err != nil {
				return err
			}
			if a.cfg.Output != "table" {
				return render(a.stdout, a.cfg.Output, raw, view{key: "limits"})
			}
			var doc struct {
				Limits struct {
					Rate []struct {
						URI   string           `json:"uri"`
						Limit []map[string]any `json:"limit"`
					} `json:"rate"`
				} `json:"limits"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				return err
			}
			rows := []map[string]any{}
			for _, r := range doc.Limits.Rate {
				for _, l := range r.Limit {
					l["uri"] = r.URI
					rows = append(rows, l)
				}
			}
			if len(rows) == 0 {
				_, err := fmt.Fprintln(a.stdout, "No rate limits: the operator turned them off.")
				return err
			}
			flat, err := json.Marshal(rows)
			if err != nil {
				return err
			}
			return render(a.stdout, "table", flat, view{columns: cols("URI", "uri", "VERB", "verb", "UNIT", "unit",
				"VALUE", "value", "REMAINING", "remaining", "NEXT AVAILABLE", "next-available")})
		},
	}
}
