// Package console is the web console lbaasd serves at /console: pages
// rendered on the server with html/template that work without JavaScript
// (plain forms, POST then redirect), a small script that refreshes the
// live parts every few seconds, and plots drawn here as inline SVG. Its
// assets are embedded in the binary.
//
// The console is a client of the REST API like any other: it signs in at
// the identity endpoint and sends every read and change to the API's own
// HTTP handler, in-process (see client). It imports nothing of the
// service, so faults, roles and rate limits are the API's.
package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console"

// Options configure the console.
type Options struct {
	// API serves the REST API (/v1.0/...) and the identity endpoint
	// (/v2.0/tokens); the console sends its requests there.
	API    http.Handler
	Logger *slog.Logger
	// Now is the clock of the plots (time.Now when nil).
	Now func() time.Time
	// Refresh is how often pages refresh their live parts (DefaultRefresh
	// when zero; negative: never).
	Refresh time.Duration
}

// DefaultRefresh is how often pages refresh their live parts.
const DefaultRefresh = 3 * time.Second

// Console is the console's HTTP handler.
type Console struct {
	api     client
	log     *slog.Logger
	now     func() time.Time
	pages   map[string]*template.Template
	mux     *http.ServeMux
	handler http.Handler
	samples *sampler
	refresh time.Duration
}

// New builds the console; mount it at Prefix+"/".
func New(o Options) *Console {
	c := &Console{api: client{api: o.API}, log: o.Logger, now: o.Now, samples: newSampler(), refresh: o.Refresh}
	if c.refresh == 0 {
		c.refresh = DefaultRefresh
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.pages = parsePages()
	c.routes()
	// Browsers tell where a form was posted from (Sec-Fetch-Site,
	// Origin): a cross-site POST is refused before it reaches a handler.
	// Forms of a signed-in session also carry the session's CSRF token.
	c.handler = securityHeaders(http.NewCrossOriginProtection().Handler(c.mux))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))
	m.HandleFunc("GET "+Prefix+"/{$}", c.signedIn(c.listPage))
	m.HandleFunc("GET "+Prefix+"/signin", c.signInPage)
	m.HandleFunc("POST "+Prefix+"/signin", c.signIn)
	m.HandleFunc("POST "+Prefix+"/signout", c.signedIn(c.signOut))
	m.HandleFunc("GET "+Prefix+"/loadbalancers/new", c.signedIn(c.newPage))
	m.HandleFunc("POST "+Prefix+"/loadbalancers", c.signedIn(c.create))
	m.HandleFunc("GET "+Prefix+"/loadbalancers/{id}", c.signedIn(c.detailPage))
	m.HandleFunc("POST "+Prefix+"/loadbalancers/{id}/{form}", c.signedIn(c.edit))
	m.HandleFunc("POST "+Prefix+"/loadbalancers/{id}/nodes/{node}", c.signedIn(c.nodeCondition))
	m.HandleFunc("GET "+Prefix+"/loadbalancers/{id}/delete", c.signedIn(c.deletePage))
	m.HandleFunc("POST "+Prefix+"/loadbalancers/{id}/delete", c.signedIn(c.deleteLoadBalancer))
	m.HandleFunc("POST "+Prefix+"/loadbalancers/{id}/{list}/{item}/delete", c.signedIn(c.deleteItem))
	c.mux = m
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, Prefix+"/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// session is what the console's cookie holds: the API token (the cookie
// is HttpOnly, SameSite=Strict, and Secure over TLS) and what to show.
// The console keeps no state of its own, so any replica serves any
// session; the API checks the token on every call, and a tampered
// account or name only gets the API's refusal.
type session struct {
	Token    string    `json:"t"`
	Account  string    `json:"a"`
	Username string    `json:"u"`
	Expires  time.Time `json:"e"`
}

const cookieName = "lbaas_console"

// maxFormBytes bounds a signed-in form's body (the API's own bound).
const maxFormBytes = 1 << 20

func (s session) base() string { return "/v1.0/" + s.Account }

// csrf is the token the session's forms carry: a digest of the API
// token, which a page of another site can neither read nor guess.
func (s session) csrf() string {
	sum := sha256.Sum256([]byte("lbaas-console-csrf\x00" + s.Token))
	return hex.EncodeToString(sum[:16])
}

func readSession(r *http.Request, now time.Time) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return session{}, false
	}
	var s session
	if json.Unmarshal(raw, &s) != nil || s.Token == "" || s.Account == "" || !now.Before(s.Expires) {
		return session{}, false
	}
	return s, true
}

func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setSession(w http.ResponseWriter, r *http.Request, s session) {
	raw, _ := json.Marshal(s)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(raw), Path: Prefix,
		Expires: s.Expires, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// signedIn runs h with the session, or sends the browser to sign in. A
// POST must carry the session's CSRF token.
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := readSession(r, c.now())
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"/signin?next="+r.URL.EscapedPath(), http.StatusSeeOther)
				return
			}
			http.Error(w, "Your session has ended: sign in again.", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			// As large as the API takes: an error page of 65,536
			// characters, or PEM certificates and keys, URL-encoded.
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "This form could not be read (it may be over 1 MiB): nothing was changed.", http.StatusRequestEntityTooLarge)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf())) != 1 {
				http.Error(w, "This form is stale or was not sent by the console: reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

// apiFailed answers a failed API call that no form shows: the session
// ended (401) sends the browser to sign in; others are an error page.
func (c *Console) apiFailed(w http.ResponseWriter, r *http.Request, s *session, err error) {
	f, ok := err.(*Fault)
	if ok && f.Status == http.StatusUnauthorized {
		clearSession(w, r)
		http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
		return
	}
	status := http.StatusBadGateway
	if ok {
		status = f.Status
	} else {
		c.log.Error("console: API call", "err", err)
	}
	c.render(w, r, status, "error", s, map[string]any{"Fault": err})
}
