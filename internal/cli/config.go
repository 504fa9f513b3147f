package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// DefaultAuthURL is lbaasd's identity endpoint on `make run`.
const DefaultAuthURL = "http://127.0.0.1:8080/v2.0"

// Config is what a command needs to reach the API. Each setting comes from
// its flag, else its environment variable, else the profile of the
// configuration file, else its default.
type Config struct {
	AuthURL        string
	Username       string
	APIKey         string
	Password       string
	Tenant         string
	Region         string
	Endpoint       string // overrides the service catalog's endpoint
	Output         string
	RequestTimeout time.Duration
	Debug          io.Writer
}

// cacheKey names the cached token of these settings. It includes the
// credentials (the cache file is named by a hash of the key) so that a
// token is never used with credentials other than those that obtained it.
func (c Config) cacheKey() string {
	return strings.Join([]string{c.AuthURL, c.Username, c.APIKey, c.Password, c.Tenant, c.Region}, "\x00")
}

// Profile is one named entry of the configuration file.
type Profile struct {
	AuthURL  string `json:"auth-url,omitempty"`
	Username string `json:"username,omitempty"`
	APIKey   string `json:"api-key,omitempty"`
	Password string `json:"password,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Output   string `json:"output,omitempty"`
}

// File is the configuration file (YAML).
type File struct {
	// Profile is used when neither --profile nor LBAAS_PROFILE names one.
	Profile  string             `json:"profile,omitempty"`
	Profiles map[string]Profile `json:"profiles"`
}

// configPath is --config, else $LBAAS_CONFIG, else the user's config
// directory's lbaas/config.yaml.
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("LBAAS_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "lbaas", "config.yaml")
}

func readFile(path string, explicit bool) (*File, error) {
	f := &File{}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return f, nil
	}
	if err != nil {
		return nil, usageErrorf("configuration file: %v", err)
	}
	if err := yaml.UnmarshalStrict(b, f); err != nil {
		return nil, usageErrorf("configuration file %s: %v", path, err)
	}
	return f, nil
}

// globalFlags are the root command's persistent flags.
type globalFlags struct {
	config, profile                                     string
	authURL, username, apiKey, password, tenant, region string
	endpoint, output                                    string
	requestTimeout                                      time.Duration
	debug                                               bool
}

func (g *globalFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&g.config, "config", "", "configuration file (env LBAAS_CONFIG; default $XDG_CONFIG_HOME/lbaas/config.yaml)")
	fs.StringVarP(&g.profile, "profile", "p", "", "profile of the configuration file to use (env LBAAS_PROFILE; default: the file's 'profile', else 'default')")
	fs.StringVar(&g.authURL, "auth-url", "", "identity endpoint (env LBAAS_AUTH_URL; default "+DefaultAuthURL+")")
	fs.StringVarP(&g.username, "username", "u", "", "user name (env LBAAS_USERNAME)")
	fs.StringVar(&g.apiKey, "api-key", "", "API key (env LBAAS_API_KEY); prefer the environment or a profile to a flag")
	fs.StringVar(&g.password, "password", "", "password, instead of an API key (env LBAAS_PASSWORD)")
	fs.StringVar(&g.tenant, "tenant", "", "tenant (account) id to check the token against (env LBAAS_TENANT)")
	fs.StringVar(&g.region, "region", "", "region of the service catalog's endpoint (env LBAAS_REGION; default: the first)")
	fs.StringVar(&g.endpoint, "endpoint", "", "load balancer API URL including the account, e.g. http://127.0.0.1:8080/v1.0/1234, instead of the catalog's (env LBAAS_ENDPOINT)")
	fs.StringVarP(&g.output, "output", "o", "", "output format: table, json or yaml (env LBAAS_OUTPUT; default table)")
	fs.DurationVar(&g.requestTimeout, "request-timeout", 30*time.Second, "timeout of each HTTP request")
	fs.BoolVar(&g.debug, "debug", false, "print each HTTP request and its status on stderr")
}

// resolve merges flags, environment and the configuration file.
func (g *globalFlags) resolve(stderr io.Writer) (Config, error) {
	path := configPath(g.config)
	file, err := readFile(path, g.config != "" || os.Getenv("LBAAS_CONFIG") != "")
	if err != nil {
		return Config{}, err
	}
	name := first(g.profile, os.Getenv("LBAAS_PROFILE"))
	explicit := name != ""
	name = first(name, file.Profile, "default")
	p, ok := file.Profiles[name]
	if !ok && (explicit || file.Profile != "") {
		return Config{}, usageErrorf("no profile %q in %s", name, path)
	}
	cfg := Config{
		AuthURL:        first(g.authURL, os.Getenv("LBAAS_AUTH_URL"), p.AuthURL, DefaultAuthURL),
		Username:       first(g.username, os.Getenv("LBAAS_USERNAME"), p.Username),
		APIKey:         first(g.apiKey, os.Getenv("LBAAS_API_KEY"), p.APIKey),
		Password:       first(g.password, os.Getenv("LBAAS_PASSWORD"), p.Password),
		Tenant:         first(g.tenant, os.Getenv("LBAAS_TENANT"), p.Tenant),
		Region:         first(g.region, os.Getenv("LBAAS_REGION"), p.Region),
		Endpoint:       first(g.endpoint, os.Getenv("LBAAS_ENDPOINT"), p.Endpoint),
		Output:         first(g.output, os.Getenv("LBAAS_OUTPUT"), p.Output, "table"),
		RequestTimeout: g.requestTimeout,
	}
	switch cfg.Output {
	case "table", "json", "yaml":
	default:
		return Config{}, usageErrorf("output %q: use table, json or yaml", cfg.Output)
	}
	if g.debug {
		cfg.Debug = stderr
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && (p.APIKey != "" || p.Password != "") && stderr != nil {
		fmt.Fprintf(stderr, "lbaas: warning: %s holds credentials and others can read it (chmod 600 %s)\n", path, path)
	}
	return cfg, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageError is a mistake of the command line or configuration (exit 1).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}
