package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
)

// client calls the REST API in-process: each call is an HTTP request
// served by the same handler that serves /v1.0 and /v2.0/tokens to any
// other client (authentication, roles, rate limits, validation and faults
// included), without a socket. The console holds no store or service of
// its own, so what it shows and refuses is exactly what the API does.
type client struct {
	api http.Handler
}

// Fault is a Rackspace fault the API answered, with its per-field
// validation messages.
type Fault struct {
	Status   int
	Message  string
	Details  string
	Messages []string
}

func (f *Fault) Error() string { return f.Message }

// call sends method path (an absolute API path) with body as JSON, and
// decodes a 2xx answer into out. from is the browser's request: its
// client address and TLS state go along, so the API's access log and
// catalog URLs see the real client.
func (c client) call(ctx context.Context, from *http.Request, token, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lbaas-console")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if from != nil {
		req.RemoteAddr, req.Host, req.TLS = from.RemoteAddr, from.Host, from.TLS
	}
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		return res.StatusCode, readFault(res.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, err
		}
	}
	return res.StatusCode, nil
}

// readFault reads {"code":..,"message":..} as the load balancer API
// answers it, or {"unauthorized":{...}} as identity does.
func readFault(status int, raw []byte) *Fault {
	type body struct {
		Message          string `json:"message"`
		Details          string `json:"details"`
		ValidationErrors struct {
			Messages []string `json:"messages"`
		} `json:"validationErrors"`
	}
	var b body
	if json.Unmarshal(raw, &b) == nil && b.Message == "" {
		var wrapped map[string]body
		if json.Unmarshal(raw, &wrapped) == nil && len(wrapped) == 1 {
			for _, w := range wrapped {
				b = w
			}
		}
	}
	f := &Fault{Status: status, Message: b.Message, Details: b.Details, Messages: b.ValidationErrors.Messages}
	if f.Message == "" {
		f.Message = http.StatusText(status)
	}
	return f
}

// fieldOf is the form field a validation message names, or "" when it
// names none: "loadBalancer.port: ..." is port, "loadBalancer.nodes[0].port:
// ..." and "node.port: ..." are node.port, "loadBalancer.virtualIps[0].type"
// is vip.type, "accessList[0].address" is address; a message of the JSON decoder ("invalid value for uint32
// field maxConnections") names maxConnections.
func fieldOf(message string) string {
	if m := decoderField.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	path, _, ok := strings.Cut(message, ": ")
	if !ok || strings.ContainsAny(path, " \"") {
		return ""
	}
	parts := strings.Split(path, ".")
	if len(parts) > 1 && wrappers[parts[0]] {
		parts = parts[1:]
	}
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "[")
		if alias, ok := collections[name]; ok {
			parts[i] = alias
		} else {
			parts[i] = name
		}
	}
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), ".")
}

var decoderField = regexp.MustCompile(`invalid value for \w+ field (\w+)`)

// wrappers are the request bodies' root objects, which forms leave out.
var wrappers = map[string]bool{
	"loadBalancer": true, "healthMonitor": true, "sessionPersistence": true,
	"connectionThrottle": true, "connectionLogging": true, "sslTermination": true,
	"certificateMapping": true, "errorpage": true,
}

// collections are list fields whose elements a form edits one at a time,
// and the prefix of their fields in the form ("": none, the form edits
// nothing else).
var collections = map[string]string{"nodes": "node", "node": "node", "virtualIps": "vip", "accessList": "", "metadata": ""}
