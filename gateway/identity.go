package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/openlbaas/lbaas/auth"
)

// Identity serves POST /v2.0/tokens the way Rackspace Cloud Identity does,
// so that existing SDKs can authenticate against this service unchanged.
type Identity struct {
	Auth *auth.Service
	// PublicURL is the base URL of this API as clients reach it
	// (http://host:port); empty means derived from each request.
	PublicURL string
	Region    string
	Log       *slog.Logger
}

type tokenRequest struct {
	Auth struct {
		APIKey *struct {
			Username string `json:"username"`
			APIKey   string `json:"apiKey"`
		} `json:"RAX-KSKEY:apiKeyCredentials"`
		Password *struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"passwordCredentials"`
		TenantName string `json:"tenantName"`
		TenantID   string `json:"tenantId"`
	} `json:"auth"`
}

type identityFault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeIdentityFault(w http.ResponseWriter, kind string, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]identityFault{kind: {Code: code, Message: message}})
}

func (h *Identity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeIdentityFault(w, "badMethod", http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	var req tokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		writeIdentityFault(w, "badRequest", http.StatusBadRequest,
			"Invalid request body: unable to parse Auth data. Please review XML or JSON formatting")
		return
	}
	var creds auth.Credentials
	switch a := req.Auth; {
	case a.APIKey != nil:
		creds = auth.Credentials{Username: a.APIKey.Username, APIKey: a.APIKey.APIKey}
	case a.Password != nil:
		creds = auth.Credentials{Username: a.Password.Username, Password: a.Password.Password}
	default:
		writeIdentityFault(w, "badRequest", http.StatusBadRequest,
			"Invalid request body: give RAX-KSKEY:apiKeyCredentials or passwordCredentials")
		return
	}
	tok, err := h.Auth.IssueToken(r.Context(), creds)
	if err == nil && !tenantMatches(req.Auth.TenantName, req.Auth.TenantID, tok.User.Tenant) {
		err = auth.ErrBadCredentials
	}
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		writeIdentityFault(w, "unauthorized", http.StatusUnauthorized, "Unable to authenticate user with credentials provided.")
		return
	case err != nil:
		h.Log.ErrorContext(r.Context(), "issue token", "err", err)
		writeIdentityFault(w, "serviceUnavailable", http.StatusServiceUnavailable, "Service unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(h.access(r, tok))
}

func tenantMatches(name, id, tenant string) bool {
	return (name == "" || name == tenant) && (id == "" || id == tenant)
}

// access is the authentication response, shaped like Rackspace's.
func (h *Identity) access(r *http.Request, tok *auth.Token) map[string]any {
	tenant := tok.User.Tenant
	return map[string]any{"access": map[string]any{
		"token": map[string]any{
			"id":                       tok.ID,
			"expires":                  tok.Expires.UTC().Format("2006-01-02T15:04:05.000Z"),
			"tenant":                   map[string]string{"id": tenant, "name": tenant},
			"RAX-AUTH:authenticatedBy": []string{tok.Method},
		},
		"serviceCatalog": []any{map[string]any{
			"name": "cloudLoadBalancers",
			"type": "rax:load-balancer",
			"endpoints": []any{map[string]string{
				"publicURL": h.baseURL(r) + "/v1.0/" + tenant,
				"region":    h.Region,
				"tenantId":  tenant,
			}},
		}},
		"user": map[string]any{
			"id":                     fmt.Sprint(tok.User.ID),
			"name":                   tok.User.Username,
			"roles":                  roles(tok.Roles, tenant),
			"RAX-AUTH:defaultRegion": h.Region,
		},
	}}
}

// roles are the user's roles as Rackspace Identity lists them: product
// roles (lbaas:*) name the tenant they apply to.
func roles(rs []auth.Role, tenant string) []any {
	out := []any{}
	for _, r := range rs {
		role := map[string]string{"id": string(r), "name": string(r), "description": r.Description()}
		if strings.HasPrefix(string(r), "lbaas:") {
			role["tenantId"] = tenant
		}
		out = append(out, role)
	}
	return out
}

func (h *Identity) baseURL(r *http.Request) string {
	if h.PublicURL != "" {
		return strings.TrimSuffix(h.PublicURL, "/")
	}
	return requestBaseURL(r)
}

// requestBaseURL is the API's URL as the client reached it.
func requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
