// Package health runs the active health monitors of load balancers: it
// probes every node of every load balancer that has a health monitor from
// the control plane, and writes each change of a node's measured status
// (ONLINE, OFFLINE) to the store with a node service event. The store
// change makes the publisher republish the load balancer's endpoints, with
// an OFFLINE node marked UNHEALTHY, so Envoy and proxyless gRPC clients
// alike stop sending it traffic.
package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openlbaas/lbaas/internal/netguard"
	"github.com/openlbaas/lbaas/store"
)

const (
	// bodyRegexBytes is how much of a response bodyRegex sees (reference).
	bodyRegexBytes = 2048
	// checkBodyBytes is how much of a response checkBody is looked for in.
	checkBodyBytes = 64 << 10
	userAgent      = "lbaas-health-monitor/1.0"
)

// Checker is one node's compiled health check.
type Checker struct {
	monitor store.HealthMonitor
	target  string // host:port
	address string
	timeout time.Duration
	status  *regexp.Regexp
	body    *regexp.Regexp
	client  *http.Client
	dial    netguard.Dialer
}

// NewChecker compiles a monitor's check of the node at address:port. Every
// connection goes through dial: a name is resolved there, before each
// probe, and only an allowed IP address is connected to.
func NewChecker(hm store.HealthMonitor, address string, port uint32, dial netguard.Dialer) (*Checker, error) {
	c := &Checker{
		monitor: hm, address: address, dial: dial,
		target:  netguard.Target(address, port),
		timeout: time.Duration(hm.Timeout) * time.Second,
	}
	if c.timeout <= 0 {
		c.timeout = time.Second
	}
	switch hm.Type {
	case "CONNECT":
		return c, nil
	case "HTTP", "HTTPS":
	default:
		return nil, fmt.Errorf("unknown health monitor type %q", hm.Type)
	}
	var err error
	if c.status, err = regexp.Compile(hm.StatusRegex); err != nil {
		return nil, fmt.Errorf("statusRegex: %w", err)
	}
	if hm.BodyRegex != "" {
		// Multi-line, like the reference's way of testing a bodyRegex:
		// curl ... | head -c2048 | egrep "REGEX".
		if c.body, err = regexp.Compile("(?m)" + hm.BodyRegex); err != nil {
			return nil, fmt.Errorf("bodyRegex: %w", err)
		}
	}
	tlsConfig := &tls.Config{
		// Backends are usually reached by address, with self-signed
		// certificates: the check is of health, not of identity.
		InsecureSkipVerify: true, //nolint:gosec
		ServerName:         hostOnly(hm.HostHeader),
	}
	c.client = &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // straight to the node, whatever the environment says
			DialContext:       dial.DialContext,
			TLSClientConfig:   tlsConfig,
			DisableKeepAlives: true, // every check opens a connection, as a client would
		},
		// A redirect is an answer: statusRegex decides about 3xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// Check probes the node once. It returns nil when the node passes, or an
// error whose text says why it failed (the event's detailedMessage).
func (c *Checker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if c.monitor.Type == "CONNECT" {
		conn, err := c.dial.DialContext(ctx, "tcp", c.target)
		if err != nil {
			return c.failure(ctx, "Connection failed", err)
		}
		_ = conn.Close()
		return nil
	}
	return c.checkHTTP(ctx)
}

func (c *Checker) checkHTTP(ctx context.Context) error {
	scheme := "http"
	if c.monitor.Type == "HTTPS" {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: c.target}
	path := c.monitor.Path
	if path == "" {
		path = "/"
	}
	ref, err := url.Parse(path)
	if err != nil {
		return fmt.Errorf("Invalid path %q: %v", path, err)
	}
	u.Path, u.RawPath, u.RawQuery = ref.Path, ref.RawPath, ref.RawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("Invalid request: %v", err)
	}
	if c.monitor.HostHeader != "" {
		req.Host = c.monitor.HostHeader
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	res, err := c.client.Do(req)
	if err != nil {
		return c.failure(ctx, "Request failed", err)
	}
	defer res.Body.Close()
	code := strconv.Itoa(res.StatusCode)
	if !c.status.MatchString(code) {
		return fmt.Errorf("Status code %s did not match statusRegex '%s'", code, c.monitor.StatusRegex)
	}
	if c.body == nil && c.monitor.CheckBody == "" {
		return nil
	}
	limit := int64(bodyRegexBytes)
	if c.monitor.CheckBody != "" {
		limit = checkBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil && len(body) < bodyRegexBytes {
		return c.failure(ctx, "Reading the response failed", err)
	}
	if c.body != nil {
		head := body[:min(len(body), bodyRegexBytes)]
		if !c.body.Match(head) {
			return fmt.Errorf("Response did not match bodyRegex '%s' within the first %d bytes", c.monitor.BodyRegex, bodyRegexBytes)
		}
	}
	if c.monitor.CheckBody != "" && !bytes.Contains(body, []byte(c.monitor.CheckBody)) {
		return fmt.Errorf("Response body did not contain checkBody '%s'", c.monitor.CheckBody)
	}
	return nil
}

// failure words a network error for the events feed.
func (c *Checker) failure(ctx context.Context, what string, err error) error {
	var netErr net.Error
	var denied *netguard.DeniedError
	switch {
	case errors.Is(err, netguard.ErrNotResolved):
		// Never the resolver's own words: they name the DNS server.
		return fmt.Errorf("%s: name did not resolve (%s)", what, c.address)
	case errors.As(err, &denied):
		var named *netguard.NameError
		if errors.As(err, &named) {
			return fmt.Errorf("%s: not connected: %s", what, named)
		}
		return fmt.Errorf("%s: not connected: %s", what, denied)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s: no answer from %s within the timeout of %s", what, c.target, c.timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused by %s", what, c.target)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%s: connection reset by %s", what, c.target)
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	return fmt.Errorf("%s: %s", what, strings.TrimSpace(msg))
}

// Close releases what the checker holds.
func (c *Checker) Close() {
	if c.client != nil {
		c.client.CloseIdleConnections()
	}
}
