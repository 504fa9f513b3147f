package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the Rackspace Cloud Load Balancers v1.0 REST API the way any
// SDK does: a token from the identity endpoint (cached on disk until it
// expires), the load balancer endpoint from the service catalog.
type Client struct {
	cfg   Config
	http  *http.Client
	cache *tokenCache
	tok   *cachedToken
}

// APIError is a fault answered by the API (or the identity service).
type APIError struct {
	Status   int
	Message  string
	Details  string
	Messages []string // one per invalid field
	// RetryAfter is when a rate-limited request may be sent again (the
	// Retry-After header of a 413 overLimit; 0 when none was given).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Message)
	if e.Details != "" && e.Details != e.Message {
		fmt.Fprintf(&b, ": %s", e.Details)
	}
	for _, m := range e.Messages {
		fmt.Fprintf(&b, "\n  %s", m)
	}
	return b.String()
}

// NetworkError is a failure to reach the service at all.
type NetworkError struct{ Err error }

func (e *NetworkError) Error() string { return e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

func newClient(cfg Config) *Client {
	return &Client{
		cfg:   cfg,
		http:  &http.Client{Timeout: cfg.RequestTimeout},
		cache: newTokenCache(),
	}
}

// token returns a valid token, from the cache when it has one.
func (c *Client) token(ctx context.Context) (*cachedToken, error) {
	if c.tok != nil && c.tok.valid(time.Now()) {
		return c.tok, nil
	}
	key := c.cfg.cacheKey()
	if t := c.cache.load(key); t != nil && t.valid(time.Now()) {
		c.tok = t
		return t, nil
	}
	t, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	c.cache.store(key, t)
	c.tok = t
	return t, nil
}

// forget drops a token the API refused, here and on disk.
func (c *Client) forget() {
	c.tok = nil
	c.cache.remove(c.cfg.cacheKey())
}

// authenticate asks the identity endpoint (POST {auth-url}/tokens) for a token.
func (c *Client) authenticate(ctx context.Context) (*cachedToken, error) {
	if c.cfg.Username == "" {
		return nil, usageErrorf("no user name: set --username, LBAAS_USERNAME or a profile's username")
	}
	auth := map[string]any{}
	switch {
	case c.cfg.APIKey != "":
		auth["RAX-KSKEY:apiKeyCredentials"] = map[string]string{"username": c.cfg.Username, "apiKey": c.cfg.APIKey}
	case c.cfg.Password != "":
		auth["passwordCredentials"] = map[string]string{"username": c.cfg.Username, "password": c.cfg.Password}
	default:
		return nil, usageErrorf("no credentials: set --api-key (LBAAS_API_KEY) or --password (LBAAS_PASSWORD), or a profile's api-key")
	}
	if c.cfg.Tenant != "" {
		auth["tenantId"] = c.cfg.Tenant
	}
	body, _ := json.Marshal(map[string]any{"auth": auth})
	u := strings.TrimSuffix(c.cfg.AuthURL, "/") + "/tokens"
	raw, err := c.send(ctx, http.MethodPost, u, "", body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Access struct {
			Token struct {
				ID      string    `json:"id"`
				Expires time.Time `json:"expires"`
				Tenant  struct {
					ID string `json:"id"`
				} `json:"tenant"`
			} `json:"token"`
			ServiceCatalog []struct {
				Type      string `json:"type"`
				Endpoints []struct {
					PublicURL string `json:"publicURL"`
					Region    string `json:"region"`
				} `json:"endpoints"`
			} `json:"serviceCatalog"`
		} `json:"access"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.Access.Token.ID == "" {
		return nil, &NetworkError{fmt.Errorf("identity endpoint %s: not a token response", u)}
	}
	t := &cachedToken{
		ID: resp.Access.Token.ID, Expires: resp.Access.Token.Expires, Obtained: time.Now(),
		Tenant: resp.Access.Token.Tenant.ID,
	}
	for _, s := range resp.Access.ServiceCatalog {
		if s.Type != "rax:load-balancer" {
			continue
		}
		for _, e := range s.Endpoints {
			if c.cfg.Region == "" || strings.EqualFold(e.Region, c.cfg.Region) {
				t.Endpoint = e.PublicURL
				break
			}
		}
	}
	if t.Endpoint == "" && c.cfg.Endpoint == "" {
		return nil, usageErrorf("the service catalog has no load balancer endpoint in region %q", c.cfg.Region)
	}
	return t, nil
}

// Do calls the API: path is relative to the account's endpoint
// (/loadbalancers/12); body is JSON or nil. A token the API refuses is
// renewed once. A request refused by a rate limit (413 with Retry-After:
// the API did nothing with it) is sent again when the limit allows, up to
// maxRateRetries times and never after waiting more than maxRateWait.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) (json.RawMessage, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	limited := 0
	for attempt := 0; ; attempt++ {
		t, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		base := t.Endpoint
		if c.cfg.Endpoint != "" {
			base = c.cfg.Endpoint
		}
		u := strings.TrimSuffix(base, "/") + path
		if len(query) > 0 {
			u += "?" + query.Encode()
		}
		raw, err := c.send(ctx, method, u, t.ID, payload)
		var apiErr *APIError
		if attempt == 0 && errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			c.forget()
			continue
		}
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusRequestEntityTooLarge &&
			apiErr.RetryAfter > 0 && apiErr.RetryAfter <= maxRateWait && limited < maxRateRetries {
			limited++
			if c.cfg.Debug != nil {
				fmt.Fprintf(c.cfg.Debug, "  rate limited: sending again in %s\n", apiErr.RetryAfter)
			}
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(apiErr.RetryAfter):
			}
			continue
		}
		return raw, err
	}
}

// A rate-limited request is sent again at most maxRateRetries times, each
// after the Retry-After the API gave, when that is at most maxRateWait.
const (
	maxRateRetries = 5
	maxRateWait    = 10 * time.Second
)

func (c *Client) send(ctx context.Context, method, u, token string, payload []byte) (json.RawMessage, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, usageErrorf("bad URL %q: %v", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lbaas-cli")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if c.cfg.Debug != nil {
		fmt.Fprintf(c.cfg.Debug, "> %s %s\n", method, u)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, &NetworkError{err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, &NetworkError{err}
	}
	if c.cfg.Debug != nil {
		fmt.Fprintf(c.cfg.Debug, "< %s (%d bytes)\n", res.Status, len(raw))
	}
	if res.StatusCode >= 400 {
		return nil, faultFrom(res, raw)
	}
	return raw, nil
}

// faultFrom reads a Rackspace fault: {"code":..,"message":..} as the
// load balancer API answers, or {"badRequest":{"code":..}} as identity does.
func faultFrom(res *http.Response, raw []byte) *APIError {
	type fault struct {
		Code             int    `json:"code"`
		Message          string `json:"message"`
		Details          string `json:"details"`
		ValidationErrors struct {
			Messages []string `json:"messages"`
		} `json:"validationErrors"`
	}
	e := &APIError{Status: res.StatusCode}
	if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	var f fault
	if json.Unmarshal(raw, &f) == nil && f.Message == "" {
		var wrapped map[string]fault
		if json.Unmarshal(raw, &wrapped) == nil && len(wrapped) == 1 {
			for _, w := range wrapped {
				f = w
			}
		}
	}
	e.Message, e.Details, e.Messages = f.Message, f.Details, f.ValidationErrors.Messages
	if e.Message == "" {
		e.Message = http.StatusText(res.StatusCode)
		if res.StatusCode == http.StatusUnauthorized {
			e.Details = "the API refused the credentials or token"
		}
	}
	return e
}
