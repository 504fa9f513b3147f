// Package cli is lbaas, the command-line client of the Rackspace Cloud Load
// Balancers v1.0 REST API that lbaasd serves. It talks REST like any SDK:
// a token from the identity endpoint, cached until it expires, and the
// load balancer endpoint from the token's service catalog.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on.
const (
	ExitOK      = 0 // success
	ExitUsage   = 1 // bad command line or configuration, or a local error
	ExitFault   = 2 // the API refused the request (4xx fault)
	ExitService = 3 // the service failed (5xx) or could not be reached
	ExitWait    = 4 // --wait ended with the load balancer in ERROR, or timed out
)

// app is the state the commands share.
type app struct {
	g              globalFlags
	cfg            Config
	client         *Client
	stdout, stderr io.Writer
}

// Main runs lbaas with args and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if code == ExitUsage && !isUsage(err) {
		// cobra's own errors: unknown command or flag, wrong arguments.
		fmt.Fprintf(stderr, "lbaas: %v\nRun 'lbaas --help' for usage.\n", err)
		return code
	}
	fmt.Fprintf(stderr, "lbaas: %v\n", err)
	return code
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

func exitCode(err error) int {
	var apiErr *APIError
	var netErr *NetworkError
	var waitErr *WaitError
	switch {
	case errors.As(err, &waitErr):
		return ExitWait
	case errors.As(err, &apiErr):
		if apiErr.Status >= 500 {
			return ExitService
		}
		return ExitFault
	case errors.As(err, &netErr):
		return ExitService
	case errors.Is(err, context.Canceled):
		return ExitService
	}
	return ExitUsage
}

const rootLong = `lbaas manages load balancers through the Rackspace Cloud Load Balancers v1.0
REST API that lbaasd serves (and that Rackspace SDKs speak).

AUTHENTICATION
  lbaas asks the identity endpoint (--auth-url, default ` + DefaultAuthURL + `)
  for a token with your user name and API key (or password), and takes the load
  balancer endpoint from the token's service catalog. The token is cached in
  $XDG_CACHE_HOME/lbaas/tokens (mode 0600; the API key never is) until shortly
  before it expires, so later commands do not authenticate again. 'lbaas logout'
  forgets it.

CONFIGURATION
  Each setting comes from its flag, else its environment variable (LBAAS_AUTH_URL,
  LBAAS_USERNAME, LBAAS_API_KEY, LBAAS_PASSWORD, LBAAS_TENANT, LBAAS_REGION,
  LBAAS_ENDPOINT, LBAAS_OUTPUT), else the chosen profile of the configuration
  file ($XDG_CONFIG_HOME/lbaas/config.yaml, or --config / LBAAS_CONFIG):

    profile: local            # used when --profile / LBAAS_PROFILE is not given
    profiles:
      local:
        auth-url: http://127.0.0.1:8080/v2.0
        username: alice
        api-key: 0123abcd...
      staging:
        auth-url: https://lb.staging.example/v2.0
        username: alice
        api-key: ...
        region: ORD
        output: json

OUTPUT
  A table by default; -o json or -o yaml prints the resource itself (the load
  balancer object, the list of nodes...) for scripts, e.g.
    lbaas lb create --name web --protocol HTTP --port 80 --vip PUBLIC -o json | jq .id

WAITING
  Every change accepts --wait: lbaas then polls the load balancer until it is
  ACTIVE again (the data plane applied the change), showing a spinner on a
  terminal and nothing when piped; ERROR (with the data plane's message) or
  --wait-timeout exits with 4.

EXIT CODES
  0  success
  1  bad command line or configuration
  2  the API refused the request (a 4xx fault; its message is printed)
  3  the service failed (5xx) or could not be reached
  4  --wait ended with the load balancer in ERROR, or timed out`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lbaas",
		Short: "Manage load balancers through the Cloud Load Balancers REST API",
		Long:  rootLong,
		Example: `  export LBAAS_USERNAME=alice LBAAS_API_KEY=$(lbaasd user create --username alice --tenant 1234)
  lbaas lb create --name web --protocol HTTP --port 80 --vip PUBLIC \
      --node 127.0.0.1:8081 --node 127.0.0.1:8082 --wait
  lbaas lb list
  lbaas node add 1 127.0.0.1:8083 --condition DRAINING --wait
  lbaas healthmonitor set 1 --type HTTP --path /healthz --delay 10 --timeout 5 --attempts 3 --wait
  lbaas lb get 1 -o yaml`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup() },
	}
	a.g.register(root.PersistentFlags())
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion("table", "json", "yaml"))
	root.AddGroup(&cobra.Group{ID: "resources", Title: "Load balancers and their parts:"},
		&cobra.Group{ID: "features", Title: "Load balancer features:"},
		&cobra.Group{ID: "catalog", Title: "What the service offers:"},
		&cobra.Group{ID: "session", Title: "Authentication:"})
	for _, c := range []*cobra.Command{a.loadBalancerCommand(), a.nodeCommand(), a.virtualIPCommand(), a.metadataCommand()} {
		c.GroupID = "resources"
		root.AddCommand(group(c))
	}
	for _, c := range []*cobra.Command{a.statsCommand(), a.usageCommand()} {
		c.GroupID = "resources"
		root.AddCommand(c)
	}
	for _, c := range a.featureCommands() {
		c.GroupID = "features"
		root.AddCommand(c)
	}
	for _, c := range a.catalogCommands() {
		c.GroupID = "catalog"
		root.AddCommand(c)
	}
	for _, c := range a.sessionCommands() {
		c.GroupID = "session"
		root.AddCommand(c)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	return root
}

func (a *app) setup() error {
	cfg, err := a.g.resolve(a.stderr)
	if err != nil {
		return err
	}
	a.cfg = cfg
	a.client = newClient(cfg)
	return nil
}

// show GETs path and prints the answer.
func (a *app) show(cmd *cobra.Command, path string, query url.Values, v view) error {
	raw, err := a.client.Do(cmd.Context(), http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	return render(a.stdout, a.cfg.Output, raw, v)
}

// change is a mutation of load balancer lb.
type change struct {
	method, path string
	query        url.Values
	body         any
	view         view   // how to show the answer, when it has one
	done         string // what a table-mode user is told when it has none
	lb           string
	wait         waitFlags
	gone         bool // the change deletes the load balancer
}

// mutate sends the change, prints its answer, and waits when asked.
func (a *app) mutate(cmd *cobra.Command, c change) error {
	raw, err := a.client.Do(cmd.Context(), c.method, c.path, c.query, c.body)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(raw))) > 0 && json.Valid(raw) {
		if err := render(a.stdout, a.cfg.Output, raw, c.view); err != nil {
			return err
		}
	} else if a.cfg.Output == "table" && c.done != "" {
		fmt.Fprintln(a.stdout, c.done)
	}
	if !c.wait.wait {
		return nil
	}
	return a.waitActive(cmd.Context(), c.lb, c.wait, c.gone)
}

// group makes c, a command of subcommands, refuse unknown subcommands
// (cobra would show help and exit 0).
func group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.NoArgs
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cmd.SetOut(cmd.ErrOrStderr())
		_ = cmd.Help()
		return usageErrorf("%s needs a subcommand", cmd.CommandPath())
	}
	return c
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// Run is cmd/lbaas's main.
func Run() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
